//! Telling a failed TLS handshake from other connection failures.

use std::error::Error;

/// How deep an error chain is searched (chains are a handful long; the
/// bound only guards against a cycle).
const MAX_DEPTH: usize = 32;

/// The rustls error somewhere in `error`'s chain: the handshake failed (an
/// unknown CA, an expired certificate, a name mismatch, an alert from the
/// server, such as the `certificate_required` a TLS 1.3 server sends a
/// client without a certificate after the handshake, on the first read).
/// `None` for every other failure (refused, reset, timed out), which are
/// not TLS failures.
///
/// An `std::io::Error`'s `source` skips the error it wraps, so each one is
/// opened by hand.
pub fn handshake_failure<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    for _ in 0..MAX_DEPTH {
        let current = next?;
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn Error + 'static)),
                None => None,
            },
            None => current.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_rustls_error_is_found_inside_io_errors() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let wrapped = Outer(std::io::Error::new(std::io::ErrorKind::InvalidData, alert));
        let found = handshake_failure(&wrapped).map(ToString::to_string);
        assert_eq!(
            found.as_deref(),
            Some("received fatal alert: CertificateRequired")
        );

        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(handshake_failure(&refused).is_none());
    }
}
