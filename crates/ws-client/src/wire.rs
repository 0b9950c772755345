//! The client's view of the haystack-py envelopes (PROTOCOL.md section 4):
//! what it writes and what it can receive.

use serde_json::Value as Json;

use crate::{Grid, WsClientError};

/// A decoded server frame.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// `{"grid":..,"id":..}`
    Response { id: Option<Json>, grid: Grid },
    /// `[{"grid":..,"id":..},..]`
    Batch(Vec<(Option<Json>, Grid)>),
    /// `{"type":"watch","watchId":..,"grid":..}`
    Watch { watch_id: String, grid: Grid },
    /// `{"type":"hello"|"scram"|"authOk"|"authErr",..}`
    Auth(AuthReply),
    /// A well-formed message the client has no use for (capabilities).
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
    pub(crate) request_id: Option<Json>,
    pub(crate) message: String,
}

/// The empty request grid sent for ops without arguments.
pub(crate) fn empty_grid() -> Grid {
    Grid {
        meta: None,
        columns: Vec::new(),
        rows: Vec::new(),
        ver: libhaystack::val::GRID_FORMAT_VERSION.to_string(),
    }
}

/// The `dis` of an error grid, `None` for any other grid.
pub(crate) fn error_dis(grid: &Grid) -> Option<String> {
    if !grid.is_err() {
        return None;
    }
    let dis = grid
        .meta
        .as_ref()
        .and_then(|m| m.get("dis"))
        .and_then(|v| match v {
            libhaystack::val::Value::Str(s) => Some(s.value().to_string()),
            _ => None,
        });
    Some(dis.unwrap_or_else(|| "error grid without dis".to_string()))
}

fn grid_json(grid: &Grid) -> Result<String, WsClientError> {
    let mut json =
        serde_json::to_value(grid).map_err(|e| WsClientError::BadRequest(e.to_string()))?;
    // haystack-py never sends `ver` in meta.
    if let Some(meta) = json.get_mut("meta").and_then(Json::as_object_mut) {
        meta.remove("ver");
    }
    Ok(json.to_string())
}

/// One request envelope, keys in haystack-py's order.
pub(crate) fn encode_request(
    id: u32,
    op: &str,
    grid: Grid,
    ch: Option<&str>,
) -> Result<String, WsClientError> {
    let mut out = String::with_capacity(64);
    out.push_str("{\"id\":\"");
    out.push_str(&id.to_string());
    out.push_str("\",\"op\":");
    out.push_str(&Json::from(op).to_string());
    out.push_str(",\"grid\":");
    out.push_str(&grid_json(&grid)?);
    if let Some(ch) = ch {
        out.push_str(",\"ch\":");
        out.push_str(&Json::from(ch).to_string());
    }
    out.push('}');
    Ok(out)
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
    serde_json::json!({ "authToken": token }).to_string()
}

/// SCRAM step 1: `{"type":"hello","username":"<b64url>"}`.
pub(crate) fn encode_hello(username_b64url: &str) -> String {
    serde_json::json!({ "type": "hello", "username": username_b64url }).to_string()
}

/// SCRAM steps 3 and 5.
pub(crate) fn encode_scram(handshake_token: &str, data: &str) -> String {
    serde_json::json!({ "type": "scram", "handshakeToken": handshake_token, "data": data })
        .to_string()
}

fn decode_grid(value: Option<&Json>) -> Result<Grid, String> {
    match value {
        None | Some(Json::Null) => Ok(empty_grid()),
        Some(v) => serde_json::from_value::<Grid>(v.clone()).map_err(|e| e.to_string()),
    }
}

fn str_field(obj: &serde_json::Map<String, Json>, key: &str) -> String {
    obj.get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Decodes one text frame from the server.
pub(crate) fn decode(text: &str) -> Result<Incoming, DecodeError> {
    let fail = |request_id, message: String| DecodeError {
        request_id,
        message,
    };
    let json: Json = serde_json::from_str(text).map_err(|e| fail(None, e.to_string()))?;
    match json {
        Json::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Json::Object(obj) = item else {
                    return Err(fail(None, "batch item is not an object".into()));
                };
                let id = obj.get("id").cloned();
                let grid = decode_grid(obj.get("grid")).map_err(|m| fail(id.clone(), m))?;
                out.push((id, grid));
            }
            Ok(Incoming::Batch(out))
        }
        Json::Object(obj) => match obj.get("type").and_then(Json::as_str) {
            Some("watch") => Ok(Incoming::Watch {
                watch_id: str_field(&obj, "watchId"),
                grid: decode_grid(obj.get("grid")).map_err(|m| fail(None, m))?,
            }),
            Some("hello") => Ok(Incoming::Auth(AuthReply::Challenge {
                handshake_token: str_field(&obj, "handshakeToken"),
            })),
            Some("scram") => Ok(Incoming::Auth(AuthReply::Scram {
                handshake_token: str_field(&obj, "handshakeToken"),
                data: str_field(&obj, "data"),
            })),
            Some("authOk") => Ok(Incoming::Auth(AuthReply::Ok {
                data: str_field(&obj, "data"),
            })),
            Some("authErr") => Ok(Incoming::Auth(AuthReply::Err)),
            Some("capabilities") => Ok(Incoming::Other),
            Some(other) => Err(fail(None, format!("unknown message type {other:?}"))),
            None => {
                let id = obj.get("id").cloned();
                if !obj.contains_key("grid") {
                    return Err(fail(id, "response without grid".into()));
                }
                let grid = decode_grid(obj.get("grid")).map_err(|m| fail(id.clone(), m))?;
                Ok(Incoming::Response { id, grid })
            }
        },
        other => Err(fail(None, format!("unexpected JSON value {other}"))),
    }
}
