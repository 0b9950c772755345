//! No secret reaches the logs: a capturing logger records everything at
//! TRACE while handshakes succeed and fail, then every record is searched
//! for passwords, tokens, proofs and keys. (Its own test binary: the logger
//! is process-global.)

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hs_core::auth::http::{self, AuthenticationInfo, Authorization, HttpAuth, WwwAuthenticate};
use hs_core::auth::scram::{self, ClientFinal, ServerFinal, ServerFirst};
use hs_core::auth::{Role, ScramClient, ScramServer, TokenStore, UserStore};
use hs_core::clock::ManualClock;
use parking_lot::Mutex;

#[derive(Debug, Clone)]
struct Record {
    level: log::Level,
    target: String,
    message: String,
}

struct Capture(Mutex<Vec<Record>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().push(Record {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
        });
    }

    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

/// Everything secret seen during a handshake, for the search.
#[derive(Default)]
struct Secrets(Vec<String>);

impl Secrets {
    fn add(&mut self, secret: impl Into<String>) {
        let secret = secret.into();
        assert!(!secret.is_empty());
        self.0.push(secret);
    }

    fn add_key(&mut self, key: &[u8]) {
        self.add(key.iter().map(|b| format!("{b:02x}")).collect::<String>());
        self.add(STANDARD.encode(key));
        self.add(URL_SAFE_NO_PAD.encode(key));
    }

    /// A token, and every 8-character window of it: not even a prefix may leak.
    fn add_token(&mut self, token: &str) {
        for start in 0..=token.len().saturating_sub(8) {
            self.add(&token[start..start + 8]);
        }
    }
}

/// A handshake over the HTTP helpers, collecting every secret on the way.
fn http_login(server: &ScramServer, user: &str, password: &str, secrets: &mut Secrets) -> HttpAuth {
    let mut client = ScramClient::new(user, password);
    let answer = http::authenticate(server, Some(&Authorization::hello(user).header_value()));
    let HttpAuth::Unauthorized {
        www_authenticate,
        error: None,
    } = answer
    else {
        panic!("{answer:?}")
    };
    let t1 = WwwAuthenticate::parse(&www_authenticate)
        .unwrap()
        .handshake_token
        .unwrap();
    secrets.add_token(&t1);
    let header = Authorization::Scram {
        handshake_token: t1,
        data: client.client_first(),
    };
    let answer = http::authenticate(server, Some(&header.header_value()));
    let HttpAuth::Unauthorized {
        www_authenticate,
        error: None,
    } = answer
    else {
        panic!("{answer:?}")
    };
    let challenge = WwwAuthenticate::parse(&www_authenticate).unwrap();
    let (t2, server_first) = (challenge.handshake_token.unwrap(), challenge.data.unwrap());
    secrets.add_token(&t2);
    let final_data = client.client_final(&server_first).unwrap();
    secrets.add_token(&final_data);
    let final_text = String::from_utf8(URL_SAFE_NO_PAD.decode(&final_data).unwrap()).unwrap();
    let proof = ClientFinal::parse(&final_text).unwrap().proof;
    secrets.add_key(&proof);
    let server_first_text =
        String::from_utf8(URL_SAFE_NO_PAD.decode(&server_first).unwrap()).unwrap();
    let salt = ServerFirst::parse(&server_first_text).unwrap().salt;
    let salted = scram::salted_password(password.as_bytes(), &salt, 4096);
    secrets.add_key(salted.as_ref());
    secrets.add_key(scram::client_key(&salted).as_ref());
    secrets.add_key(&scram::server_key(&salted));
    let answer = http::authenticate(
        server,
        Some(
            &Authorization::Scram {
                handshake_token: t2,
                data: final_data,
            }
            .header_value(),
        ),
    );
    if let HttpAuth::Authenticated {
        authentication_info,
        ..
    } = &answer
    {
        let info = AuthenticationInfo::parse(authentication_info).unwrap();
        secrets.add_token(&info.auth_token);
        let data = info.data.unwrap();
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(&data).unwrap()).unwrap();
        let ServerFinal::Verifier(signature) = ServerFinal::parse(&text).unwrap() else {
            panic!()
        };
        secrets.add_key(&signature);
        client.verify_server_final(&data).unwrap();
    }
    answer
}

