//! The SCRAM-SHA-256 primitives of RFC 5802 / RFC 7677 and the four message
//! formats, as docs/protocol.md section 3.2 uses them.
//!
//! [`ScramClient`](super::ScramClient) and [`ScramServer`](super::ScramServer)
//! are built from these; they are public so that credentials can be derived
//! or checked by other tools (and so the worked examples can be recomputed).
//!
//! ```
//! use hs_core::auth::scram;
//!
//! // RFC 7677, section 3.
//! let salt = [0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81];
//! let salted = scram::salted_password(b"pencil", &salt, 4096);
//! let server_key = scram::server_key(&salted);
//! let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
//!     r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
//!     c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
//! let signature = scram::server_signature(&server_key, auth_message);
//! assert_eq!(scram::ServerFinal::Verifier(signature.to_vec()).to_message(),
//!            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
//! ```

use hmac::{KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::AuthError;
use super::encoding::{b64std_decode, b64std_encode};

/// Length of every SCRAM-SHA-256 key, signature and proof, in bytes.
pub const KEY_LEN: usize = 32;

/// A SCRAM-SHA-256 key, signature or proof.
pub type Key = [u8; KEY_LEN];

/// `c=` value for "no channel binding": base64 of `n,,`.
pub(crate) const CHANNEL_BINDING: &str = "biws";

/// HMAC-SHA-256 with a 32-byte key.
pub(crate) fn hmac(key: &Key, data: impl AsRef<[u8]>) -> Key {
    // HMAC pads keys shorter than the block size with zeros, so padding here
    // gives the same MAC and an infallible constructor.
    let mut block = [0u8; 64];
    block[..KEY_LEN].copy_from_slice(key);
    let mut mac = hmac::Hmac::<Sha256>::new(&block.into());
    mac.update(data.as_ref());
    mac.finalize().into_bytes().into()
}

/// SHA-256.
pub(crate) fn sha256(data: impl AsRef<[u8]>) -> Key {
    Sha256::digest(data.as_ref()).into()
}

/// `SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations, 32)`.
///
/// `iterations` of 0 is treated as 1 (PBKDF2 is undefined for 0).
pub fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<Key> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations.max(1), out.as_mut());
    out
}

/// `ClientKey = HMAC(SaltedPassword, "Client Key")`.
pub fn client_key(salted_password: &Key) -> Zeroizing<Key> {
    Zeroizing::new(hmac(salted_password, b"Client Key"))
}

/// `StoredKey = SHA-256(ClientKey)`.
pub fn stored_key(client_key: &Key) -> Key {
    sha256(client_key)
}

/// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
pub fn server_key(salted_password: &Key) -> Key {
    hmac(salted_password, b"Server Key")
}

/// `ClientSignature = HMAC(StoredKey, AuthMessage)`.
pub fn client_signature(stored_key: &Key, auth_message: &str) -> Key {
    hmac(stored_key, auth_message)
}

/// `ClientProof = ClientKey XOR ClientSignature`; also recovers `ClientKey`
/// from a proof and the signature (XOR is its own inverse).
pub fn xor(a: &Key, b: &Key) -> Key {
    let mut out = [0u8; KEY_LEN];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// `ServerSignature = HMAC(ServerKey, AuthMessage)`.
pub fn server_signature(server_key: &Key, auth_message: &str) -> Key {
    hmac(server_key, auth_message)
}

/// `AuthMessage = client-first-bare "," server-first "," client-final-without-proof`.
pub fn auth_message(
    client_first_bare: &str,
    server_first: &str,
    client_final_without_proof: &str,
) -> String {
    format!("{client_first_bare},{server_first},{client_final_without_proof}")
}

/// Escapes a username for `n=`: `=` becomes `=3D`, `,` becomes `=2C`.
pub(crate) fn escape_username(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// Reverses [`escape_username`]; any other `=` sequence is malformed.
pub(crate) fn unescape_username(escaped: &str) -> Result<String, AuthError> {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3);
        match code {
            Some("3D") => out.push('='),
            Some("2C") => out.push(','),
            _ => return Err(AuthError::Malformed("bad escape in SCRAM username")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Splits `a=1,b=2` into `(name, value)` pairs; a part without `=` or with a
/// name that is not one ASCII letter is malformed.
fn attributes(text: &str) -> Result<Vec<(char, &str)>, AuthError> {
    text.split(',')
        .map(|part| {
            let mut chars = part.chars();
            match (chars.next(), chars.next()) {
                (Some(name), Some('=')) if name.is_ascii_alphabetic() => Ok((name, &part[2..])),
                _ => Err(AuthError::Malformed("bad SCRAM attribute")),
            }
        })
        .collect()
}

fn attribute<'a>(attrs: &[(char, &'a str)], name: char) -> Option<&'a str> {
    attrs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A valid nonce is printable ASCII without `,` (RFC 5802 `printable`).
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// The client-first message: `n,,n=<user>,r=<cnonce>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The unescaped `n=` username, when present (haystack-py's server takes
    /// the user from HELLO instead).
    pub username: Option<String>,
    /// The client nonce `r=`.
    pub nonce: String,
    /// The message without its GS2 header, as it enters the AuthMessage.
    pub bare: String,
}

