//! Certificates and keys read from PEM or DER.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// The certificates of a PEM bundle (one or more `CERTIFICATE` sections),
/// in order; `what` names them in the error (`CA certificate`, `client
/// certificate`). Fails when a section is malformed or there is none.
pub fn certificates_from_pem(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Certificate {
            what,
            reason: format!("malformed PEM: {error}"),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::Certificate {
            what,
            reason: "no PEM CERTIFICATE section found".to_owned(),
        });
    }
    Ok(certificates)
}

/// A client certificate chain and its private key, for mutual TLS: the
/// client presents them to a server that asks for a certificate.
///
/// Its `Debug` shows the chain's length, never the key.
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// From PEM: `cert_chain` holds the client's certificate first, then
    /// any intermediates; `key` holds its private key (PKCS#8, PKCS#1 or
    /// SEC1). Whether the key belongs to the certificate is checked when a
    /// client is built.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let chain = certificates_from_pem(cert_chain, "client certificate")?;
        // The key's own parse error could quote part of it: name the
        // failure only.
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|error| {
            TlsError::PrivateKey(match error {
                pem::Error::NoItemsFound => "no PEM private key section found",
                _ => "malformed PEM",
            })
        })?;
        Ok(ClientIdentity { chain, key })
    }

    /// From DER: the client's certificate first, then any intermediates,
    /// and its private key (PKCS#8, PKCS#1 or SEC1, told apart by their
    /// structure).
    pub fn from_der(cert_chain: Vec<Vec<u8>>, key: Vec<u8>) -> Result<Self, TlsError> {
        if cert_chain.is_empty() {
            return Err(TlsError::Certificate {
                what: "client certificate",
                reason: "the chain is empty".to_owned(),
            });
        }
        let key = PrivateKeyDer::try_from(key)
            .map_err(|_| TlsError::PrivateKey("not a DER private key"))?;
        Ok(ClientIdentity {
            chain: cert_chain.into_iter().map(CertificateDer::from).collect(),
            key,
        })
    }

    /// The chain, the client's certificate first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// Copies for rustls, which takes both by value.
    pub(crate) fn parts(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain.clone(), self.key.clone_key())
    }
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        let (chain, key) = self.parts();
        ClientIdentity { chain, key }
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_PEM: &[u8] = b"hello";

    #[test]
    fn bad_pem_is_named_without_the_key() {
        let error = certificates_from_pem(NOT_PEM, "CA certificate").unwrap_err();
        assert_eq!(error.as_str(), "certificate");
        assert!(error.to_string().starts_with("CA certificate:"), "{error}");

        let secret =
            b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleSBieXRlcw==!!\n-----END PRIVATE KEY-----\n";
        let chain = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        let error = ClientIdentity::from_pem(chain, secret).unwrap_err();
        assert_eq!(error.as_str(), "private_key");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");

        let error = ClientIdentity::from_pem(chain, NOT_PEM).unwrap_err();
        assert_eq!(
            error.to_string(),
            "client private key: no PEM private key section found"
        );
        assert!(ClientIdentity::from_der(Vec::new(), vec![1]).is_err());
    }
}
