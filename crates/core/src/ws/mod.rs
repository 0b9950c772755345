//! haystack-py's WebSocket JSON envelopes (PROTOCOL.md sections 4.3–4.7):
//! requests, responses, batches, watch pushes, auth messages and the
//! capabilities exchange, encoded byte for byte as the reference writes them.
//!
//! ```
//! use hs_core::ws::{decode_client_frame, encode_response, ClientFrame, WsResponse};
//!
//! let frame = decode_client_frame(r#"{"id":7,"op":"about"}"#).unwrap();
//! let ClientFrame::Request(request) = frame else { panic!("a request") };
//! assert_eq!(request.op, "about");
//! assert!(request.grid.rows.is_empty()); // an omitted grid is the empty grid
//!
//! let error = hs_core::ops::OpError::unknown_op("about");
//! let reply = WsResponse::error(request.id.clone(), request.ch.clone(), &error);
//! assert_eq!(
//!     encode_response(&reply),
//!     r#"{"grid":{"_kind":"grid","meta":{"err":{"_kind":"marker"},"dis":"Unknown operation: about","errKind":"unknown_op"},"cols":[],"rows":[]},"id":7}"#
//! );
//! ```
//!
//! Decoding never panics and never trusts the peer: every malformed frame is
//! a typed [`FrameError`], carrying the request id when it could be read.
//! Encoding writes the grid JSON straight into the envelope string (one
//! pass, no intermediate `serde_json::Value`).
//!
//! # Capabilities
//!
//! hs speaks JSON text frames only (no binary frames, codec compression or
//! chunking). A server answers a client's `capabilities` message with
//! [`encode_capabilities_v1_reply`]:
//! `{"type":"capabilities","compression":null,"chunked":false,"version":2}`,
//! exactly what the reference's standalone server answers when it runs
//! without binary mode (`ws-raw-envelopes`). `compression: null` and
//! `chunked: false` make the reference client fall back to plain JSON, which
//! is the "v1" protocol; `version` stays `2` because that is what the
//! reference always sends and its client never checks it, so an hs server
//! is indistinguishable from a JSON-mode reference server.

mod error;
mod id;

pub use error::FrameError;
pub use id::RequestId;

use libhaystack::val::Grid;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::codec;
use crate::ops::{OpError, ReadRequest, Reply};

/// The WebSocket subprotocol the reference requires (`Sec-WebSocket-Protocol`).
pub const SUBPROTOCOL: &str = "haystack";

/// Most items a batch may hold (the reference's cap).
pub const MAX_BATCH: usize = 1_000;

/// A request envelope: `{"id":..,"op":..,"grid":{..}[,"ch":..]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WsRequest {
    /// Any JSON value, echoed verbatim (its exact text) in the response;
    /// `None` when absent or `null` (the response then has no `id`).
    pub id: Option<RequestId>,
    /// The op name; `""` when the envelope had none.
    pub op: String,
    /// The request grid; the empty grid when the envelope had none.
    pub grid: Grid,
    /// The channel label of the reference's `WebSocketPool`, echoed in the
    /// response.
    pub ch: Option<String>,
}

impl WsRequest {
    /// A request with a string id and no channel.
    pub fn new(id: impl Into<String>, op: impl Into<String>, grid: Grid) -> Self {
        WsRequest {
            id: Some(RequestId::from(id.into())),
            op: op.into(),
            grid,
            ch: None,
        }
    }
}

/// A response envelope: `{"grid":{..}[,"id":..][,"ch":..]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WsResponse {
    /// The request's id, written exactly as received; not written when
    /// `None`.
    pub id: Option<RequestId>,
    /// The response grid (an error grid for a failed request): a
    /// [`Reply`], so that a server writes a store's shared rows in place;
    /// decoded responses always hold [`Reply::Grid`].
    pub grid: Reply,
    /// The request's channel label; not written when `None`.
    pub ch: Option<String>,
}

impl WsResponse {
    /// A response carrying the error grid of `error` (its `dis` and kind).
    pub fn error(id: Option<RequestId>, ch: Option<String>, error: &OpError) -> Self {
        WsResponse {
            id,
            grid: Reply::Grid(error.to_grid()),
            ch,
        }
    }

    /// The error message when the grid is an error grid.
    pub fn error_message(&self) -> Option<String> {
        self.grid.error_message()
    }

    /// An estimate, before encoding, of the bytes [`encode_response`]
    /// writes (a server reserves room for the answer with it).
    pub fn size_hint(&self) -> usize {
        64 + codec::reply_size_hint(&self.grid)
    }
}

