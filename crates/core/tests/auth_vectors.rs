//! SCRAM-SHA-256 against known answers: the RFC 7677 test vector, the
//! worked example of docs/protocol.md 3.4, and the captured haystack-py
//! exchanges in `fixtures/`.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hs_core::auth::scram::{self, ClientFinal, ClientFirst, ServerFinal, ServerFirst};
use hs_core::auth::{
    Role, ScramClient, ScramCredential, ScramServer, ScramStep, TokenStore, UserStore,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64url_text(data: &str) -> String {
    String::from_utf8(URL_SAFE_NO_PAD.decode(data).unwrap()).unwrap()
}

fn b64url(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// A server holding one user with a fixed salt, and a fixed server nonce suffix.
fn fixed_server(
    user: &str,
    password: &str,
    salt: &[u8],
    iterations: u32,
    nonce_suffix: &str,
) -> ScramServer {
    let users = UserStore::new().with_iterations(iterations);
    users.insert_credential(
        user,
        ScramCredential::derive(password, salt, iterations),
        Role::Operator,
    );
    ScramServer::builder(users, TokenStore::new())
        .fixed_server_nonce(nonce_suffix)
        .build()
}

/// Runs a server through a whole exchange fed with given client messages and
/// checks it answers exactly the expected server messages (all base64url).
fn replay_server(
    server: &ScramServer,
    user: &str,
    client_first: &str,
    server_first: &str,
    client_final: &str,
    server_final: &str,
) {
    let challenge = server.hello(&b64url(user)).unwrap();
    assert_eq!(challenge.handshake_token.len(), 32);
    let first = server
        .first(&challenge.handshake_token, client_first)
        .unwrap();
    assert_eq!(b64url_text(&first.data), b64url_text(server_first));
    assert_eq!(first.data, server_first);
    assert_ne!(
        first.handshake_token, challenge.handshake_token,
        "a new token at every step"
    );
    let ScramStep::Authenticated(done) = server.step(&first.handshake_token, client_final).unwrap()
    else {
        panic!("the final step must authenticate");
    };
    assert_eq!(b64url_text(&done.data), b64url_text(server_final));
    assert_eq!(done.data, server_final);
    assert_eq!(done.principal.username, user);
    assert_eq!(done.auth_token.len(), 43);
    assert_eq!(
        server.tokens().validate(&done.auth_token).unwrap().username,
        user
    );
}

#[test]
fn rfc7677_test_vector() {
    let client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    let server_first =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    let server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    // Client side.
    let mut client = ScramClient::new("user", "pencil").with_fixed_nonce("rOprNGfwEbeRWgbNEkqO");
    assert_eq!(b64url_text(&client.client_first()), client_first);
    let produced = client.client_final(&b64url(server_first)).unwrap();
    assert_eq!(b64url_text(&produced), client_final);
    assert!(!client.is_complete());
    client.verify_server_final(&b64url(server_final)).unwrap();
    assert!(client.is_complete());

    // Server side.
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let server = fixed_server(
        "user",
        "pencil",
        &salt,
        4096,
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    );
    replay_server(
        &server,
        "user",
        &b64url(client_first),
        &b64url(server_first),
        &b64url(client_final),
        &b64url(server_final),
    );
}

#[test]
fn protocol_worked_example_values() {
    // docs/protocol.md 3.4, every row of the table.
    let client_first = "n,,n=demo,r=_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1Wg";
    let server_first = "r=_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1WgPBjiUJud_Nana359mCd8SZYHyS02Sq5Z,s=f70zpD33f/JlgIMw7LS2/A==,i=4096";
    let sf = ServerFirst::parse(server_first).unwrap();
    assert_eq!(hex(&sf.salt), "7fbd33a43df77ff265808330ecb4b6fc");
    assert_eq!(sf.iterations, 4096);

    let salted = scram::salted_password(b"demo-pass", &sf.salt, sf.iterations);
    assert_eq!(
        hex(salted.as_ref()),
        "a8a706655bfcabce0c9f6240abe14bd081653dc8934d94816410268a1b820b49"
    );
    let client_key = scram::client_key(&salted);
    assert_eq!(
        hex(client_key.as_ref()),
        "bbcf643f4bc4bb64ec3b564b41a49218e69bc8f3be1e63e377374b1d82568230"
    );
    let stored_key = scram::stored_key(&client_key);
    assert_eq!(
        hex(&stored_key),
        "d94bfff6ca158578862b1f10d21b1da4f8bd3d478ae24750983be8404832f47a"
    );

    let bare = ClientFirst::parse(client_first).unwrap().bare;
    let without_proof = ClientFinal::without_proof(&sf.nonce);
    let auth_message = scram::auth_message(&bare, server_first, &without_proof);
    assert_eq!(
        auth_message,
        "n=demo,r=_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1Wg,r=_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1WgPBjiUJud_Nana359mCd8SZYHyS02Sq5Z,\
         s=f70zpD33f/JlgIMw7LS2/A==,i=4096,c=biws,r=_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1WgPBjiUJud_Nana359mCd8SZYHyS02Sq5Z"
    );
    let client_signature = scram::client_signature(&stored_key, &auth_message);
    assert_eq!(
        hex(&client_signature),
        "93556d248cdc742718b3935ec769f40380059664bc71a0d0d280d4814a94869a"
    );
    let proof = scram::xor(&client_key, &client_signature);
    assert_eq!(
        hex(&proof),
        "289a091bc718cf43f488c51586cd661b669e5e97026fc333a5b79f9cc8c204aa"
    );
    assert_eq!(
        STANDARD.encode(proof),
        "KJoJG8cYz0P0iMUVhs1mG2aeXpcCb8MzpbefnMjCBKo="
    );
    let client_final = ClientFinal {
        channel_binding: "biws".into(),
        nonce: sf.nonce.clone(),
        proof: proof.to_vec(),
        without_proof: without_proof.clone(),
    };
    assert_eq!(
        client_final.to_message(),
        "c=biws,r=_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1WgPBjiUJud_Nana359mCd8SZYHyS02Sq5Z,p=KJoJG8cYz0P0iMUVhs1mG2aeXpcCb8MzpbefnMjCBKo="
    );
    let server_key = scram::server_key(&salted);
    assert_eq!(
        hex(&server_key),
        "c6b0e08fe3879246d0b8e62bce787e1b37b73ead0bad08faf0c76e0e74193e9b"
    );
    let server_signature = scram::server_signature(&server_key, &auth_message);
    assert_eq!(
        hex(&server_signature),
        "694690773ecc6b2bd0aff95cac1e4788811ee85d07590c649b50a865344fb46c"
    );
    assert_eq!(
        ServerFinal::Verifier(server_signature.to_vec()).to_message(),
        "v=aUaQdz7MayvQr/lcrB5HiIEe6F0HWQxkm1CoZTRPtGw="
    );

    // The credential a server keeps holds the same keys, and verifies the proof.
    let credential = ScramCredential::derive("demo-pass", &sf.salt, 4096);
    assert_eq!(credential.stored_key(), &stored_key);
    assert_eq!(credential.server_key(), &server_key);
    assert!(credential.verify_proof(&auth_message, &proof));
}

// The captured header values of docs/protocol.md 3.4.
const CAPTURED_CLIENT_FIRST: &str = "biwsbj1kZW1vLHI9X3pfbk1BMkdFUERLX3ZqaUJBS1daMlZHRUxwT1YxV2c";
const CAPTURED_SERVER_FIRST: &str = "cj1fel9uTUEyR0VQREtfdmppQkFLV1oyVkdFTHBPVjFXZ1BCamlVSnVkX05hbmEzNTltQ2Q4U1pZSHlTMDJTcTVaLHM9ZjcwenBEMzNmL0psZ0lNdzdMUzIvQT09LGk9NDA5Ng";
const CAPTURED_CLIENT_FINAL: &str = "Yz1iaXdzLHI9X3pfbk1BMkdFUERLX3ZqaUJBS1daMlZHRUxwT1YxV2dQQmppVUp1ZF9OYW5hMzU5bUNkOFNaWUh5UzAyU3E1WixwPUtKb0pHOGNZejBQMGlNVVZoczFtRzJhZVhwY0NiOE16cGJlZm5NakNCS289";
const CAPTURED_SERVER_FINAL: &str =
    "dj1hVWFRZHo3TWF5dlFyL2xjckI1SGlJRWU2RjBIV1F4a20xQ29aVFJQdEd3PQ";

#[test]
fn client_reproduces_the_captured_exchange() {
    let mut client =
        ScramClient::new("demo", "demo-pass").with_fixed_nonce("_z_nMA2GEPDK_vjiBAKWZ2VGELpOV1Wg");
    assert_eq!(client.hello_username(), "ZGVtbw");
    assert_eq!(client.client_first(), CAPTURED_CLIENT_FIRST);
    assert_eq!(
        client.client_final(CAPTURED_SERVER_FIRST).unwrap(),
        CAPTURED_CLIENT_FINAL
    );
    client.verify_server_final(CAPTURED_SERVER_FINAL).unwrap();
}

#[test]
fn server_reproduces_the_captured_exchange() {
    let salt = STANDARD.decode("f70zpD33f/JlgIMw7LS2/A==").unwrap();
    let server = fixed_server(
        "demo",
        "demo-pass",
        &salt,
        4096,
        "PBjiUJud_Nana359mCd8SZYHyS02Sq5Z",
    );
    replay_server(
        &server,
        "demo",
        CAPTURED_CLIENT_FIRST,
        CAPTURED_SERVER_FIRST,
        CAPTURED_CLIENT_FINAL,
        CAPTURED_SERVER_FINAL,
    );
}

/// The four SCRAM `data` values of one captured exchange.
struct Capture {
    client_first: String,
    server_first: String,
    client_final: String,
    server_final: String,
}

fn lines(fixture: &str) -> Vec<serde_json::Value> {
    let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn header<'a>(event: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    event["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|h| h[1].as_str())
}

fn http_capture(fixture: &str) -> Capture {
    use hs_core::auth::http::{AuthenticationInfo, Authorization, WwwAuthenticate};
    let events = lines(fixture);
    let scram_data: Vec<String> = events
        .iter()
        .filter_map(|e| header(e, "Authorization"))
        .filter_map(|v| match Authorization::parse(v).unwrap() {
            Authorization::Scram { data, .. } => Some(data),
            _ => None,
        })
        .collect();
    let server_first = events
        .iter()
        .filter_map(|e| header(e, "www-authenticate"))
        .find_map(|v| WwwAuthenticate::parse(v).unwrap().data)
        .unwrap();
    let server_final = events
        .iter()
        .find_map(|e| header(e, "authentication-info"))
        .map(|v| AuthenticationInfo::parse(v).unwrap().data.unwrap())
        .unwrap();
    assert_eq!(scram_data.len(), 2);
    Capture {
        client_first: scram_data[0].clone(),
        server_first,
        client_final: scram_data[1].clone(),
        server_final,
    }
}

fn ws_capture(fixture: &str) -> Capture {
    let messages: Vec<serde_json::Value> = lines(fixture)
        .into_iter()
        .filter(|e| e["kind"] == "text")
        .map(|e| serde_json::from_str(e["text"].as_str().unwrap()).unwrap())
        .collect();
    let data = |kind: &str, n: usize| -> String {
        messages
            .iter()
            .filter(|m| m["type"] == kind)
            .nth(n)
            .unwrap()["data"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // scram messages alternate c2s, s2c, c2s.
    Capture {
        client_first: data("scram", 0),
        server_first: data("scram", 1),
        client_final: data("scram", 2),
        server_final: data("authOk", 0),
    }
}

/// Checks a captured exchange against a credential built from `demo-pass`
/// with the captured salt and iterations, then replays it through a server.
fn check_capture(capture: &Capture) {
    let client_first = ClientFirst::parse(&b64url_text(&capture.client_first)).unwrap();
    let server_first_text = b64url_text(&capture.server_first);
    let server_first = ServerFirst::parse(&server_first_text).unwrap();
    let client_final = ClientFinal::parse(&b64url_text(&capture.client_final)).unwrap();
    assert_eq!(client_first.nonce.len(), 32);
    assert_eq!(server_first.nonce.len(), 64);
    assert_eq!(server_first.salt.len(), 16);

    let credential =
        ScramCredential::derive("demo-pass", &server_first.salt, server_first.iterations);
    let auth_message = scram::auth_message(
        &client_first.bare,
        &server_first_text,
        &client_final.without_proof,
    );
    assert!(
        credential.verify_proof(&auth_message, &client_final.proof),
        "captured proof verifies"
    );
    let wrong = ScramCredential::derive("demo-pasS", &server_first.salt, server_first.iterations);
    assert!(!wrong.verify_proof(&auth_message, &client_final.proof));
    let ServerFinal::Verifier(v) = ServerFinal::parse(&b64url_text(&capture.server_final)).unwrap()
    else {
        panic!("captured server-final is v=");
    };
    assert_eq!(v, credential.server_signature(&auth_message));

    let suffix = &server_first.nonce[client_first.nonce.len()..];
    let server = fixed_server(
        "demo",
        "demo-pass",
        &server_first.salt,
        server_first.iterations,
        suffix,
    );
    replay_server(
        &server,
        "demo",
        &capture.client_first,
        &capture.server_first,
        &capture.client_final,
        &capture.server_final,
    );
}

#[test]
fn captured_http_exchange_verifies() {
    let capture = http_capture("http-scram-read-json.jsonl");
    assert_eq!(capture.client_first, CAPTURED_CLIENT_FIRST);
    check_capture(&capture);
}

#[test]
fn captured_ws_exchange_verifies() {
    check_capture(&ws_capture("ws-scram-success.jsonl"));
}
