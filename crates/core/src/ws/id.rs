use std::borrow::Cow;

use serde_json::value::RawValue;

/// A request id exactly as the client wrote it.
///
/// Any JSON value but `null` is an id (haystack-py echoes whatever it was
/// given). It is kept as its JSON text, so that the response echoes it byte
/// for byte: an integer beyond 64 bits, `1e400`, `1.50` or a string with
/// escapes comes back as it was sent, not as a float or re-encoded string.
///
/// ```
/// use hs_core::ws::{decode_client_frame, ClientFrame, RequestId};
///
/// let frame = decode_client_frame(r#"{"id":18446744073709551617,"op":"about"}"#).unwrap();
/// let ClientFrame::Request(request) = frame else { panic!("a request") };
/// assert_eq!(request.id.unwrap().as_json(), "18446744073709551617");
///
/// let id = RequestId::from("7");
/// assert_eq!(id.as_json(), r#""7""#);
/// assert_eq!(id.as_str().as_deref(), Some("7"));
/// assert_eq!(RequestId::from(7u32).as_u64(), Some(7));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Box<str>);

impl RequestId {
    /// An id from its JSON text (surrounding whitespace ignored); `None`
    /// when the text is not one JSON value, or is `null` (no id).
    pub fn parse(json: &str) -> Option<RequestId> {
        let raw: &RawValue = serde_json::from_str(json).ok()?;
        Self::from_raw(raw.get())
    }

    /// From the text of a value already checked to be JSON.
    pub(super) fn from_raw(json: &str) -> Option<RequestId> {
        (json != "null").then(|| RequestId(json.into()))
    }

    /// The id's JSON text, as received.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// The string, when the id is a JSON string.
    pub fn as_str(&self) -> Option<Cow<'_, str>> {
        if !self.0.starts_with('"') {
            return None;
        }
        let mut parser = crate::codec::json_fast::Parser::new(&self.0);
        match parser.string() {
            Some(text) if parser.end().is_some() => Some(text),
            // Escapes the fast parser leaves to serde_json.
            _ => serde_json::from_str::<String>(&self.0).ok().map(Cow::Owned),
        }
    }

    /// The number, when the id is a non-negative integer that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        if !self.0.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.0.parse().ok()
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

/// The JSON text.
impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string id.
impl From<&str> for RequestId {
    fn from(id: &str) -> Self {
        let mut json = String::with_capacity(id.len() + 2);
        crate::codec::write_str(&mut json, id);
        RequestId(json.into())
    }
}

/// A string id.
impl From<String> for RequestId {
    fn from(id: String) -> Self {
        RequestId::from(id.as_str())
    }
}

/// A number id.
impl From<u32> for RequestId {
    fn from(id: u32) -> Self {
        RequestId(id.to_string().into())
    }
}

/// A number id.
impl From<u64> for RequestId {
    fn from(id: u64) -> Self {
        RequestId(id.to_string().into())
    }
}

/// A number id.
impl From<i64> for RequestId {
    fn from(id: i64) -> Self {
        RequestId(id.to_string().into())
    }
}

/// A number id.
impl From<i32> for RequestId {
    fn from(id: i32) -> Self {
        RequestId(id.to_string().into())
    }
}
