//! haystack-py's WebSocket JSON envelopes (docs/protocol.md sections 4.3–4.7):
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

mod decode;
mod encode;
mod error;
mod frames;
mod id;

pub use decode::{
    WsReadRequest, decode_client_frame, decode_client_frame_with_limit, decode_plain_read,
    decode_server_frame,
};
pub use encode::{
    encode_auth, encode_capabilities_reply, encode_capabilities_request,
    encode_capabilities_v1_reply, encode_request, encode_requests, encode_response,
    encode_responses, encode_watch,
};
pub use error::FrameError;
pub use frames::{
    AuthMessage, CapabilitiesReply, CapabilitiesRequest, ClientFrame, MAX_BATCH, SUBPROTOCOL,
    ServerFrame, WsRequest, WsResponse,
};
pub use id::RequestId;