#[test]
fn no_secret_is_ever_logged() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    let users = UserStore::new().with_iterations(4096);
    users.add_user("demo", "demo-pass-Secret1", Role::Operator);
    let clock = Arc::new(ManualClock::new());
    let tokens = TokenStore::new().with_clock(clock.clone());
    let server = ScramServer::builder(users.clone(), tokens)
        .clock(clock.clone())
        .max_handshakes(5)
        .max_handshakes_per_source(5)
        .build();
    let mut secrets = Secrets::default();
    secrets.add("demo-pass-Secret1");
    secrets.add("Wrong-Pass-Secret2");
    let credential = users.credential("demo").unwrap();
    secrets.add_key(credential.stored_key());
    secrets.add_key(credential.server_key());

    // Success, then use of the token, then its expiry.
    let HttpAuth::Authenticated {
        authentication_info,
        ..
    } = http_login(&server, "demo", "demo-pass-Secret1", &mut secrets)
    else {
        panic!("login failed");
    };
    let token = AuthenticationInfo::parse(&authentication_info)
        .unwrap()
        .auth_token;
    let bearer = Authorization::Bearer {
        auth_token: token.clone(),
    }
    .header_value();
    assert!(matches!(
        http::authenticate(&server, Some(&bearer)),
        HttpAuth::Authorized(_)
    ));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(http::authenticate(&server, Some(&bearer)).status(), 401);

    // Failures: wrong password, unknown user, garbage, a full table.
    assert_eq!(
        http_login(&server, "demo", "Wrong-Pass-Secret2", &mut secrets).status(),
        403
    );
    assert_eq!(
        http_login(&server, "ghost", "Wrong-Pass-Secret2", &mut secrets).status(),
        403
    );
    assert_eq!(
        http::authenticate(
            &server,
            Some("SCRAM handshakeToken=Zm9vYmFyYmF6cXV4, data=x")
        )
        .status(),
        401
    );
    let flooder = Some("192.0.2.7".parse().unwrap());
    for _ in 0..6 {
        let _ = server.hello_from(flooder, "ZGVtbw");
    }
    // Client-side failure: a forged server signature.
    let mut client = ScramClient::new("demo", "demo-pass-Secret1");
    let challenge = server.hello_from(flooder, "ZGVtbw");
    assert!(
        challenge.is_err(),
        "the address has 5 handshakes in progress"
    );
    clock.advance(Duration::from_secs(60));
    let challenge = server.hello(&client.hello_username()).unwrap();
    let first = server
        .first(&challenge.handshake_token, &client.client_first())
        .unwrap();
    secrets.add_token(&challenge.handshake_token);
    secrets.add_token(&first.handshake_token);
    let _ = client.client_final(&first.data).unwrap();
    assert!(
        client
            .verify_server_final(
                &URL_SAFE_NO_PAD.encode("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            )
            .is_err()
    );

    // Debug output of everything holding a secret is redacted too.
    let debug = format!(
        "{server:?} {users:?} {credential:?} {client:?} {:?} {:?} {:?}",
        Authorization::parse(&bearer).unwrap(),
        challenge,
        first
    );

    let records = LOGGER.0.lock().clone();
    let auth: Vec<&Record> = records.iter().filter(|r| r.target == "hs::auth").collect();
    assert!(
        auth.iter()
            .any(|r| r.level == log::Level::Info && r.message.contains("authenticated")),
        "{auth:#?}"
    );
    assert!(
        auth.iter()
            .any(|r| r.level == log::Level::Warn && r.message.contains("authentication failed"))
    );
    assert!(
        auth.iter()
            .any(|r| r.level == log::Level::Warn && r.message.contains("handshakes in progress"))
    );
    assert!(
        auth.iter()
            .any(|r| r.level == log::Level::Warn && r.message.contains("signature"))
    );
    assert!(auth.iter().any(|r| r.level == log::Level::Debug));
    for record in &records {
        assert!(
            record.target.starts_with("hs::"),
            "module-path target: {record:?}"
        );
        for secret in &secrets.0 {
            assert!(
                !record.message.contains(secret.as_str()),
                "secret {secret:?} in log record {record:?}"
            );
        }
    }
    for secret in &secrets.0 {
        assert!(
            !debug.contains(secret.as_str()),
            "secret {secret:?} in Debug output {debug}"
        );
    }
}
