//! Decoding text frames, with a one-pass parser for the plain envelopes
//! nearly every request and response is.

use libhaystack::val::Grid;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    AuthMessage, CapabilitiesReply, CapabilitiesRequest, ClientFrame, FrameError, MAX_BATCH,
    RequestId, ServerFrame, WsRequest, WsResponse,
};
use crate::codec;
use crate::ops::plain_read::read_grid;
use crate::ops::{ReadRequest, Reply};

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

/// The items of a batch that are objects, at most `max` of them.
fn batch_items(text: &str, max: usize) -> Result<Vec<&RawValue>, FrameError> {
    let items: Vec<&RawValue> =
        serde_json::from_str(text).map_err(|err| FrameError::InvalidJson {
            message: err.to_string(),
        })?;
    if items.len() > max {
        return Err(FrameError::BatchTooLarge {
            len: items.len(),
            max,
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
    decode_client_frame_with_limit(text, MAX_BATCH)
}

/// [`decode_client_frame`] for a server whose batches hold at most
/// `max_batch` items (instead of [`MAX_BATCH`]): a longer batch is a
/// [`FrameError::BatchTooLarge`] naming `max_batch`.
pub fn decode_client_frame_with_limit(
    text: &str,
    max_batch: usize,
) -> Result<ClientFrame, FrameError> {
    match shape(text)? {
        Shape::Array => Ok(ClientFrame::Batch(
            batch_items(text, max_batch)?
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
            "grid" if read.is_none() => read = Some(read_grid(parser)?),
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
        Shape::Array => batch_items(text, MAX_BATCH)?
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
