//! Every authentication path of the SCRAM middleware, on a real socket.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod common;

use std::time::Duration;

use common::*;
use hs_core::auth::ScramClient;
use hs_core::auth::http::Authorization;
use hs_core::observe::RecordedEvent;
use reqwest::StatusCode;
use serde_json::json;

fn error(op: &str, kind: &str) -> RecordedEvent {
    RecordedEvent::Error {
        op: op.to_owned(),
        error_type: kind.to_owned(),
    }
}

fn ops_and_errors(events: &[RecordedEvent]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .map(|e| match e {
            RecordedEvent::Request { op, .. } => (op.clone(), None),
            RecordedEvent::Error { op, error_type } => (op.clone(), Some(error_type.clone())),
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

fn assert_security_headers(response: &reqwest::Response) {
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_handshake_then_bearer_requests() {
    let server = start_with_auth().await;
    let token = login(&server.client, &server.url("about"), USER, PASSWORD)
        .await
        .unwrap();
    assert_eq!(token.len(), 43);

    let response = server
        .client
        .post(server.url("read"))
        .header("Authorization", bearer(&token))
        .header("Content-Type", "application/json")
        .body(json_grid(json!({"filter": "equip"})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response);
    assert_eq!(rows(&json_body(&response.text().await.unwrap())).len(), 2);

    // Scheme names are case-insensitive.
    let response = server
        .client
        .get(server.url("about"))
        .header("Authorization", format!("Bearer authToken={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let events = server.events_after(5);
    assert_eq!(
        ops_and_errors(&events),
        [
            ("auth", None),
            ("auth", None),
            ("auth", None),
            ("read", None),
            ("about", None)
        ]
        .map(|(op, e): (&str, Option<String>)| (op.to_owned(), e))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_works_on_any_path_and_does_not_run_the_op() {
    let server = start_with_auth().await;
    let token = login(&server.client, &server.url("read"), USER, PASSWORD)
        .await
        .unwrap();
    let response = server
        .client
        .get(server.url("about"))
        .header("Authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = server.events_after(4);
    assert!(!events.iter().any(|e| e.op() == Some("read")), "{events:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_scheme_and_invalid_token_are_401_with_the_bare_challenge() {
    let server = start_with_auth().await;
    let attempts: [Option<&str>; 4] = [
        None,
        Some("Basic ZGVtbzpkZW1v"),
        Some("BEARER authToken=not-a-valid-token"),
        Some("BEARER"),
    ];
    for header in attempts {
        let mut request = server.client.get(server.url("about"));
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "SCRAM hash=SHA-256",
            "{header:?}"
        );
        assert_security_headers(&response);
        assert_eq!(response.text().await.unwrap(), "");
    }
    // POST without auth, and an unknown path under the base: 401 before 404.
    let response = server
        .client
        .post(server.url("read"))
        .header("Content-Type", "application/json")
        .body(json_grid(json!({"filter": "site"})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = server
        .client
        .get(server.url("fooBar"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let events = server.events_after(6);
    assert_eq!(
        &events[..4],
        &[
            error("about", "auth"),
            error("about", "auth"),
            error("about", "auth"),
            error("about", "auth")
        ]
    );
    assert_eq!(
        &events[4..],
        &[error("read", "auth"), error("fooBar", "auth")]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_403_authentication_failed() {
    let server = start_with_auth().await;
    let result = login(&server.client, &server.url("about"), USER, "wrong").await;
    assert_eq!(result, Err(StatusCode::FORBIDDEN));
    let events = server.events_after(3);
    assert_eq!(events[2], error("auth", "auth"));

    // The body, by hand.
    let mut scram = ScramClient::new(USER, "wrong");
    let hello = server
        .client
        .get(server.url("about"))
        .header("Authorization", Authorization::hello(USER).header_value())
        .send()
        .await
        .unwrap();
    let t1 = www_authenticate(&hello).handshake_token.unwrap();
    let first = server
        .client
        .get(server.url("about"))
        .header(
            "Authorization",
            Authorization::Scram {
                handshake_token: t1,
                data: scram.client_first(),
            }
            .header_value(),
        )
        .send()
        .await
        .unwrap();
    let challenge = www_authenticate(&first);
    let data = scram.client_final(&challenge.data.unwrap()).unwrap();
    let t2 = challenge.handshake_token.unwrap();
    let last = Authorization::Scram {
        handshake_token: t2,
        data,
    }
    .header_value();
    let response = server
        .client
        .get(server.url("about"))
        .header("Authorization", &last)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("content-type").is_none());
    assert_security_headers(&response);
    assert_eq!(response.text().await.unwrap(), "Authentication failed");

    // The handshake is consumed: replaying its token is a 401.
    let response = server
        .client
        .get(server.url("about"))
        .header("Authorization", &last)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "SCRAM hash=SHA-256");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_gets_the_same_shaped_challenge_then_fails_at_the_final_step() {
    let server = start_with_auth().await;
    let shape = |value: &str| {
        let params: Vec<&str> = value
            .trim_start_matches("SCRAM ")
            .split(", ")
            .map(|p| p.split_once('=').map_or(p, |(name, _)| name))
            .collect();
        params.join(",")
    };
    let mut shapes = Vec::new();
    for user in [USER, "nobody"] {
        let mut scram = ScramClient::new(user, "whatever");
        let hello = server
            .client
            .get(server.url("about"))
            .header("Authorization", Authorization::hello(user).header_value())
            .send()
            .await
            .unwrap();
        assert_eq!(hello.status(), StatusCode::UNAUTHORIZED);
        let challenge = hello.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let t1 = www_authenticate(&hello)
            .handshake_token
            .expect("a handshake token for every user");
        let first = server
            .client
            .get(server.url("about"))
            .header(
                "Authorization",
                Authorization::Scram {
                    handshake_token: t1,
                    data: scram.client_first(),
                }
                .header_value(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
        let server_first = first.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            www_authenticate(&first).data.is_some(),
            "{user}: a server-first message"
        );
        shapes.push((
            shape(&challenge),
            shape(&server_first),
            challenge.len(),
            server_first.len(),
        ));
    }
    assert_eq!(shapes[0].0, shapes[1].0);
    assert_eq!(shapes[0].1, shapes[1].1);
    assert_eq!(shapes[0].2, shapes[1].2, "challenge lengths differ");
    let result = login(&server.client, &server.url("about"), "nobody", "whatever").await;
    assert_eq!(result, Err(StatusCode::FORBIDDEN));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshake_token_is_401() {
    let server = start_with_auth().await;
    let response = server
        .client
        .get(server.url("about"))
        .header(
            "Authorization",
            "SCRAM handshakeToken=bogus, data=biwsbj1kZW1vLHI9YWJj",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "SCRAM hash=SHA-256");
    assert_eq!(server.events_after(1), [error("auth", "auth")]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_revokes_the_bearer_token() {
    let server = start_with_auth().await;
    let token = login(&server.client, &server.url("about"), USER, PASSWORD)
        .await
        .unwrap();
    let close = server
        .client
        .get(server.url("close"))
        .header("Authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(close.status(), StatusCode::OK);
    assert_eq!(server.tokens.as_ref().unwrap().validate(&token), None);
    let after = server
        .client
        .get(server.url("about"))
        .header("Authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let events = server.events_after(5);
    assert_eq!(events[3].op(), Some("close"));
    assert_eq!(events[4], error("about", "auth"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_401() {
    let server = start(Options {
        auth: true,
        token_ttl: Some(Duration::from_millis(300)),
        ..Options::default()
    })
    .await;
    let token = login(&server.client, &server.url("about"), USER, PASSWORD)
        .await
        .unwrap();
    let ok = server
        .client
        .get(server.url("about"))
        .header("Authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // Bounded wait: poll until the TTL has passed (at most 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut status = StatusCode::OK;
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = server
            .client
            .get(server.url("about"))
            .header("Authorization", bearer(&token))
            .send()
            .await
            .unwrap()
            .status();
        if status != StatusCode::OK {
            break;
        }
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_cannot_write_but_can_read() {
    let server = start_with_auth().await;
    let token = login(
        &server.client,
        &server.url("about"),
        READER,
        READER_PASSWORD,
    )
    .await
    .unwrap();
    let write = server
        .client
        .post(server.url("pointWrite"))
        .header("Authorization", bearer(&token))
        .header("Content-Type", "application/json")
        .body(json_grid(json!({"id": {"_kind": "ref", "val": "demo-ahu2-sp"}, "level": 8, "val": 70.0, "who": "r"})))
        .send()
        .await
        .unwrap();
    assert_eq!(
        write.status(),
        StatusCode::OK,
        "role refusals are error grids with HTTP 200"
    );
    let grid = json_body(&write.text().await.unwrap());
    assert_eq!(
        error_dis(&grid).as_deref(),
        Some("Insufficient permissions: pointWrite requires operator or admin role")
    );
    // Reading the priority array is a read.
    let read_array = server
        .client
        .post(server.url("pointWrite"))
        .header("Authorization", bearer(&token))
        .header("Content-Type", "application/json")
        .body(json_grid(
            json!({"id": {"_kind": "ref", "val": "demo-ahu2-sp"}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_dis(&json_body(&read_array.text().await.unwrap())),
        None
    );
    let events = server.events_after(5);
    assert_eq!(events[3], error("pointWrite", "forbidden"));
    assert!(matches!(&events[4], RecordedEvent::Request { op, .. } if op == "pointWrite"));
    server.stop().await;
}
