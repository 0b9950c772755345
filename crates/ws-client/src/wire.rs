//! The client's view of the haystack-py envelopes (docs/protocol.md section 4),
//! on top of [`hs_core::ws`]: what it writes and what it can receive.

use hs_core::ws::{self, AuthMessage, RequestId, ServerFrame, WsRequest};

use crate::Grid;

/// A decoded server frame.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// `{"grid":..,"id":..}`
    Response { id: Option<RequestId>, grid: Grid },
    /// `[{"grid":..,"id":..},..]`
    Batch(Vec<(Option<RequestId>, Grid)>),
    /// `{"type":"watch","watchId":..,"grid":..}`
    Watch { watch_id: String, grid: Grid },
    /// `{"type":"hello"|"scram"|"authOk"|"authErr",..}`
    Auth(AuthReply),
    /// A well-formed message the client has no use for (capabilities, a
    /// client-side auth message).
    Other,
}

/// A server's authentication message.
#[derive(Debug)]
pub(crate) enum AuthReply {
    /// Step 2: `{"type":"hello","handshakeToken":..,"hash":..}`.
    Challenge { handshake_token: String },
    /// Step 4: `{"type":"scram","handshakeToken":..,"data":..}` (empty
    /// fields when the server rejected the handshake token).
    Scram {
        handshake_token: String,
        data: String,
    },
    /// Step 6: `{"type":"authOk","authToken":..,"data":..}`.
    Ok { data: String },
    /// `{"type":"authErr"}`.
    Err,
}

/// A frame the client could not decode.
#[derive(Debug)]
pub(crate) struct DecodeError {
    /// The envelope's id, when it could be read (a response whose grid does
    /// not decode still fails its request promptly).
    pub(crate) request_id: Option<RequestId>,
    pub(crate) message: String,
}

/// The `dis` of an error grid, `None` for any other grid.
pub(crate) fn error_dis(grid: &Grid) -> Option<String> {
    hs_core::codec::error_message(grid)
}

/// One request envelope with the client's decimal string id.
pub(crate) fn encode_request(id: u32, op: &str, grid: Grid, ch: Option<&str>) -> String {
    let mut request = WsRequest::new(id.to_string(), op, grid);
    request.ch = ch.map(str::to_owned);
    ws::encode_request(&request)
}

/// A batch: a JSON array of request envelopes (already encoded).
pub(crate) fn encode_batch(envelopes: &[String]) -> String {
    let mut out = String::with_capacity(envelopes.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, e) in envelopes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(e);
    }
    out.push(']');
    out
}

/// Static token authentication: `{"authToken":"<token>"}`.
pub(crate) fn encode_token(token: &str) -> String {
    ws::encode_auth(&AuthMessage::AuthToken {
        token: token.to_owned(),
    })
}

/// SCRAM step 1: `{"type":"hello","username":"<b64url>"}`.
pub(crate) fn encode_hello(username_b64url: &str) -> String {
    ws::encode_auth(&AuthMessage::Hello {
        username: username_b64url.to_owned(),
    })
}

/// SCRAM steps 3 and 5.
pub(crate) fn encode_scram(handshake_token: &str, data: &str) -> String {
    ws::encode_auth(&AuthMessage::Scram {
        handshake_token: handshake_token.to_owned(),
        data: data.to_owned(),
        hash: None,
    })
}

/// Decodes one text frame from the server.
pub(crate) fn decode(text: &str) -> Result<Incoming, DecodeError> {
    let frame = ws::decode_server_frame(text).map_err(|error| DecodeError {
        request_id: error.request_id().cloned(),
        message: error.to_string(),
    })?;
    Ok(match frame {
        ServerFrame::Response(response) => Incoming::Response {
            id: response.id,
            grid: response.grid.into_grid(),
        },
        ServerFrame::Batch(items) => Incoming::Batch(
            items
                .into_iter()
                .map(|r| (r.id, r.grid.into_grid()))
                .collect(),
        ),
        ServerFrame::Watch { watch_id, grid } => Incoming::Watch { watch_id, grid },
        ServerFrame::Auth(message) => match message {
            AuthMessage::HelloChallenge {
                handshake_token, ..
            } => Incoming::Auth(AuthReply::Challenge { handshake_token }),
            AuthMessage::Scram {
                handshake_token,
                data,
                ..
            } => Incoming::Auth(AuthReply::Scram {
                handshake_token,
                data,
            }),
            AuthMessage::AuthOk { data, .. } => Incoming::Auth(AuthReply::Ok { data }),
            AuthMessage::AuthErr => Incoming::Auth(AuthReply::Err),
            _ => Incoming::Other,
        },
        _ => Incoming::Other,
    })
}