/// The authentication messages of PROTOCOL.md 4.3.
///
/// `Debug` redacts tokens and SCRAM data, so logging a message leaks no
/// secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMessage {
    /// Client, SCRAM step 1: `{"type":"hello","username":<b64url(user)>}`.
    Hello {
        /// base64url (no padding) of the UTF-8 user name.
        username: String,
    },
    /// Server, SCRAM step 2: `{"type":"hello","handshakeToken":..,"hash":"SHA-256"}`.
    HelloChallenge {
        /// The handshake token for the next step.
        handshake_token: String,
        /// The hash algorithm, `SHA-256`.
        hash: String,
    },
    /// SCRAM steps 3–5: `{"type":"scram","handshakeToken":..[,"hash":..],"data":..}`;
    /// the server's messages carry `hash`, the client's do not.
    Scram {
        /// The handshake token of this step.
        handshake_token: String,
        /// base64url (no padding) of the SCRAM message.
        data: String,
        /// `SHA-256` in server messages, `None` in client messages.
        hash: Option<String>,
    },
    /// Server, SCRAM success: `{"type":"authOk","authToken":..,"data":..}`.
    AuthOk {
        /// The issued token.
        auth_token: String,
        /// base64url of the server-final message (`v=`); may be empty.
        data: String,
    },
    /// Server, authentication refused: `{"type":"authErr"}`.
    AuthErr,
    /// Client, static or bearer token: `{"authToken":..}`.
    AuthToken {
        /// The token.
        token: String,
    },
}

impl std::fmt::Debug for AuthMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const REDACTED: &str = "<redacted>";
        match self {
            AuthMessage::Hello { username } => {
                f.debug_struct("Hello").field("username", username).finish()
            }
            AuthMessage::HelloChallenge { hash, .. } => f
                .debug_struct("HelloChallenge")
                .field("handshake_token", &REDACTED)
                .field("hash", hash)
                .finish(),
            AuthMessage::Scram { hash, .. } => f
                .debug_struct("Scram")
                .field("handshake_token", &REDACTED)
                .field("data", &REDACTED)
                .field("hash", hash)
                .finish(),
            AuthMessage::AuthOk { .. } => f
                .debug_struct("AuthOk")
                .field("auth_token", &REDACTED)
                .field("data", &REDACTED)
                .finish(),
            AuthMessage::AuthErr => f.write_str("AuthErr"),
            AuthMessage::AuthToken { .. } => f
                .debug_struct("AuthToken")
                .field("token", &REDACTED)
                .finish(),
        }
    }
}

/// A client's capabilities offer:
/// `{"type":"capabilities","compression":["zlib"],"chunked":true,"version":2}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapabilitiesRequest {
    /// Compression algorithms the client accepts, in preference order.
    pub compression: Vec<String>,
    /// Whether the client accepts chunked binary frames.
    pub chunked: bool,
    /// The protocol version the client sent (the reference sends 2).
    pub version: Option<u64>,
}

/// A server's capabilities answer:
/// `{"type":"capabilities","compression":null,"chunked":false,"version":2}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitiesReply {
    /// The agreed compression algorithm, `None` for none.
    pub compression: Option<String>,
    /// Whether chunked binary frames were agreed.
    pub chunked: bool,
    /// The protocol version (the reference always sends 2).
    pub version: u64,
}

impl CapabilitiesReply {
    /// Plain JSON frames only: no compression, no chunking (see the module
    /// docs for why `version` is 2).
    pub const V1_ONLY: CapabilitiesReply = CapabilitiesReply {
        compression: None,
        chunked: false,
        version: 2,
    };
}

/// A text frame a server receives.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientFrame {
    /// One request envelope.
    Request(WsRequest),
    /// A JSON array of requests, non-object items already dropped. Each
    /// item is decoded on its own, so one bad item gets its own error
    /// response. Empty when nothing was left (the reference then sends no
    /// reply).
    Batch(Vec<Result<WsRequest, FrameError>>),
    /// An authentication message (`hello`, `scram`, or `{"authToken":..}`).
    /// Outside the auth phase the reference treats these as requests for
    /// op `""`; [`ClientFrame::into_request`] does the same.
    Auth(AuthMessage),
    /// A capabilities offer.
    Capabilities(CapabilitiesRequest),
}

impl ClientFrame {
    /// The frame as the reference treats it once authenticated: auth and
    /// capabilities messages are requests without an op (answered with
    /// `Unknown operation: `). `None` for a batch.
    pub fn into_request(self) -> Option<WsRequest> {
        match self {
            ClientFrame::Request(request) => Some(request),
            ClientFrame::Auth(_) | ClientFrame::Capabilities(_) => Some(WsRequest {
                id: None,
                op: String::new(),
                grid: codec::empty_grid(),
                ch: None,
            }),
            ClientFrame::Batch(_) => None,
        }
    }
}

