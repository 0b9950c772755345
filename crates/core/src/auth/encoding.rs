//! Base64 flavours and random values used on the wire (docs/protocol.md 3.1).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::RngCore as _;

/// base64url; written without padding, read with or without.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64; written with padding, read with or without.
const B64STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// base64url without padding (usernames, `data`, tokens, nonces).
pub(crate) fn b64url_encode(bytes: impl AsRef<[u8]>) -> String {
    B64URL.encode(bytes)
}

/// Decodes base64url, padding tolerated.
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    B64URL.decode(text.trim()).ok()
}

/// Decodes base64url (padding tolerated) into UTF-8 text.
pub(crate) fn b64url_decode_utf8(text: &str) -> Option<String> {
    String::from_utf8(b64url_decode(text)?).ok()
}

/// Standard base64 with padding (`s=`, `p=`, `v=` inside SCRAM messages).
pub(crate) fn b64std_encode(bytes: impl AsRef<[u8]>) -> String {
    B64STD.encode(bytes)
}

/// Decodes standard base64, padding tolerated.
pub(crate) fn b64std_decode(text: &str) -> Option<Vec<u8>> {
    B64STD.decode(text).ok()
}

/// `N` bytes from the thread-local CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// 24 random bytes as 32 base64url characters: nonces and handshake tokens.
pub(crate) fn random_token_32() -> String {
    b64url_encode(random_bytes::<24>())
}

/// 32 random bytes as 43 base64url characters: auth tokens.
pub(crate) fn random_token_43() -> String {
    b64url_encode(random_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_protocol() {
        assert_eq!(random_token_32().len(), 32);
        assert_eq!(random_token_43().len(), 43);
        assert_ne!(random_token_43(), random_token_43());
    }

    #[test]
    fn padding_is_tolerated_on_read() {
        assert_eq!(b64url_encode("demo"), "ZGVtbw");
        assert_eq!(b64url_decode_utf8("ZGVtbw").as_deref(), Some("demo"));
        assert_eq!(b64url_decode_utf8("ZGVtbw==").as_deref(), Some("demo"));
        assert_eq!(b64std_encode([0xfbu8, 0xff]), "+/8=");
        assert_eq!(b64std_decode("+/8=").as_deref(), Some(&[0xfbu8, 0xff][..]));
        assert_eq!(b64url_decode("!!"), None);
    }
}
