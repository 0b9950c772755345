//! The standalone `WsServer` over TLS (WSS), with a certificate generated
//! here: a round trip observed on both sides, and a client that does not
//! speak TLS refused with a WARN on `hs::ws::conn` and
//! `on_error("connect", "tls")` while others are served. One test binary
//! with its own global logger.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::Duration;

use hs_core::observe::LogCapture;
use hs_core::observe::{Event, RecordedEvent, RecordingObserver};
use hs_ws_client::{HaystackClient, WsClient};
use hs_ws_server::{ServerTls, WsServer, WsServerState};
use log::Level;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

const WAIT: Duration = Duration::from_secs(20);

fn capture() -> &'static LogCapture {
    LogCapture::install()
}

/// A CA's DER certificate and a server certificate for 127.0.0.1 it
/// signed, as PEM with its key.
fn certificates() -> (Vec<u8>, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "hs test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.der().to_vec(), leaf.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_round_trip_and_a_failed_handshake_on_the_standalone_server() {
    capture();
    let (ca, cert, key) = certificates();
    let tls = ServerTls::builder()
        .certificate_pem(cert)
        .key_pem(key)
        .build()
        .unwrap();
    let server_events = Arc::new(RecordingObserver::new());
    let state = WsServerState::builder(Arc::new(hs_core::demo::building()))
        .observer(server_events.clone())
        .build();
    let server = WsServer::bind("127.0.0.1:0", state).await.unwrap().tls(tls);
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    let running = tokio::spawn(server.serve());

    // ws:// against the wss:// port: the server sees no TLS handshake.
    let plain = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws")),
    )
    .await
    .unwrap();
    assert!(plain.is_err(), "a plain WebSocket client was served");
    let is_tls_error = |e: &RecordedEvent| matches!(e, RecordedEvent::Error { op, error_type } if op == "connect" && error_type == "tls");
    assert!(server_events.wait_for(|events| events.iter().any(is_tls_error), WAIT));
    let warned = capture().lines().iter().any(|(level, target, text)| {
        *level == Level::Warn
            && target == "hs::ws::conn"
            && text.starts_with("TLS handshake with 127.0.0.1:")
    });
    assert!(warned, "no WARN on hs::ws::conn");

    // A WSS client of hs is served.
    let client_events = Arc::new(RecordingObserver::new());
    let client = WsClient::builder(format!("wss://{addr}/api/ws"))
        .add_root_certificate(ca)
        .observer(client_events.clone())
        .connect()
        .await
        .unwrap();
    assert_eq!(client.about().await.unwrap().rows.len(), 1);
    assert!(
        !client
            .read_filter("site", None)
            .await
            .unwrap()
            .rows
            .is_empty()
    );
    client.close().await.unwrap();
    assert!(server_events.wait_for(
        |events| {
            events
                .iter()
                .any(|e| matches!(e, RecordedEvent::WsDisconnect { .. }))
        },
        WAIT
    ));
    let ops = |recorder: &RecordingObserver| -> Vec<String> {
        recorder.requests().into_iter().map(|(op, _)| op).collect()
    };
    assert_eq!(ops(&server_events), ["about", "read"]);
    assert_eq!(ops(&client_events), ["about", "read"]);
    assert_eq!(server_events.count_event(Event::WsConnect), 1);
    assert_eq!(server_events.count(is_tls_error), 1);

    shutdown.shutdown();
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