/// A text frame a client receives.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerFrame {
    /// One response envelope.
    Response(WsResponse),
    /// The responses to a batch, in request order.
    Batch(Vec<WsResponse>),
    /// A watch push: `{"type":"watch","watchId":..,"grid":..}`.
    Watch {
        /// The watch the changed entities belong to.
        watch_id: String,
        /// The changed entities.
        grid: Grid,
    },
    /// An authentication message (`hello`, `scram`, `authOk`, `authErr`).
    Auth(AuthMessage),
    /// The answer to a capabilities offer.
    Capabilities(CapabilitiesReply),
}

// ---------------------------------------------------------------- decoding

/// Every envelope field of every message type, undecoded.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawEnvelope<'a> {
    #[serde(borrow, rename = "type")]
    message_type: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    op: Option<&'a RawValue>,
    #[serde(borrow)]
    grid: Option<&'a RawValue>,
    #[serde(borrow)]
    ch: Option<&'a RawValue>,
    #[serde(borrow, rename = "watchId")]
    watch_id: Option<&'a RawValue>,
    #[serde(borrow)]
    username: Option<&'a RawValue>,
    #[serde(borrow, rename = "handshakeToken")]
    handshake_token: Option<&'a RawValue>,
    #[serde(borrow)]
    hash: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow, rename = "authToken")]
    auth_token: Option<&'a RawValue>,
    #[serde(borrow)]
    compression: Option<&'a RawValue>,
    #[serde(borrow)]
    chunked: Option<&'a RawValue>,
    #[serde(borrow)]
    version: Option<&'a RawValue>,
}

/// Field access with the request id at hand for errors.
struct Fields<'a> {
    raw: RawEnvelope<'a>,
    id: Option<RequestId>,
}

impl<'a> Fields<'a> {
    fn parse(text: &'a str) -> Result<Self, FrameError> {
        let raw: RawEnvelope<'a> = serde_json::from_str(text).map_err(|err| {
            // Malformed JSON, or a field given twice.
            FrameError::InvalidJson {
                message: err.to_string(),
            }
        })?;
        // Any JSON value is a valid id, kept as its text.
        let id = raw.id.and_then(|id| RequestId::from_raw(id.get()));
        Ok(Fields { raw, id })
    }

    fn string(
        &self,
        field: &'static str,
        raw: Option<&RawValue>,
    ) -> Result<Option<String>, FrameError> {
        raw.map(|raw| {
            serde_json::from_str::<String>(raw.get()).map_err(|_| FrameError::BadField {
                id: self.id.clone(),
                field,
                expected: "a string",
            })
        })
        .transpose()
    }

    fn required_string(
        &self,
        field: &'static str,
        raw: Option<&RawValue>,
    ) -> Result<String, FrameError> {
        self.string(field, raw)?.ok_or(FrameError::MissingField {
            id: self.id.clone(),
            field,
        })
    }

    fn grid(&self) -> Result<Option<Grid>, FrameError> {
        self.raw
            .grid
            .map(|raw| {
                codec::decode_grid(raw.get().as_bytes(), codec::Format::Json).map_err(|source| {
                    FrameError::BadGrid {
                        id: self.id.clone(),
                        source,
                    }
                })
            })
            .transpose()
    }

    fn message_type(&self) -> Option<String> {
        self.raw
            .message_type
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    }

    fn into_request(self) -> Result<WsRequest, FrameError> {
        let op = self.string("op", self.raw.op)?.unwrap_or_default();
        let ch = self.string("ch", self.raw.ch)?;
        let grid = self.grid()?.unwrap_or_else(codec::empty_grid);
        Ok(WsRequest {
            id: self.id,
            op,
            grid,
            ch,
        })
    }

    fn into_response(self) -> Result<WsResponse, FrameError> {
        let ch = self.string("ch", self.raw.ch)?;
        let grid = self.grid()?.ok_or(FrameError::MissingField {
            id: self.id.clone(),
            field: "grid",
        })?;
        Ok(WsResponse {
            id: self.id,
            grid: Reply::Grid(grid),
            ch,
        })
    }
}

/// What the first significant byte says a frame is.
enum Shape {
    Object,
    Array,
}

fn shape(text: &str) -> Result<Shape, FrameError> {
    match text.trim_start().as_bytes().first() {
        Some(b'{') => Ok(Shape::Object),
        Some(b'[') => Ok(Shape::Array),
        _ => Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => FrameError::NotAnObject,
            Err(err) => FrameError::InvalidJson {
                message: err.to_string(),
            },
        }),
    }
}