impl ClientFirst {
    /// Builds the message for `username` and `nonce`.
    pub fn new(username: &str, nonce: &str) -> Self {
        ClientFirst {
            username: Some(username.to_owned()),
            nonce: nonce.to_owned(),
            bare: format!("n={},r={nonce}", escape_username(username)),
        }
    }

    /// The full message, GS2 header `n,,` included.
    pub fn to_message(&self) -> String {
        format!("n,,{}", self.bare)
    }

    /// Parses a client-first message. Like haystack-py, a missing GS2 header
    /// and a missing `n=` are tolerated; a channel-binding request (`p=`) and
    /// a missing or invalid `r=` are not.
    pub fn parse(message: &str) -> Result<Self, AuthError> {
        let bare = if let Some(rest) = message
            .strip_prefix("n,,")
            .or_else(|| message.strip_prefix("y,,"))
        {
            rest
        } else if message.starts_with("p=") {
            return Err(AuthError::Malformed("channel binding is not supported"));
        } else {
            message
        };
        let attrs = attributes(bare)?;
        let nonce =
            attribute(&attrs, 'r').ok_or(AuthError::Malformed("client-first without r="))?;
        if !valid_nonce(nonce) {
            return Err(AuthError::Malformed("invalid client nonce"));
        }
        let username = attribute(&attrs, 'n').map(unescape_username).transpose()?;
        Ok(ClientFirst {
            username,
            nonce: nonce.to_owned(),
            bare: bare.to_owned(),
        })
    }
}

/// The server-first message: `r=<cnonce><snonce>,s=<base64 salt>,i=<iterations>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFirst {
    /// The combined nonce `r=`.
    pub nonce: String,
    /// The salt (decoded).
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
}

impl ServerFirst {
    /// The message text (salt in standard base64 with padding).
    pub fn to_message(&self) -> String {
        format!(
            "r={},s={},i={}",
            self.nonce,
            b64std_encode(&self.salt),
            self.iterations
        )
    }

    /// Parses a server-first message; a mandatory extension (`m=`) is refused.
    pub fn parse(message: &str) -> Result<Self, AuthError> {
        let attrs = attributes(message)?;
        if attribute(&attrs, 'm').is_some() {
            return Err(AuthError::Malformed(
                "unsupported mandatory SCRAM extension",
            ));
        }
        let nonce =
            attribute(&attrs, 'r').ok_or(AuthError::Malformed("server-first without r="))?;
        if !valid_nonce(nonce) {
            return Err(AuthError::Malformed("invalid server nonce"));
        }
        let salt = attribute(&attrs, 's')
            .and_then(b64std_decode)
            .ok_or(AuthError::Malformed("server-first without a valid s="))?;
        let iterations = attribute(&attrs, 'i')
            .and_then(|i| i.parse::<u32>().ok())
            .ok_or(AuthError::Malformed("server-first without a valid i="))?;
        Ok(ServerFirst {
            nonce: nonce.to_owned(),
            salt,
            iterations,
        })
    }
}

/// The client-final message: `c=biws,r=<nonce>,p=<base64 proof>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientFinal {
    /// The `c=` value (must be `biws`, no channel binding, for this server).
    pub channel_binding: String,
    /// The combined nonce `r=`.
    pub nonce: String,
    /// The decoded proof (any length; the server checks it is 32 bytes).
    pub proof: Vec<u8>,
    /// The message up to (without) `,p=`, as it enters the AuthMessage.
    pub without_proof: String,
}

impl std::fmt::Debug for ClientFinal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFinal")
            .field("channel_binding", &self.channel_binding)
            .field("nonce", &self.nonce)
            .field("proof", &"<redacted>")
            .finish()
    }
}

impl ClientFinal {
    /// Builds the message without its proof for `nonce`: `c=biws,r=<nonce>`.
    pub fn without_proof(nonce: &str) -> String {
        format!("c={CHANNEL_BINDING},r={nonce}")
    }

    /// The message text (proof in standard base64 with padding).
    pub fn to_message(&self) -> String {
        format!("{},p={}", self.without_proof, b64std_encode(&self.proof))
    }

