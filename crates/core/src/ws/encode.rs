//! Encoding envelopes byte for byte as the reference writes them.

use libhaystack::val::Grid;
use serde::Serialize;

use super::{AuthMessage, CapabilitiesReply, CapabilitiesRequest, WsRequest, WsResponse};
use crate::codec;

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
