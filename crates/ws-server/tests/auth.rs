//! Every authentication path: static token, shared token store, SCRAM
//! messages, refusals, the deadline and the authorizer.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::Duration;

use common::*;
use hs_core::auth::{Principal, Role, ScramClient, ScramServer, TokenStore, UserStore};
use serde_json::json;

const CLOSE_POLICY: u16 = 1008;

fn scram_server() -> ScramServer {
    let users = UserStore::new().with_iterations(4096);
    users.add_user("demo", "demo-pass", Role::Operator);
    users.add_user("viewer", "view-pass", Role::Reader);
    ScramServer::new(users, TokenStore::new())
}

/// Runs the SCRAM message exchange; returns the `authOk` message.
async fn scram_login(client: &mut Client, user: &str, password: &str) -> serde_json::Value {
    let mut scram = ScramClient::new(user, password);
    client
        .send_json(&json!({"type": "hello", "username": scram.hello_username()}))
        .await;
    let hello = client.recv_json().await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["hash"], "SHA-256");
    let token = hello["handshakeToken"].as_str().unwrap().to_owned();
    client
        .send_json(&json!({"type": "scram", "handshakeToken": token, "data": scram.client_first()}))
        .await;
    let first = client.recv_json().await;
    assert_eq!(first["type"], "scram", "{first}");
    let token = first["handshakeToken"].as_str().unwrap().to_owned();
    let proof = scram.client_final(first["data"].as_str().unwrap()).unwrap();
    client
        .send_json(&json!({"type": "scram", "handshakeToken": token, "data": proof}))
        .await;
    let last = client.recv_json().await;
    if last["type"] == "authOk" {
        scram
            .verify_server_final(last["data"].as_str().unwrap())
            .expect("server signature");
    }
    last
}

async fn expect_auth_err_and_close(client: &mut Client) {
    let refusal = client.recv_json().await;
    assert_eq!(refusal, json!({"type": "authErr"}));
    let frame = client.expect_close().await.expect("close frame");
    assert_eq!(u16::from(frame.code), CLOSE_POLICY);
}

