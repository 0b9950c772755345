//! `hs serve` with TLS, driven as a user would: certificates generated
//! here, the real `hs` binary serving HTTPS and WSS, the `hs` client
//! commands with `--ca`, `--client-cert` and `--client-key`; certificate
//! logins mapped to roles; SIGHUP reloading the certificate under load.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, ServerName};
use support::{Ca, ChildGuard, TempDir, hs, serve, stderr, stdout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server certificate for 127.0.0.1 and localhost: (cert PEM, key PEM, DER).
fn server_certificate(ca: &Ca) -> (String, String, Vec<u8>) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let (cert, key) = ca.sign(params);
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// A client certificate with subject CN `cn` and its key, written to
/// `dir`: (cert path, key path).
fn client_files(dir: &TempDir, ca: &Ca, cn: &str) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let (cert, key) = ca.sign(params);
    (
        dir.file(&format!("{cn}.pem"), &cert.pem()),
        dir.file(&format!("{cn}.key"), &key.serialize_pem()),
    )
}

fn url(addr: &str) -> String {
    format!("https://{addr}")
}

fn wss(addr: &str) -> String {
    format!("wss://{addr}")
}

#[test]
fn certificates_log_in_with_their_roles_over_both_transports() {
    let dir = TempDir::new("serve-tls-roles");
    let ca = Ca::new("site CA");
    let (cert, key, _) = server_certificate(&ca);
    let ca_file = dir.file("ca.pem", &ca.pem());
    let cert_file = dir.file("server.pem", &cert);
    let key_file = dir.file("server.key", &key);
    let (_server, addr) = serve(&[
        "--tls-cert",
        &cert_file,
        "--tls-key",
        &key_file,
        "--tls-client-ca",
        &ca_file,
        "--tls-client-auth",
        "optional",
        "--tls-user",
        "cn:meter-1=meter:reader",
        "--tls-user",
        "cn:gateway-7=gw7:operator",
        "--user",
        "ada:lovelace:admin",
        "--scram-iterations",
        "4096",
    ]);
    let (reader_cert, reader_key) = client_files(&dir, &ca, "meter-1");
    let (operator_cert, operator_key) = client_files(&dir, &ca, "gateway-7");
    let (stranger_cert, stranger_key) = client_files(&dir, &ca, "stranger");
    let with_cert = |cert: &str, key: &str| {
        vec![
            "--ca".to_owned(),
            ca_file.clone(),
            "--client-cert".to_owned(),
            cert.to_owned(),
            "--client-key".to_owned(),
            key.to_owned(),
        ]
    };
    let run = |args: &[&str], tls: &[String]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(tls.iter().map(String::as_str));
        hs(&all)
    };

    for base in [url(&addr), wss(&addr)] {
        // The reader's certificate reads, and may not write.
        let reader = with_cert(&reader_cert, &reader_key);
        let read = run(&["read", "--url", &base, "--id", "demo-ahu1-dat"], &reader);
        assert!(read.status.success(), "{base}: {}", stderr(&read));
        assert!(stdout(&read).contains("demo-ahu1-dat"), "{}", stdout(&read));
        let refused = run(
            &["write", "--url", &base, "demo-ahu1-dat-sp", "8", "55°F"],
            &reader,
        );
        assert!(!refused.status.success(), "{base}: a reader wrote");
        let said = stderr(&refused);
        assert!(said.contains("Insufficient permissions"), "{base}: {said}");

        // The operator's certificate writes.
        let operator = with_cert(&operator_cert, &operator_key);
        let wrote = run(
            &["write", "--url", &base, "demo-ahu1-dat-sp", "8", "55°F"],
            &operator,
        );
        assert!(wrote.status.success(), "{base}: {}", stderr(&wrote));

        // A certificate no rule maps, with no password: refused, clearly.
        let stranger = with_cert(&stranger_cert, &stranger_key);
        let refused = run(&["about", "--url", &base], &stranger);
        assert!(
            !refused.status.success(),
            "{base}: an unmapped certificate was served"
        );

        // No certificate (optional): SCRAM still applies on top of TLS.
        let ca_only = vec!["--ca".to_owned(), ca_file.clone()];
        let scram = run(
            &[
                "about",
                "--url",
                &base,
                "--user",
                "ada",
                "--password",
                "lovelace",
            ],
            &ca_only,
        );
        assert!(scram.status.success(), "{base}: {}", stderr(&scram));
        let anonymous = run(&["about", "--url", &base], &ca_only);
        assert!(
            !anonymous.status.success(),
            "{base}: served without a login"
        );
    }

    // A certificate from another CA fails the handshake: a TLS error.
    let other = Ca::new("other CA");
    let (other_cert, other_key) = client_files(&dir, &other, "gateway-7");
    let refused = run(
        &["about", "--url", &url(&addr)],
        &with_cert(&other_cert, &other_key),
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).to_lowercase().contains("tls"),
        "{}",
        stderr(&refused)
    );

    // Without --ca the generated CA is unknown: a TLS error, not a hang.
    let untrusted = hs(&["about", "--url", &url(&addr)]);
    assert!(!untrusted.status.success());
    assert!(
        stderr(&untrusted).to_lowercase().contains("tls"),
        "{}",
        stderr(&untrusted)
    );
}