/// The items of a batch that are objects, at most [`MAX_BATCH`] of them.
fn batch_items(text: &str) -> Result<Vec<&RawValue>, FrameError> {
    let items: Vec<&RawValue> =
        serde_json::from_str(text).map_err(|err| FrameError::InvalidJson {
            message: err.to_string(),
        })?;
    if items.len() > MAX_BATCH {
        return Err(FrameError::BatchTooLarge {
            len: items.len(),
            max: MAX_BATCH,
        });
    }
    Ok(items
        .into_iter()
        .filter(|item| item.get().starts_with('{'))
        .collect())
}

/// Decodes a text frame received by a server.
///
/// An object with `type` `hello`, `scram` or `capabilities` is that message;
/// an object with `authToken` and no `op` is token auth; every other object
/// is a request (unknown keys ignored, as the reference does). An array is a
/// batch. Anything else is a [`FrameError`].
pub fn decode_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    match shape(text)? {
        Shape::Array => Ok(ClientFrame::Batch(
            batch_items(text)?
                .into_iter()
                .map(|item| Fields::parse(item.get())?.into_request())
                .collect(),
        )),
        Shape::Object => {
            if let Some(request) = plain_request(text) {
                return Ok(ClientFrame::Request(request));
            }
            let fields = Fields::parse(text)?;
            match fields.message_type().as_deref() {
                Some("hello") => Ok(ClientFrame::Auth(AuthMessage::Hello {
                    username: fields.required_string("username", fields.raw.username)?,
                })),
                Some("scram") => Ok(ClientFrame::Auth(AuthMessage::Scram {
                    handshake_token: fields
                        .required_string("handshakeToken", fields.raw.handshake_token)?,
                    data: fields.string("data", fields.raw.data)?.unwrap_or_default(),
                    hash: fields.string("hash", fields.raw.hash)?,
                })),
                Some("capabilities") => Ok(ClientFrame::Capabilities(CapabilitiesRequest {
                    compression: compression_list(fields.raw.compression),
                    chunked: flag(fields.raw.chunked),
                    version: fields
                        .raw
                        .version
                        .and_then(|raw| serde_json::from_str(raw.get()).ok()),
                })),
                None if fields.raw.auth_token.is_some() && fields.raw.op.is_none() => {
                    Ok(ClientFrame::Auth(AuthMessage::AuthToken {
                        token: fields.required_string("authToken", fields.raw.auth_token)?,
                    }))
                }
                _ => fields.into_request().map(ClientFrame::Request),
            }
        }
    }
}

/// The members of a plain envelope: `id`, `op`, `grid`, `ch`.
#[derive(Default)]
struct PlainEnvelope {
    id: Option<RequestId>,
    op: Option<String>,
    grid: Option<Grid>,
    ch: Option<String>,
}

/// The envelope nearly every request and response is (members `id`, `op`,
/// `grid` and `ch` only, each at most once, `id` a string, a number or
/// null), decoded in one pass by the codec's hand-written parser. `None`
/// when that parser gives up on the envelope or the grid: [`Fields`] then
/// decides, with the same result for what this takes (tested against it)
/// and every error.
fn plain_envelope(text: &str) -> Option<PlainEnvelope> {
    let mut parser = codec::json_fast::Parser::new(text);
    let mut envelope = PlainEnvelope::default();
    let mut seen_id = false;
    parser.object(|parser, key| {
        match key.as_ref() {
            "id" if !seen_id => {
                seen_id = true;
                envelope.id = envelope_id(parser)?;
            }
            "op" if envelope.op.is_none() => envelope.op = Some(parser.string()?.into_owned()),
            "grid" if envelope.grid.is_none() => envelope.grid = Some(parser.grid()?),
            "ch" if envelope.ch.is_none() => envelope.ch = Some(parser.string()?.into_owned()),
            _ => return None,
        }
        Some(())
    })?;
    parser.end()?;
    Some(envelope)
}

/// An envelope's `id`: a string, a number or null, as its text.
fn envelope_id(parser: &mut codec::json_fast::Parser<'_>) -> Option<Option<RequestId>> {
    Some(match parser.peek()? {
        b'"' => RequestId::from_raw(parser.raw_string()?),
        b'n' => parser.literal("null").map(|()| None)?,
        _ => RequestId::from_raw(parser.number_text()?),
    })
}