    /// Parses a client-final message; `p=` must be the last attribute.
    pub fn parse(message: &str) -> Result<Self, AuthError> {
        let at = message
            .rfind(",p=")
            .ok_or(AuthError::Malformed("client-final without p="))?;
        let (without_proof, proof) = (&message[..at], &message[at + 3..]);
        let proof =
            b64std_decode(proof).ok_or(AuthError::Malformed("client-final proof is not base64"))?;
        let attrs = attributes(without_proof)?;
        let channel_binding =
            attribute(&attrs, 'c').ok_or(AuthError::Malformed("client-final without c="))?;
        let nonce =
            attribute(&attrs, 'r').ok_or(AuthError::Malformed("client-final without r="))?;
        Ok(ClientFinal {
            channel_binding: channel_binding.to_owned(),
            nonce: nonce.to_owned(),
            proof,
            without_proof: without_proof.to_owned(),
        })
    }
}

/// The server-final message: `v=<base64 signature>` or `e=<error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerFinal {
    /// `v=`: the decoded server signature.
    Verifier(Vec<u8>),
    /// `e=`: the server's error value.
    Error(String),
}

impl ServerFinal {
    /// The message text.
    pub fn to_message(&self) -> String {
        match self {
            ServerFinal::Verifier(signature) => format!("v={}", b64std_encode(signature)),
            ServerFinal::Error(error) => format!("e={error}"),
        }
    }

    /// Parses a server-final message.
    pub fn parse(message: &str) -> Result<Self, AuthError> {
        let attrs = attributes(message)?;
        if let Some(error) = attribute(&attrs, 'e') {
            return Ok(ServerFinal::Error(error.to_owned()));
        }
        attribute(&attrs, 'v')
            .and_then(b64std_decode)
            .map(ServerFinal::Verifier)
            .ok_or(AuthError::Malformed("server-final without a valid v="))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn username_escaping_round_trips() {
        assert_eq!(escape_username("a=b,c"), "a=3Db=2Cc");
        assert_eq!(unescape_username("a=3Db=2Cc").unwrap(), "a=b,c");
        assert!(unescape_username("a=3").is_err());
        assert!(unescape_username("a=41").is_err());
        assert_eq!(
            ClientFirst::new("x,y", "abc").to_message(),
            "n,,n=x=2Cy,r=abc"
        );
        assert_eq!(
            ClientFirst::parse("n,,n=x=2Cy,r=abc")
                .unwrap()
                .username
                .as_deref(),
            Some("x,y")
        );
    }

    #[test]
    fn client_first_parsing() {
        let first = ClientFirst::parse("n,,n=demo,r=_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1Wg").unwrap();
        assert_eq!(first.bare, "n=demo,r=_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1Wg");
        assert_eq!(first.nonce, "_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1Wg");
        assert_eq!(ClientFirst::parse("r=abc").unwrap().username, None);
        assert!(ClientFirst::parse("n,,n=demo").is_err());
        assert!(ClientFirst::parse("p=tls-unique,,n=demo,r=abc").is_err());
        assert!(ClientFirst::parse("n,,n=demo,r=").is_err());
        assert!(ClientFirst::parse("n,,garbage").is_err());
    }

    #[test]
    fn server_first_and_final_parsing() {
        let sf = ServerFirst::parse("r=abcdef,s=f70zpD33f/JlgIMw7LS2/A==,i=4096").unwrap();
        assert_eq!(sf.salt.len(), 16);
        assert_eq!(sf.iterations, 4096);
        assert_eq!(
            sf.to_message(),
            "r=abcdef,s=f70zpD33f/JlgIMw7LS2/A==,i=4096"
        );
        assert!(ServerFirst::parse("r=abc,s=f70z,i=x").is_err());
        assert!(ServerFirst::parse("m=ext,r=abc,s=f70zpD33f/JlgIMw7LS2/A==,i=4096").is_err());
        assert_eq!(
            ServerFinal::parse("e=invalid-proof").unwrap(),
            ServerFinal::Error("invalid-proof".into())
        );
        assert!(ServerFinal::parse("v=***").is_err());
    }

    #[test]
    fn client_final_parsing() {
        let cf = ClientFinal::parse("c=biws,r=abc,p=KJoJG8cYz0P0iMUVhs1mG2aeXpcCb8MzpbefnMjCBKo=")
            .unwrap();
        assert_eq!(cf.without_proof, "c=biws,r=abc");
        assert_eq!(cf.proof.len(), 32);
        assert!(!format!("{cf:?}").contains("KJoJ"));
        assert!(ClientFinal::parse("c=biws,r=abc").is_err());
        assert!(ClientFinal::parse("r=abc,p=AAAA").is_err());
    }
}