/// The leaf certificate a new TLS connection to `addr` is shown, after one
/// `about` request over it (`Connection: close`).
async fn served_certificate(addr: &str, ca_der: &[u8]) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /api/about HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        return Err(String::from_utf8_lossy(&answer).into_owned());
    }
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    Ok(leaf)
}

/// Polls until a new connection is shown `expected` (bounded).
async fn wait_for_certificate(addr: &str, ca_der: &[u8], expected: &[u8]) -> bool {
    let deadline = Instant::now() + support::WAIT;
    while Instant::now() < deadline {
        if served_certificate(addr, ca_der).await.as_deref() == Ok(expected) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn hangup(server: &ChildGuard) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Replaces `path` at once (write beside, then rename), as a deploy would.
fn replace(path: &str, text: &str) {
    let staged = format!("{path}.new");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_under_load_and_refuses_a_bad_one() {
    let dir = TempDir::new("serve-tls-reload");
    let ca = Ca::new("site CA");
    let (first, first_key, first_der) = server_certificate(&ca);
    let cert_file = dir.file("server.pem", &first);
    let key_file = dir.file("server.key", &first_key);
    let (server, addr) = serve(&["--tls-cert", &cert_file, "--tls-key", &key_file]);
    let ca_der = ca.cert.der().to_vec();
    assert_eq!(served_certificate(&addr, &ca_der).await.unwrap(), first_der);

    // Load through the reloads: a keep-alive HTTPS client, and new
    // connections one after another; not one request may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let keep_alive = {
        let client = hs_http_client::HttpClient::builder(url(&addr))
            .add_root_certificates_pem(ca.pem())
            .build()
            .unwrap();
        let (stop, served) = (stop.clone(), served.clone());
        tokio::spawn(async move {
            use hs_core::client::HaystackClient;
            let mut failures = Vec::new();
            for _ in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match client.about().await {
                    Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        failures.push(error.to_string());
                        0
                    }
                };
            }
            failures
        })
    };
    let fresh = {
        let (stop, addr, ca_der) = (stop.clone(), addr.clone(), ca_der.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(error) = served_certificate(&addr, &ca_der).await {
                    failures.push(error);
                }
            }
            failures
        })
    };

    // A new certificate: new connections are shown it after SIGHUP.
    let (second, second_key, second_der) = server_certificate(&ca);
    replace(&key_file, &second_key);
    replace(&cert_file, &second);
    hangup(&server);
    assert!(
        wait_for_certificate(&addr, &ca_der, &second_der).await,
        "the new certificate was never served; stderr: {:?}",
        server.stderr_lines()
    );
    assert!(server.wait_for_stderr("TLS configuration reloaded", 1));

    // A broken key: refused with a WARN naming the file, the second
    // certificate still served.
    replace(
        &key_file,
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    );
    hangup(&server);
    assert!(
        server.wait_for_stderr("server.key", 1),
        "{:?}",
        server.stderr_lines()
    );
    assert_eq!(
        served_certificate(&addr, &ca_der).await.unwrap(),
        second_der
    );

    let before = served.load(Ordering::Relaxed);
    let deadline = Instant::now() + support::WAIT;
    while served.load(Ordering::Relaxed) < before + 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let keep_alive_failures = keep_alive.await.unwrap();
    let fresh_failures = fresh.await.unwrap();
    assert!(keep_alive_failures.is_empty(), "{keep_alive_failures:?}");
    assert!(fresh_failures.is_empty(), "{fresh_failures:?}");
    assert!(
        served.load(Ordering::Relaxed) > before,
        "the keep-alive client stalled"
    );
    for line in server.stderr_lines() {
        assert!(!line.contains("PRIVATE KEY"), "key material logged: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_watch_reloads_a_changed_certificate_without_a_signal() {
    let dir = TempDir::new("serve-tls-watch");
    let ca = Ca::new("site CA");
    let (first, first_key, first_der) = server_certificate(&ca);
    let cert_file = dir.file("server.pem", &first);
    let key_file = dir.file("server.key", &first_key);
    let (server, addr) = serve(&[
        "--tls-cert",
        &cert_file,
        "--tls-key",
        &key_file,
        "--tls-watch",
        "50ms",
    ]);
    let ca_der = ca.cert.der().to_vec();
    assert_eq!(served_certificate(&addr, &ca_der).await.unwrap(), first_der);
    let (second, second_key, second_der) = server_certificate(&ca);
    replace(&key_file, &second_key);
    replace(&cert_file, &second);
    assert!(
        wait_for_certificate(&addr, &ca_der, &second_der).await,
        "the changed certificate was never served; stderr: {:?}",
        server.stderr_lines()
    );
    assert!(
        !server
            .stderr_lines()
            .iter()
            .any(|line| line.contains("SIGHUP")),
        "reloaded by a signal, not by the watch"
    );
}
