//! A verified client certificate's names, as the auth layers read them.

use std::net::IpAddr;

use hs_core::auth::PeerCertificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// The subject CN and the DNS, email, URI and IP SANs of a DER end-entity
/// certificate; `None` when it does not parse (rustls verified it, so that
/// is not expected).
pub(crate) fn peer_certificate(der: &[u8]) -> Option<PeerCertificate> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                    names.push((*s).to_owned());
                }
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Some(PeerCertificate::new(common_name, names))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::peer_certificate;

    #[test]
    fn common_name_and_every_kind_of_san() {
        let mut params = rcgen::CertificateParams::new(vec!["gw7.example.com".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gateway-7");
        params.subject_alt_names.extend([
            rcgen::SanType::Rfc822Name("ops@example.com".try_into().unwrap()),
            rcgen::SanType::URI("spiffe://example.com/gw7".try_into().unwrap()),
            rcgen::SanType::IpAddress("10.0.0.7".parse().unwrap()),
            rcgen::SanType::IpAddress("::1".parse().unwrap()),
        ]);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let peer = peer_certificate(cert.der()).unwrap();
        assert_eq!(peer.common_name(), Some("gateway-7"));
        assert_eq!(
            peer.subject_alt_names(),
            [
                "gw7.example.com",
                "ops@example.com",
                "spiffe://example.com/gw7",
                "10.0.0.7",
                "::1"
            ]
        );
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(peer_certificate(b"not a certificate"), None);
    }
}