/// A `read` request envelope decoded without building its grid (see
/// [`decode_plain_read`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsReadRequest {
    /// As [`WsRequest::id`].
    pub id: Option<RequestId>,
    /// The read the grid asks for.
    pub read: ReadRequest,
    /// As [`WsRequest::ch`].
    pub ch: Option<String>,
}

/// Decodes a client frame that is a plain `read` request: a plain envelope
/// (as [`decode_client_frame`] takes it) whose `op` is `read` and whose grid
/// is a plain read grid ([`ReadRequest::from_plain_json`]). No grid is
/// built. `None` for any other frame: [`decode_client_frame`] then gives
/// the request (the same `id`, `ch` and, through
/// [`ReadRequest::from_grid`], the same read) or the error.
pub fn decode_plain_read(text: &str) -> Option<WsReadRequest> {
    let mut parser = codec::json_fast::Parser::new(text);
    let (mut id, mut seen_id, mut seen_op) = (None, false, false);
    let (mut read, mut ch) = (None, None);
    parser.object(|parser, key| {
        match key.as_ref() {
            "id" if !seen_id => {
                seen_id = true;
                id = envelope_id(parser)?;
            }
            "op" if !seen_op => {
                seen_op = true;
                return (parser.string()? == "read").then_some(());
            }
            "grid" if read.is_none() => read = Some(parser.read_request()?),
            "ch" if ch.is_none() => ch = Some(parser.string()?.into_owned()),
            _ => return None,
        }
        Some(())
    })?;
    parser.end()?;
    seen_op.then_some(())?;
    Some(WsReadRequest {
        id,
        read: read?,
        ch,
    })
}

/// A plain request envelope (see [`plain_envelope`]).
fn plain_request(text: &str) -> Option<WsRequest> {
    let envelope = plain_envelope(text)?;
    Some(WsRequest {
        id: envelope.id,
        op: envelope.op.unwrap_or_default(),
        grid: envelope.grid.unwrap_or_else(codec::empty_grid),
        ch: envelope.ch,
    })
}

/// A plain response envelope: a grid, no `op` (see [`plain_envelope`]).
fn plain_response(text: &str) -> Option<WsResponse> {
    let envelope = plain_envelope(text)?;
    if envelope.op.is_some() {
        return None;
    }
    Some(WsResponse {
        id: envelope.id,
        grid: Reply::Grid(envelope.grid?),
        ch: envelope.ch,
    })
}

/// Decodes a text frame received by a client.
///
/// An array is a batch of responses (non-objects dropped); an object with a
/// `type` is a push, auth message or capabilities answer; any other object
/// is a response and must hold a `grid`.
pub fn decode_server_frame(text: &str) -> Result<ServerFrame, FrameError> {
    match shape(text)? {
        Shape::Array => batch_items(text)?
            .into_iter()
            .map(|item| Fields::parse(item.get())?.into_response())
            .collect::<Result<Vec<_>, _>>()
            .map(ServerFrame::Batch),
        Shape::Object => {
            if let Some(response) = plain_response(text) {
                return Ok(ServerFrame::Response(response));
            }
            let fields = Fields::parse(text)?;
            let Some(message_type) = fields.message_type() else {
                return fields.into_response().map(ServerFrame::Response);
            };
            let frame = match message_type.as_str() {
                "watch" => ServerFrame::Watch {
                    watch_id: fields.required_string("watchId", fields.raw.watch_id)?,
                    grid: fields.grid()?.ok_or(FrameError::MissingField {
                        id: None,
                        field: "grid",
                    })?,
                },
                "hello" => ServerFrame::Auth(AuthMessage::HelloChallenge {
                    handshake_token: fields
                        .required_string("handshakeToken", fields.raw.handshake_token)?,
                    hash: fields.string("hash", fields.raw.hash)?.unwrap_or_default(),
                }),
                "scram" => ServerFrame::Auth(AuthMessage::Scram {
                    handshake_token: fields
                        .required_string("handshakeToken", fields.raw.handshake_token)?,
                    data: fields.string("data", fields.raw.data)?.unwrap_or_default(),
                    hash: fields.string("hash", fields.raw.hash)?,
                }),
                "authOk" => ServerFrame::Auth(AuthMessage::AuthOk {
                    auth_token: fields.required_string("authToken", fields.raw.auth_token)?,
                    data: fields.string("data", fields.raw.data)?.unwrap_or_default(),
                }),
                "authErr" => ServerFrame::Auth(AuthMessage::AuthErr),
                "capabilities" => ServerFrame::Capabilities(CapabilitiesReply {
                    compression: fields.string("compression", fields.raw.compression)?,
                    chunked: flag(fields.raw.chunked),
                    version: fields
                        .raw
                        .version
                        .and_then(|raw| serde_json::from_str(raw.get()).ok())
                        .unwrap_or(2),
                }),
                _ => return Err(FrameError::UnknownType { message_type }),
            };
            Ok(frame)
        }
    }
}

