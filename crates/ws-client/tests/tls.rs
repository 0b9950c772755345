#![allow(clippy::unwrap_used, clippy::result_large_err)]
//! `wss://`: the client over rustls (ring) against a TLS WebSocket server
//! with a self-signed certificate.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hs_ws_client::{HaystackClient, WsClient};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[tokio::test]
async fn wss_with_a_custom_root() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der = CertificateDer::from(cert.cert.der().to_vec());
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));

    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        // Two connections at most: the trusted one and the refused one.
        for _ in 0..2 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let callback = |_: &Request, mut resp: Response| {
                    resp.headers_mut().insert(
                        "sec-websocket-protocol",
                        HeaderValue::from_static("haystack"),
                    );
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, callback).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(text) = msg {
                        let req: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                        let reply = format!(
                            r#"{{"grid":{{"_kind":"grid","meta":{{}},"cols":[{{"name":"tls"}}],"rows":[{{"tls":true}}]}},"id":{}}}"#,
                            req["id"]
                        );
                        if ws.send(Message::text(reply)).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = WsClient::builder(format!("wss://localhost:{port}/api/ws"))
        .tls_config(Arc::new(client_config))
        .connect()
        .await
        .unwrap();
    let grid = client.about().await.unwrap();
    assert_eq!(grid.rows.len(), 1);
    client.close().await;

    // With the default (webpki) roots the self-signed certificate is refused.
    let err = WsClient::connect(format!("wss://localhost:{port}/api/ws"))
        .await
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "connect");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    server.abort();
}
