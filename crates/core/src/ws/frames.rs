//! The envelope types: what a client and a server send each other.

use libhaystack::val::Grid;

use super::{FrameError, RequestId};
use crate::codec;
use crate::ops::{OpError, Reply};

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

    /// An estimate, before encoding, of the bytes [`encode_response`](super::encode_response)
    /// writes (a server reserves room for the answer with it).
    pub fn size_hint(&self) -> usize {
        64 + codec::reply_size_hint(&self.grid)
    }
}

/// The authentication messages of docs/protocol.md 4.3.
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