#[tokio::test]
async fn static_token_success_is_silent() {
    let server = start(|b| b.static_token("demo-static-token")).await;
    let mut client = server.client().await;
    client
        .send_text(r#"{"authToken":"demo-static-token"}"#)
        .await;
    let about = client.request("0", "about", empty_grid()).await;
    assert_eq!(about["id"], "0");
    assert!(error_dis(&about).is_none());
    let recv = server.recorder.messages_recv();
    assert_eq!(
        recv[0],
        (
            "auth".to_owned(),
            r#"{"authToken":"demo-static-token"}"#.len()
        )
    );
    assert!(
        server
            .recorder
            .requests()
            .iter()
            .any(|(op, _)| op == "auth")
    );
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_token_gets_auth_err_and_1008() {
    let server = start(|b| b.static_token("demo-static-token")).await;
    let mut client = server.client().await;
    client.send_text(r#"{"authToken":"wrong-token"}"#).await;
    expect_auth_err_and_close(&mut client).await;
    assert!(server.wait_disconnects(1).await);
    assert_eq!(errors_of(&server.recorder, "auth"), ["auth"]);
    assert!(
        server
            .recorder
            .messages_sent()
            .contains(&("auth".to_owned(), r#"{"type":"authErr"}"#.len()))
    );
    server.stop().await;
}

#[tokio::test]
async fn request_before_auth_never_reaches_dispatch() {
    let server = start(|b| b.static_token("demo-static-token")).await;
    let mut client = server.client().await;
    let write = grid(
        json!({}),
        &["id", "level", "val", "who"],
        vec![
            json!({"id": reference("demo-ahu2-sp"), "level": 8.0, "val": 99.0, "who": "intruder"}),
        ],
    );
    client
        .send_json(&json!({"id": "x", "op": "pointWrite", "grid": write}))
        .await;
    expect_auth_err_and_close(&mut client).await;
    assert!(server.wait_disconnects(1).await);
    assert_eq!(errors_of(&server.recorder, "pointWrite"), ["auth"]);
    // The write was never applied.
    let mut reader = Client::connect(server.addr).await;
    reader
        .send_text(r#"{"authToken":"demo-static-token"}"#)
        .await;
    let array = reader
        .request("r", "pointWrite", read_ids(&["demo-ahu2-sp"]))
        .await;
    assert!(array["grid"]["rows"][7].get("val").is_none(), "{array}");
    reader.close().await;
    server.stop().await;
}

#[tokio::test]
async fn scram_success_issues_a_token_valid_on_http_and_ws() {
    let scram = scram_server();
    let tokens = scram.tokens().clone();
    let server = start(move |b| b.auth(scram)).await;
    let mut client = server.client().await;
    let ok = scram_login(&mut client, "demo", "demo-pass").await;
    assert_eq!(ok["type"], "authOk", "{ok}");
    let token = ok["authToken"].as_str().unwrap().to_owned();
    // The shared store knows it: the HTTP server would accept it as a bearer.
    assert_eq!(
        tokens.validate(&token).map(|p| p.username),
        Some("demo".to_owned())
    );
    let about = client.request("0", "about", empty_grid()).await;
    assert!(error_dis(&about).is_none());
    // Another connection may use it as {"authToken":..}.
    let mut second = server.client().await;
    second.send_json(&json!({"authToken": token})).await;
    assert_eq!(second.request("1", "about", empty_grid()).await["id"], "1");
    let auth_frames = server
        .recorder
        .messages_sent()
        .iter()
        .filter(|(op, _)| op == "auth")
        .count();
    assert_eq!(auth_frames, 3, "hello, scram, authOk");
    client.close().await;
    second.close().await;
    server.stop().await;
}

#[tokio::test]
async fn token_from_the_shared_store_is_accepted() {
    let tokens = TokenStore::new();
    let issued = tokens.issue(Principal::new("http-user", Role::Operator));
    let shared = tokens.clone();
    let server = start(move |b| b.token_store(shared)).await;
    let mut client = server.client().await;
    client.send_json(&json!({"authToken": issued})).await;
    assert_eq!(client.request("0", "about", empty_grid()).await["id"], "0");
    // A revoked token is refused.
    tokens.revoke(&issued);
    let mut late = server.client().await;
    late.send_json(&json!({"authToken": issued})).await;
    expect_auth_err_and_close(&mut late).await;
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn scram_wrong_password_and_unknown_user_are_refused() {
    let server = start(|b| b.auth(scram_server())).await;
    let mut client = server.client().await;
    let refusal = scram_login(&mut client, "demo", "wrong").await;
    assert_eq!(refusal, json!({"type": "authErr"}));
    let frame = client.expect_close().await.expect("close");
    assert_eq!(u16::from(frame.code), CLOSE_POLICY);

    let mut unknown = server.client().await;
    let refusal = scram_login(&mut unknown, "nobody", "x").await;
    assert_eq!(refusal, json!({"type": "authErr"}));
    assert!(server.wait_disconnects(2).await);
    assert_eq!(errors_of(&server.recorder, "auth"), ["auth", "auth"]);
    server.stop().await;
}

#[tokio::test]
async fn scram_bad_handshake_token_is_auth_err() {
    let server = start(|b| b.auth(scram_server())).await;
    let mut client = server.client().await;
    let mut scram = ScramClient::new("demo", "demo-pass");
    client
        .send_json(&json!({"type": "hello", "username": scram.hello_username()}))
        .await;
    let hello = client.recv_json().await;
    assert_eq!(hello["type"], "hello");
    client
        .send_json(
            &json!({"type": "scram", "handshakeToken": "bogus", "data": scram.client_first()}),
        )
        .await;
    expect_auth_err_and_close(&mut client).await;
    server.stop().await;
}

#[tokio::test]
async fn garbage_first_message_is_refused() {
    let server = start(|b| b.auth(scram_server())).await;
    let mut client = server.client().await;
    client.send_text("not json at all").await;
    expect_auth_err_and_close(&mut client).await;
    assert!(server.wait_disconnects(1).await);
    assert_eq!(errors_of(&server.recorder, "invalid"), ["auth"]);
    server.stop().await;
}

#[tokio::test]
async fn auth_deadline_closes_silent_clients() {
    let server = start(|b| {
        b.static_token("t")
            .config(hs_ws_server::WsConfig::default().with_auth_timeout(Duration::from_millis(200)))
    })
    .await;
    let mut client = server.client().await;
    expect_auth_err_and_close(&mut client).await;
    assert!(server.wait_disconnects(1).await);
    assert_eq!(errors_of(&server.recorder, "auth"), ["timeout"]);
    server.stop().await;
}

#[tokio::test]
async fn reader_may_read_but_not_write() {
    let server = start(|b| b.auth(scram_server())).await;
    let mut client = server.client().await;
    let ok = scram_login(&mut client, "viewer", "view-pass").await;
    assert_eq!(ok["type"], "authOk");
    let read = client
        .request("r", "read", read_ids(&["demo-ahu2-sp"]))
        .await;
    assert_eq!(row_ids(&read), ["demo-ahu2-sp"]);
    let array = client
        .request("a", "pointWrite", read_ids(&["demo-ahu2-sp"]))
        .await;
    assert!(
        error_dis(&array).is_none(),
        "reading the priority array is a read: {array}"
    );
    let write = grid(
        json!({}),
        &["id", "level", "val", "who"],
        vec![json!({"id": reference("demo-ahu2-sp"), "level": 8.0, "val": 1.0, "who": "viewer"})],
    );
    let refused = client.request("w", "pointWrite", write).await;
    assert_eq!(refused["id"], "w");
    assert!(error_dis(&refused).is_some(), "{refused}");
    assert_eq!(errors_of(&server.recorder, "pointWrite"), ["forbidden"]);
    // Still connected and serving.
    assert_eq!(client.request("b", "about", empty_grid()).await["id"], "b");
    client.close().await;
    server.stop().await;
}