/// `compression` as a list of names; a single string or anything else is
/// read leniently (the reference's server reads only list entries it knows).
fn compression_list(raw: Option<&RawValue>) -> Vec<String> {
    let Some(raw) = raw else { return Vec::new() };
    match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| match item {
                serde_json::Value::String(name) => Some(name),
                _ => None,
            })
            .collect(),
        Ok(serde_json::Value::String(name)) => vec![name],
        _ => Vec::new(),
    }
}

/// A JSON boolean; anything else is `false`.
fn flag(raw: Option<&RawValue>) -> bool {
    raw.is_some_and(|raw| raw.get() == "true")
}

// ---------------------------------------------------------------- encoding

/// Writes compact JSON. Cannot fail: every map key is a string, the output
/// is memory, and no `Serialize` impl here raises a custom error.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Writes a grid envelope with serde_json's compact layout; the grid is
/// written by [`codec::write_grid`], without serde.
struct EnvelopeWriter {
    out: String,
}

impl EnvelopeWriter {
    /// A writer for envelopes around grids of about `grids_size` bytes.
    fn new(grids_size: usize) -> Self {
        EnvelopeWriter {
            out: String::with_capacity(64 + grids_size),
        }
    }

    fn request(&mut self, request: &WsRequest) {
        self.out.push('{');
        if let Some(id) = &request.id {
            self.out.push_str(r#""id":"#);
            self.out.push_str(id.as_json());
            self.out.push(',');
        }
        self.out.push_str(r#""op":"#);
        codec::write_str(&mut self.out, &request.op);
        self.out.push_str(r#","grid":"#);
        codec::write_grid(&mut self.out, &request.grid);
        self.channel(request.ch.as_deref());
        self.out.push('}');
    }

    fn response(&mut self, response: &WsResponse, with_ch: bool) {
        self.out.push_str(r#"{"grid":"#);
        codec::write_reply(&mut self.out, &response.grid);
        if let Some(id) = &response.id {
            self.out.push_str(r#","id":"#);
            self.out.push_str(id.as_json());
        }
        self.channel(response.ch.as_deref().filter(|_| with_ch));
        self.out.push('}');
    }

    fn channel(&mut self, ch: Option<&str>) {
        if let Some(ch) = ch {
            self.out.push_str(r#","ch":"#);
            codec::write_str(&mut self.out, ch);
        }
    }

    /// Writes `[item,item,..]`.
    fn array<T>(&mut self, items: &[T], mut write: impl FnMut(&mut Self, &T)) {
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write(self, item);
        }
        self.out.push(']');
    }
}

/// Encodes a request as the reference client does: `{"id","op","grid"[,"ch"]}`
/// (`id` left out when `None`).
pub fn encode_request(request: &WsRequest) -> String {
    let mut writer = EnvelopeWriter::new(codec::encoded_size_hint(&request.grid));
    writer.request(request);
    writer.out
}

/// Encodes a batch of requests as one JSON array.
pub fn encode_requests(requests: &[WsRequest]) -> String {
    let size = requests
        .iter()
        .map(|request| codec::encoded_size_hint(&request.grid))
        .sum();
    let mut writer = EnvelopeWriter::new(size);
    writer.array(requests, |writer, request| writer.request(request));
    writer.out
}

/// Encodes a response as the reference server does: `{"grid"[,"id"][,"ch"]}`.
pub fn encode_response(response: &WsResponse) -> String {
    let mut writer = EnvelopeWriter::new(codec::reply_size_hint(&response.grid));
    writer.response(response, true);
    writer.out
}

/// Encodes the responses to a batch as one JSON array, in request order.
/// Batch items never carry `ch` (as in the reference).
pub fn encode_responses(responses: &[WsResponse]) -> String {
    let size = responses
        .iter()
        .map(|response| codec::reply_size_hint(&response.grid))
        .sum();
    let mut writer = EnvelopeWriter::new(size);
    writer.array(responses, |writer, response| {
        writer.response(response, false)
    });
    writer.out
}

/// Encodes a watch push: `{"type":"watch","watchId":..,"grid":..}`.
pub fn encode_watch(watch_id: &str, grid: &Grid) -> String {
    let mut writer = EnvelopeWriter::new(codec::encoded_size_hint(grid));
    writer.out.push_str(r#"{"type":"watch","watchId":"#);
    codec::write_str(&mut writer.out, watch_id);
    writer.out.push_str(r#","grid":"#);
    codec::write_grid(&mut writer.out, grid);
    writer.out.push('}');
    writer.out
}

#[derive(Serialize)]
struct AuthOut<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    message_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(rename = "handshakeToken", skip_serializing_if = "Option::is_none")]
    handshake_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<&'a str>,
    #[serde(rename = "authToken", skip_serializing_if = "Option::is_none")]
    auth_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
}

const AUTH_NONE: AuthOut<'static> = AuthOut {
    message_type: None,
    username: None,
    handshake_token: None,
    hash: None,
    auth_token: None,
    data: None,
};

/// Encodes an auth message with the reference's key order (e.g.
/// `{"type":"scram","handshakeToken":..,"hash":..,"data":..}`).
pub fn encode_auth(message: &AuthMessage) -> String {
    let out = match message {
        AuthMessage::Hello { username } => AuthOut {
            message_type: Some("hello"),
            username: Some(username),
            ..AUTH_NONE
        },
        AuthMessage::HelloChallenge {
            handshake_token,
            hash,
        } => AuthOut {
            message_type: Some("hello"),
            handshake_token: Some(handshake_token),
            hash: Some(hash),
            ..AUTH_NONE
        },
        AuthMessage::Scram {
            handshake_token,
            data,
            hash,
        } => AuthOut {
            message_type: Some("scram"),
            handshake_token: Some(handshake_token),
            hash: hash.as_deref(),
            data: Some(data),
            ..AUTH_NONE
        },
        AuthMessage::AuthOk { auth_token, data } => AuthOut {
            message_type: Some("authOk"),
            auth_token: Some(auth_token),
            data: Some(data),
            ..AUTH_NONE
        },
        AuthMessage::AuthErr => AuthOut {
            message_type: Some("authErr"),
            ..AUTH_NONE
        },
        AuthMessage::AuthToken { token } => AuthOut {
            auth_token: Some(token),
            ..AUTH_NONE
        },
    };
    to_json(&out)
}

#[derive(Serialize)]
struct CapabilitiesOut<'a, C: Serialize> {
    #[serde(rename = "type")]
    message_type: &'static str,
    compression: &'a C,
    chunked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
}

/// Encodes a client's capabilities offer.
pub fn encode_capabilities_request(request: &CapabilitiesRequest) -> String {
    to_json(&CapabilitiesOut {
        message_type: "capabilities",
        compression: &request.compression,
        chunked: request.chunked,
        version: request.version,
    })
}

/// Encodes a server's capabilities answer.
pub fn encode_capabilities_reply(reply: &CapabilitiesReply) -> String {
    to_json(&CapabilitiesOut {
        message_type: "capabilities",
        compression: &reply.compression,
        chunked: reply.chunked,
        version: Some(reply.version),
    })
}

/// The answer of an hs server to any capabilities offer:
/// `{"type":"capabilities","compression":null,"chunked":false,"version":2}`
/// (plain JSON frames only; see the module docs).
pub fn encode_capabilities_v1_reply() -> String {
    encode_capabilities_reply(&CapabilitiesReply::V1_ONLY)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    /// What [`plain_request`] takes, [`Fields`] decodes the same; `true`
    /// when it took the text.
    fn agrees(text: &str) -> bool {
        let fields = Fields::parse(text).and_then(Fields::into_request);
        match plain_request(text) {
            Some(request) => {
                assert_eq!(fields.as_ref().ok(), Some(&request), "{text}");
                true
            }
            None => false,
        }
    }

    /// The text frames of the captured exchanges sent in `direction`.
    fn captured_frames(direction: &str) -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut captured = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            for line in text.lines() {
                let Ok(line) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if line["kind"] == "text" && line["dir"] == direction {
                    captured.push(line["text"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        captured
    }

    /// What [`decode_plain_read`] takes, [`decode_client_frame`] decodes
    /// to the same envelope and [`ReadRequest::from_grid`] to the same read.
    fn read_agrees(text: &str) -> bool {
        let Some(plain) = decode_plain_read(text) else {
            return false;
        };
        let Ok(ClientFrame::Request(request)) = decode_client_frame(text) else {
            panic!("{text}: taken, but not a request");
        };
        assert_eq!((&plain.id, &plain.ch), (&request.id, &request.ch), "{text}");
        assert_eq!(request.op, "read", "{text}");
        let general = ReadRequest::from_grid(&request.grid).unwrap();
        assert_eq!(plain.read, general, "{text}");
        true
    }

    #[test]
    fn plain_reads_decode_as_client_frames_decode_them() {
        let grid = r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p1"}}]}"#;
        let filter =
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"point"}]}"#;
        for text in [
            format!(r#"{{"id":"7","op":"read","grid":{grid}}}"#),
            format!(r#"{{ "grid" : {grid} , "op" : "read" , "id" : 7 , "ch" : "c\u00e9" }}"#),
            format!(r#"{{"id":null,"op":"read","grid":{filter}}}"#),
            format!(r#"{{"op":"read","grid":{filter}}}"#),
        ] {
            assert!(read_agrees(&text), "not taken: {text}");
        }
        for text in [
            format!(r#"{{"id":"7","op":"nav","grid":{grid}}}"#),
            format!(r#"{{"id":"7","grid":{grid}}}"#),
            r#"{"id":"7","op":"read"}"#.to_owned(),
            format!(r#"{{"id":"7","op":"read","grid":{grid},"type":"x"}}"#),
            format!(r#"{{"id":"7","op":"read","op":"read","grid":{grid}}}"#),
            format!(r#"[{{"id":"7","op":"read","grid":{grid}}}]"#),
            r#"{"id":"7","op":"read","grid":{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":"@p1"}]}}"#.to_owned(),
        ] {
            assert!(!read_agrees(&text), "taken: {text}");
        }
        let captured = captured_frames("c2s");
        let taken = captured.iter().filter(|text| read_agrees(text)).count();
        assert!(taken > 0, "no captured read taken");
    }

    #[test]
    fn plain_requests_decode_as_fields_decodes_them() {
        let captured = captured_frames("c2s");
        let taken = captured.iter().filter(|text| agrees(text)).count();
        assert!(taken > 30, "{taken} of {} captured frames", captured.len());
        let grid = r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p1"}}]}"#;
        for text in [
            format!(r#"{{"id":"7","op":"read","grid":{grid}}}"#),
            format!(r#"{{ "grid" : {grid} , "op" : "read" , "id" : 7 , "ch" : "c\u00e9" }}"#),
            r#"{"id":-12,"op":"about"}"#.to_owned(),
            r#"{"id":1.5e3,"op":"about"}"#.to_owned(),
            r#"{"id":18446744073709551616,"op":"about"}"#.to_owned(),
            r#"{"id":null,"op":"ops\"q"}"#.to_owned(),
            r#"{"op":"formats"}"#.to_owned(),
            "{}".to_owned(),
        ] {
            assert!(agrees(&text), "not taken: {text}");
        }
    }

    /// What [`plain_response`] takes, [`Fields`] decodes the same.
    fn response_agrees(text: &str) -> bool {
        let fields = Fields::parse(text).and_then(Fields::into_response);
        match plain_response(text) {
            Some(response) => {
                assert_eq!(fields.as_ref().ok(), Some(&response), "{text}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn plain_responses_decode_as_fields_decodes_them() {
        let captured = captured_frames("s2c");
        let taken = captured.iter().filter(|text| response_agrees(text)).count();
        assert!(taken > 30, "{taken} of {} captured frames", captured.len());
        let grid = r#"{"_kind":"grid","meta":{"watchId":"w"},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p1"}}]}"#;
        for text in [
            format!(r#"{{"grid":{grid},"id":7}}"#),
            format!(r#"{{"grid":{grid},"id":"a","ch":"c"}}"#),
            format!(r#"{{"id":null,"grid":{grid}}}"#),
        ] {
            assert!(response_agrees(&text), "not taken: {text}");
        }
        for text in [
            r#"{"id":7}"#.to_owned(),
            format!(r#"{{"grid":{grid},"op":"read"}}"#),
            format!(r#"{{"type":"watch","watchId":"w","grid":{grid}}}"#),
        ] {
            assert!(!response_agrees(&text), "taken: {text}");
        }
    }

    #[test]
    fn other_envelopes_go_to_fields() {
        for text in [
            r#"{"type":"hello","username":"u"}"#,
            r#"{"authToken":"t"}"#,
            r#"{"id":"1","op":"about","extra":1}"#,
            r#"{"id":"1","id":"2","op":"about"}"#,
            r#"{"id":{"a":1},"op":"about"}"#,
            r#"{"id":"1","op":"about","ch":null}"#,
            r#"{"id":"1","op":"read","grid":null}"#,
            r#"{"id":"1","op":"read","grid":{"_kind":"grid","cols":[],"rows":[{"d":{"val":"x","_kind":"ref"}}]}}"#,
            r#"{"id":"1","op":7}"#,
            r#"{"id":"1","op":"about"} trailing"#,
        ] {
            assert!(!agrees(text), "taken: {text}");
        }
    }
}
