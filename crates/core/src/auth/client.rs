use crate::observe::targets;
use std::fmt;

use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::AuthError;
use super::encoding::{b64url_decode_utf8, b64url_encode, random_token_32};
use super::scram::{self, ClientFinal, ClientFirst, Key, ServerFinal, ServerFirst};

/// The fewest PBKDF2 iterations a [`ScramClient`] accepts by default (RFC 7677's minimum).
pub const DEFAULT_MIN_ITERATIONS: u32 = 4096;

/// The most PBKDF2 iterations a [`ScramClient`] accepts by default, so a
/// hostile server cannot make the client burn CPU.
pub const DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;

/// The shortest salt a [`ScramClient`] accepts, in bytes.
pub(crate) const MIN_SALT_LEN: usize = 16;

/// The client side of one SCRAM-SHA-256 handshake, independent of transport.
///
/// Call in order: [`hello_username`](Self::hello_username) (for HELLO),
/// [`client_first`](Self::client_first), [`client_final`](Self::client_final)
/// with the server-first `data`, then
/// [`verify_server_final`](Self::verify_server_final) with the server-final
/// `data`. All `data` values are base64url as carried in headers and
/// WebSocket messages.
///
/// The client refuses an iteration count outside
/// [`with_iteration_bounds`](Self::with_iteration_bounds) (default
/// 4096..=1 000 000), a salt under 16 bytes, and a server nonce that does not
/// extend its own; it checks the server signature in constant time. The
/// password is wiped from memory once the proof is computed; `Debug` never
/// shows it. One client is good for one handshake: make a new one to log in
/// again.
pub struct ScramClient {
    username: String,
    password: Option<Zeroizing<String>>,
    nonce: String,
    min_iterations: u32,
    max_iterations: u32,
    state: State,
}

enum State {
    Initial,
    FirstSent { client_first_bare: String },
    FinalSent { server_signature: Zeroizing<Key> },
    Done,
}

impl ScramClient {
    /// A client for `username` and `password` with a new random nonce
    /// (24 bytes, 32 base64url characters).
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        ScramClient {
            username: username.into(),
            password: Some(Zeroizing::new(password.into())),
            nonce: random_token_32(),
            min_iterations: DEFAULT_MIN_ITERATIONS,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            state: State::Initial,
        }
    }

    /// Sets the iteration counts the client accepts from a server.
    #[must_use]
    pub fn with_iteration_bounds(mut self, min: u32, max: u32) -> Self {
        self.min_iterations = min;
        self.max_iterations = max;
        self
    }

    /// Test hook: the client nonce to use instead of a random one, so RFC
    /// test vectors and captured exchanges can be replayed (feature
    /// `test-util`). A fixed nonce makes the handshake replayable.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    #[must_use]
    pub fn with_fixed_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = nonce.into();
        self
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The HELLO `username` value: base64url of the UTF-8 name, no padding.
    pub fn hello_username(&self) -> String {
        b64url_encode(&self.username)
    }

    /// The SCRAM first step's `data`: base64url of `n,,n=<user>,r=<nonce>`.
    pub fn client_first(&mut self) -> String {
        let first = ClientFirst::new(&self.username, &self.nonce);
        log::debug!(target: targets::AUTH, "SCRAM client-first for {:?}", self.username);
        let message = first.to_message();
        self.state = State::FirstSent {
            client_first_bare: first.bare,
        };
        b64url_encode(message)
    }

    /// The SCRAM final step's `data` for the server-first `data`: runs
    /// PBKDF2 and computes the proof.
    pub fn client_final(&mut self, server_first_data: &str) -> Result<String, AuthError> {
        let State::FirstSent { client_first_bare } = &self.state else {
            return Err(AuthError::OutOfOrder);
        };
        let server_first_text = b64url_decode_utf8(server_first_data).ok_or(
            AuthError::Malformed("server-first data is not base64url UTF-8"),
        )?;
        let server_first = ServerFirst::parse(&server_first_text)?;
        if !(self.min_iterations..=self.max_iterations).contains(&server_first.iterations) {
            return Err(AuthError::IterationsOutOfRange {
                iterations: server_first.iterations,
                min: self.min_iterations,
                max: self.max_iterations,
            });
        }
        if server_first.salt.len() < MIN_SALT_LEN {
            return Err(AuthError::SaltTooShort(server_first.salt.len()));
        }
        // The server must add its own part to our nonce.
        if server_first.nonce.len() <= self.nonce.len()
            || !server_first.nonce.starts_with(&self.nonce)
        {
            return Err(AuthError::NonceMismatch);
        }
        let password = self.password.take().ok_or(AuthError::OutOfOrder)?;
        let salted = scram::salted_password(
            password.as_bytes(),
            &server_first.salt,
            server_first.iterations,
        );
        drop(password);
        let client_key = scram::client_key(&salted);
        let without_proof = ClientFinal::without_proof(&server_first.nonce);
        let auth_message =
            scram::auth_message(client_first_bare, &server_first_text, &without_proof);
        let signature = scram::client_signature(&scram::stored_key(&client_key), &auth_message);
        let proof = scram::xor(&client_key, &signature);
        let server_signature = Zeroizing::new(scram::server_signature(
            &scram::server_key(&salted),
            &auth_message,
        ));
        let client_final = ClientFinal {
            channel_binding: scram::CHANNEL_BINDING.to_owned(),
            nonce: server_first.nonce,
            proof: proof.to_vec(),
            without_proof,
        };
        self.state = State::FinalSent { server_signature };
        log::debug!(
            target: targets::AUTH,
            "SCRAM client-final for {:?} ({} iterations)",
            self.username,
            server_first.iterations
        );
        Ok(b64url_encode(client_final.to_message()))
    }

    /// Checks the server-final `data` (`v=<signature>`) in constant time.
    /// Success proves the server knows the credential.
    pub fn verify_server_final(&mut self, server_final_data: &str) -> Result<(), AuthError> {
        let State::FinalSent { server_signature } = &self.state else {
            return Err(AuthError::OutOfOrder);
        };
        let text = b64url_decode_utf8(server_final_data).ok_or(AuthError::Malformed(
            "server-final data is not base64url UTF-8",
        ))?;
        match ServerFinal::parse(&text)? {
            ServerFinal::Verifier(signature) => {
                if bool::from(signature.as_slice().ct_eq(server_signature.as_slice())) {
                    self.state = State::Done;
                    log::debug!(target: targets::AUTH, "SCRAM server signature verified for {:?}", self.username);
                    Ok(())
                } else {
                    log::warn!(target: targets::AUTH, "SCRAM server signature mismatch for {:?}", self.username);
                    Err(AuthError::ServerSignatureMismatch)
                }
            }
            ServerFinal::Error(error) => Err(AuthError::ServerRejected(error)),
        }
    }

    /// `true` once the server signature has been verified.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Initial => "initial",
            State::FirstSent { .. } => "first_sent",
            State::FinalSent { .. } => "final_sent",
            State::Done => "done",
        };
        f.debug_struct("ScramClient")
            .field("username", &self.username)
            .field("state", &state)
            .field("min_iterations", &self.min_iterations)
            .field("max_iterations", &self.max_iterations)
            .finish_non_exhaustive()
    }
}
