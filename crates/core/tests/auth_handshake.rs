//! SCRAM handshakes through the state machines and the HTTP helpers: round
//! trips, every refusal, lifetimes, limits and unknown users.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hs_core::auth::http::{self, AuthenticationInfo, Authorization, HttpAuth, WwwAuthenticate};
use hs_core::auth::scram::ServerFirst as ServerFirstMessage;
use hs_core::auth::{
    AuthError, DEFAULT_MAX_HANDSHAKES_PER_SOURCE, Principal, Role, ScramClient, ScramServer,
    ScramStep, TokenStore, UserStore,
};
use hs_core::clock::ManualClock;
use hs_core::observe::ErrorKind;

const ITERATIONS: u32 = 4096;

fn users() -> UserStore {
    let users = UserStore::new().with_iterations(ITERATIONS);
    users.add_user("demo", "demo-pass", Role::Operator);
    users.add_user("viewer", "view-pass", Role::Reader);
    users
}

fn server() -> ScramServer {
    ScramServer::new(users(), TokenStore::new())
}

fn text(data: &str) -> String {
    String::from_utf8(URL_SAFE_NO_PAD.decode(data).unwrap()).unwrap()
}

fn data(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// Runs HELLO and the first step; returns the client and the final step's
/// handshake token.
fn start(server: &ScramServer, user: &str, password: &str) -> (ScramClient, String, String) {
    let mut client = ScramClient::new(user, password);
    let challenge = server.hello(&client.hello_username()).unwrap();
    let first = server
        .first(&challenge.handshake_token, &client.client_first())
        .unwrap();
    (client, first.handshake_token, first.data)
}

#[test]
fn round_trip_through_the_state_machines() {
    let server = server();
    let (mut client, token, server_first) = start(&server, "demo", "demo-pass");
    let client_final = client.client_final(&server_first).unwrap();
    let done = server.finish(&token, &client_final).unwrap();
    client.verify_server_final(&done.data).unwrap();
    assert_eq!(done.principal, Principal::new("demo", Role::Operator));
    assert_eq!(
        server.authenticate_bearer(&done.auth_token).unwrap().role,
        Role::Operator
    );
    assert_eq!(server.handshakes_in_progress(), 0);
    // Formats of everything on the wire.
    let sf = ServerFirstMessage::parse(&text(&server_first)).unwrap();
    assert_eq!(sf.nonce.len(), 64);
    assert_eq!(sf.salt.len(), 16);
    assert_eq!(sf.iterations, ITERATIONS);
    assert!(text(&server_first).contains(",s=") && text(&server_first).ends_with(",i=4096"));
    assert!(
        !server_first.contains('=') && !client_final.contains('='),
        "data is unpadded base64url"
    );
    assert!(text(&client_final).starts_with("c=biws,r="));
    assert!(text(&done.data).starts_with("v="));
    assert!(
        done.auth_token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
}

#[test]
fn usernames_with_commas_and_equals_round_trip() {
    let users = UserStore::new().with_iterations(ITERATIONS);
    users.add_user("a=b,c", "pw", Role::Reader);
    let server = ScramServer::new(users, TokenStore::new());
    let (mut client, token, server_first) = start(&server, "a=b,c", "pw");
    let client_final = client.client_final(&server_first).unwrap();
    let done = server.finish(&token, &client_final).unwrap();
    client.verify_server_final(&done.data).unwrap();
    assert_eq!(done.principal.username, "a=b,c");
}

#[test]
fn round_trip_over_http_headers() {
    let server = server();
    // No header at all: the bare challenge.
    let none = http::authenticate(&server, None);
    assert_eq!(none.status(), 401);
    assert!(
        matches!(&none, HttpAuth::Unauthorized { www_authenticate, error: None } if www_authenticate == "SCRAM hash=SHA-256")
    );

    let mut client = ScramClient::new("demo", "demo-pass");
    let hello = Authorization::Hello {
        username: client.hello_username(),
    }
    .header_value();
    assert_eq!(hello, "HELLO username=ZGVtbw");
    let HttpAuth::Unauthorized {
        www_authenticate,
        error: None,
    } = http::authenticate(&server, Some(&hello))
    else {
        panic!("HELLO is answered 401 with a challenge");
    };
    let challenge = WwwAuthenticate::parse(&www_authenticate).unwrap();
    assert_eq!(challenge.hash.as_deref(), Some("SHA-256"));
    assert_eq!(challenge.data, None);
    let t1 = challenge.handshake_token.unwrap();
    assert_eq!(
        www_authenticate,
        format!("SCRAM hash=SHA-256, handshakeToken={t1}")
    );
    assert_eq!(t1.len(), 32);

    let step2 = Authorization::Scram {
        handshake_token: t1.clone(),
        data: client.client_first(),
    }
    .header_value();
    let HttpAuth::Unauthorized {
        www_authenticate,
        error: None,
    } = http::authenticate(&server, Some(&step2))
    else {
        panic!("the first step is answered 401 with server-first");
    };
    let challenge = WwwAuthenticate::parse(&www_authenticate).unwrap();
    let t2 = challenge.handshake_token.unwrap();
    let server_first = challenge.data.unwrap();
    assert_ne!(t1, t2);
    assert_eq!(
        www_authenticate,
        format!("SCRAM handshakeToken={t2}, hash=SHA-256, data={server_first}")
    );

    let step3 = Authorization::Scram {
        handshake_token: t2,
        data: client.client_final(&server_first).unwrap(),
    }
    .header_value();
    let answer = http::authenticate(&server, Some(&step3));
    assert_eq!(answer.status(), 200);
    let HttpAuth::Authenticated {
        authentication_info,
        principal,
    } = answer
    else {
        panic!("the final step is answered 200 with Authentication-Info");
    };
    assert_eq!(principal.username, "demo");
    let info = AuthenticationInfo::parse(&authentication_info).unwrap();
    assert_eq!(
        authentication_info,
        format!(
            "authToken={}, data={}",
            info.auth_token,
            info.data.clone().unwrap()
        )
    );
    assert_eq!(info.auth_token.len(), 43);
    client
        .verify_server_final(info.data.as_deref().unwrap())
        .unwrap();

    for scheme in ["BEARER", "Bearer", "bearer"] {
        let bearer = format!("{scheme} authToken={}", info.auth_token);
        assert_eq!(
            http::authenticate(&server, Some(&bearer)),
            HttpAuth::Authorized(principal.clone())
        );
    }
    // Replaying step 3 is refused (its token was consumed).
    assert_eq!(http::authenticate(&server, Some(&step3)).status(), 401);
    let basic = http::authenticate(&server, Some("Basic ZGVtbzpkZW1vLXBhc3M="));
    assert!(matches!(
        basic,
        HttpAuth::Unauthorized {
            error: Some(AuthError::UnsupportedScheme(_)),
            ..
        }
    ));
    let bad = http::authenticate(&server, Some("BEARER authToken=nope"));
    assert!(matches!(
        bad,
        HttpAuth::Unauthorized {
            error: Some(AuthError::InvalidToken),
            ..
        }
    ));
}

#[test]
fn wrong_password_fails_and_consumes_the_handshake() {
    let server = server();
    let (mut client, token, server_first) = start(&server, "demo", "not-the-pass");
    let client_final = client.client_final(&server_first).unwrap();
    let err = server.finish(&token, &client_final).unwrap_err();
    assert_eq!(err, AuthError::AuthenticationFailed);
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.is_final_step_failure());
    assert_eq!(
        server.finish(&token, &client_final).unwrap_err(),
        AuthError::UnknownHandshake
    );
    assert_eq!(server.tokens().len(), 0);

    // Over HTTP: 403.
    let (mut client, token, server_first) = start(&server, "demo", "not-the-pass");
    let header = Authorization::Scram {
        handshake_token: token,
        data: client.client_final(&server_first).unwrap(),
    };
    let answer = http::authenticate(&server, Some(&header.header_value()));
    assert_eq!(answer.status(), 403);
    assert_eq!(
        answer,
        HttpAuth::Forbidden {
            error: AuthError::AuthenticationFailed
        }
    );
    assert_eq!(http::AUTH_FAILED_BODY, "Authentication failed");
}

/// Runs a handshake up to the final step, lets `tamper` rewrite the decoded
/// client-final text, and returns the server's verdict.
fn tampered_final(
    tamper: impl FnOnce(&str) -> String,
) -> (ScramServer, String, String, Result<ScramStep, AuthError>) {
    let server = server();
    let (mut client, token, server_first) = start(&server, "demo", "demo-pass");
    let honest = text(&client.client_final(&server_first).unwrap());
    let forged = data(&tamper(&honest));
    let verdict = server.step(&token, &forged);
    (server, token, forged, verdict)
}

fn proof_of(client_final: &str) -> Vec<u8> {
    STANDARD
        .decode(&client_final[client_final.rfind(",p=").unwrap() + 3..])
        .unwrap()
}

fn with_proof(client_final: &str, proof: &[u8]) -> String {
    format!(
        "{},p={}",
        &client_final[..client_final.rfind(",p=").unwrap()],
        STANDARD.encode(proof)
    )
}

#[test]
fn tampered_proof_is_refused() {
    let (server, token, forged, verdict) = tampered_final(|honest| {
        let mut proof = proof_of(honest);
        proof[7] ^= 0x01;
        with_proof(honest, &proof)
    });
    assert_eq!(verdict, Err(AuthError::AuthenticationFailed));
    assert_eq!(
        server.step(&token, &forged),
        Err(AuthError::UnknownHandshake),
        "consumed"
    );
}

#[test]
fn untampered_control_succeeds() {
    // The tampering harness itself lets an honest message through.
    let (_, _, _, verdict) = tampered_final(str::to_owned);
    assert!(matches!(verdict, Ok(ScramStep::Authenticated(_))));
}

#[test]
fn wrong_proof_length_is_refused() {
    for len in [0usize, 31, 33, 64] {
        let (_, _, _, verdict) = tampered_final(|honest| {
            let mut proof = proof_of(honest);
            proof.resize(len, 0xAA);
            with_proof(honest, &proof)
        });
        assert_eq!(
            verdict,
            Err(AuthError::AuthenticationFailed),
            "proof of {len} bytes"
        );
    }
}

#[test]
fn nonce_mismatch_is_refused() {
    let (_, _, _, verdict) = tampered_final(|honest| {
        let at = honest.find(",r=").unwrap() + 3;
        let mut forged = honest.to_owned();
        // Change one character of the server's half of the nonce.
        let pos = at + 40;
        let c = if &forged[pos..=pos] == "A" { "B" } else { "A" };
        forged.replace_range(pos..=pos, c);
        forged
    });
    assert_eq!(verdict, Err(AuthError::AuthenticationFailed));
}

#[test]
fn channel_binding_other_than_biws_is_refused() {
    let (_, _, _, verdict) = tampered_final(|honest| honest.replacen("c=biws", "c=eSws", 1));
    assert_eq!(verdict, Err(AuthError::AuthenticationFailed));
}

#[test]
fn malformed_final_data_is_refused() {
    let (_, _, _, verdict) = tampered_final(|_| "c=biws,r=x".to_owned());
    assert_eq!(verdict, Err(AuthError::AuthenticationFailed));
    let server = server();
    let (_, token, _) = start(&server, "demo", "demo-pass");
    let err = server.step(&token, "!!not base64!!").unwrap_err();
    assert!(matches!(err, AuthError::Malformed(_)));
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert!(!err.is_final_step_failure());
}

#[test]
fn first_step_refusals() {
    let server = server();
    let challenge = server.hello("ZGVtbw").unwrap();
    // A client-first without r= is refused, and the token is gone.
    assert!(matches!(
        server.first(&challenge.handshake_token, &data("n,,n=demo")),
        Err(AuthError::Malformed(_))
    ));
    assert_eq!(
        server.first(&challenge.handshake_token, &data("n,,n=demo,r=abc")),
        Err(AuthError::UnknownHandshake)
    );
    // Undecodable usernames.
    assert!(matches!(server.hello("***"), Err(AuthError::Malformed(_))));
    assert!(matches!(
        server.hello(&URL_SAFE_NO_PAD.encode([0xff, 0xfe])),
        Err(AuthError::Malformed(_))
    ));
    // Padding is tolerated.
    assert!(server.hello("ZGVtbw==").is_ok());
    // A final-step token given to first() is refused (and consumed).
    let (_, t2, _) = start(&server, "demo", "demo-pass");
    assert_eq!(
        server.first(&t2, &data("n,,n=demo,r=abc")),
        Err(AuthError::UnknownHandshake)
    );
}

#[test]
fn replayed_handshake_tokens_are_refused() {
    let server = server();
    let mut client = ScramClient::new("demo", "demo-pass");
    let challenge = server.hello(&client.hello_username()).unwrap();
    let client_first = client.client_first();
    let first = server
        .first(&challenge.handshake_token, &client_first)
        .unwrap();
    assert_eq!(
        server.first(&challenge.handshake_token, &client_first),
        Err(AuthError::UnknownHandshake)
    );
    let client_final = client.client_final(&first.data).unwrap();
    server
        .finish(&first.handshake_token, &client_final)
        .unwrap();
    assert_eq!(
        server.finish(&first.handshake_token, &client_final),
        Err(AuthError::UnknownHandshake)
    );
    assert_eq!(server.step("", "x"), Err(AuthError::UnknownHandshake));
}

fn clocked_server(clock: &Arc<ManualClock>) -> ScramServer {
    let tokens = TokenStore::new().with_clock(clock.clone());
    ScramServer::builder(users(), tokens)
        .clock(clock.clone())
        .build()
}

#[test]
fn handshake_tokens_expire_15_s_after_hello() {
    let clock = Arc::new(ManualClock::new());
    let server = clocked_server(&clock);
    // Expired before the first step.
    let mut client = ScramClient::new("demo", "demo-pass");
    let challenge = server.hello(&client.hello_username()).unwrap();
    clock.advance(Duration::from_secs(15));
    assert_eq!(
        server.first(&challenge.handshake_token, &client.client_first()),
        Err(AuthError::HandshakeExpired)
    );
    assert_eq!(AuthError::HandshakeExpired.kind(), ErrorKind::Auth);

    // The TTL counts from HELLO across both steps.
    let mut client = ScramClient::new("demo", "demo-pass");
    let challenge = server.hello(&client.hello_username()).unwrap();
    clock.advance(Duration::from_millis(7_500));
    let first = server
        .first(&challenge.handshake_token, &client.client_first())
        .unwrap();
    clock.advance(Duration::from_millis(7_500));
    let client_final = client.client_final(&first.data).unwrap();
    assert_eq!(
        server.finish(&first.handshake_token, &client_final),
        Err(AuthError::HandshakeExpired)
    );

    // Within the TTL all is well.
    let mut client = ScramClient::new("demo", "demo-pass");
    let challenge = server.hello(&client.hello_username()).unwrap();
    clock.advance(Duration::from_secs(14));
    let first = server
        .first(&challenge.handshake_token, &client.client_first())
        .unwrap();
    let client_final = client.client_final(&first.data).unwrap();
    assert!(server.finish(&first.handshake_token, &client_final).is_ok());
}

#[test]
fn handshake_ttl_is_configurable() {
    let clock = Arc::new(ManualClock::new());
    let server = ScramServer::builder(users(), TokenStore::new())
        .clock(clock.clone())
        .handshake_ttl(Duration::from_secs(5))
        .build();
    let challenge = server.hello("ZGVtbw").unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        server.first(&challenge.handshake_token, &data("n,,n=demo,r=abc")),
        Err(AuthError::HandshakeExpired)
    );
}

#[test]
fn auth_tokens_expire_and_can_be_revoked() {
    let clock = Arc::new(ManualClock::new());
    let server = clocked_server(&clock);
    let login = |server: &ScramServer| {
        let (mut client, token, server_first) = start(server, "viewer", "view-pass");
        let client_final = client.client_final(&server_first).unwrap();
        server.finish(&token, &client_final).unwrap().auth_token
    };
    let token = login(&server);
    let bearer = format!("BEARER authToken={token}");
    clock.advance(Duration::from_secs(3599));
    assert!(
        matches!(http::authenticate(&server, Some(&bearer)), HttpAuth::Authorized(p) if p.role == Role::Reader)
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        server.authenticate_bearer(&token),
        Err(AuthError::InvalidToken)
    );
    assert_eq!(http::authenticate(&server, Some(&bearer)).status(), 401);

    let token = login(&server);
    assert!(server.authenticate_bearer(&token).is_ok());
    assert!(server.tokens().revoke(&token));
    assert_eq!(
        server.authenticate_bearer(&token),
        Err(AuthError::InvalidToken)
    );
}

#[test]
fn unknown_users_look_like_known_ones() {
    let server = server();
    let shape = |user: &str| {
        let mut client = ScramClient::new(user, "whatever");
        let hello = Authorization::Hello {
            username: client.hello_username(),
        }
        .header_value();
        let HttpAuth::Unauthorized {
            www_authenticate: w1,
            error: None,
        } = http::authenticate(&server, Some(&hello))
        else {
            panic!("HELLO for {user} is a normal challenge");
        };
        let c1 = WwwAuthenticate::parse(&w1).unwrap();
        let t1 = c1.handshake_token.clone().unwrap();
        let step2 = Authorization::Scram {
            handshake_token: t1.clone(),
            data: client.client_first(),
        }
        .header_value();
        let HttpAuth::Unauthorized {
            www_authenticate: w2,
            error: None,
        } = http::authenticate(&server, Some(&step2))
        else {
            panic!("first step for {user} is a normal challenge");
        };
        let c2 = WwwAuthenticate::parse(&w2).unwrap();
        let server_first = ServerFirstMessage::parse(&text(c2.data.as_deref().unwrap())).unwrap();
        // The header layouts, with the random parts blanked out.
        let layout1 = w1.replace(&t1, "T");
        let layout2 = w2
            .replace(c2.handshake_token.as_deref().unwrap(), "T")
            .replace(c2.data.as_deref().unwrap(), "D");
        (layout1, layout2, t1.len(), server_first, client, c2)
    };
    let (known1, known2, known_len, known_sf, _, _) = shape("demo");
    let (ghost1, ghost2, ghost_len, ghost_sf, mut ghost_client, ghost_c2) = shape("ghost");
    assert_eq!((known1, known2, known_len), (ghost1, ghost2, ghost_len));
    assert_eq!(ghost_sf.salt.len(), known_sf.salt.len());
    assert_eq!(ghost_sf.iterations, known_sf.iterations);
    assert_eq!(ghost_sf.nonce.len(), known_sf.nonce.len());
    assert_ne!(ghost_sf.salt, known_sf.salt);

    // The fake salt is stable per name, and differs between names.
    let (.., again_sf, _, _) = shape("ghost");
    assert_eq!(again_sf.salt, ghost_sf.salt);
    let (.., other_sf, _, _) = shape("ghost2");
    assert_ne!(other_sf.salt, ghost_sf.salt);

    // The final step fails exactly like a wrong password.
    let client_final = ghost_client
        .client_final(ghost_c2.data.as_deref().unwrap())
        .unwrap();
    let step3 = Authorization::Scram {
        handshake_token: ghost_c2.handshake_token.unwrap(),
        data: client_final,
    };
    assert_eq!(
        http::authenticate(&server, Some(&step3.header_value())),
        HttpAuth::Forbidden {
            error: AuthError::AuthenticationFailed
        }
    );
}

#[test]
fn a_full_handshake_table_evicts_the_handshake_waiting_longest() {
    let clock = Arc::new(ManualClock::new());
    let server = ScramServer::builder(users(), TokenStore::new())
        .clock(clock.clone())
        .max_handshakes(3)
        .build();
    let tokens: Vec<String> = (0..3)
        .map(|_| server.hello("ZGVtbw").unwrap().handshake_token)
        .collect();
    // The first one moves on a step: it goes to the back of the queue.
    let mut client = ScramClient::new("demo", "demo-pass");
    let first = server.first(&tokens[0], &client.client_first()).unwrap();
    // Two more HELLOs evict the two that have not moved since theirs.
    assert!(server.hello("ZGVtbw").is_ok());
    assert!(server.hello("ZGVtbw").is_ok());
    assert_eq!(server.handshakes_in_progress(), 3);
    for evicted in &tokens[1..] {
        assert_eq!(
            server.first(evicted, &data("n,,n=demo,r=abc")),
            Err(AuthError::UnknownHandshake)
        );
    }
    // The one that moved still completes.
    let client_final = client.client_final(&first.data).unwrap();
    assert!(server.finish(&first.handshake_token, &client_final).is_ok());
    // Expired handshakes are purged before anything is evicted.
    clock.advance(Duration::from_secs(15));
    assert!(server.hello("ZGVtbw").is_ok());
    assert_eq!(server.handshakes_in_progress(), 1);
}

#[test]
fn one_source_may_have_32_handshakes_in_progress_and_others_are_not_held_up() {
    let server = server();
    let flooder: IpAddr = "192.0.2.7".parse().unwrap();
    for _ in 0..DEFAULT_MAX_HANDSHAKES_PER_SOURCE {
        server.hello_from(Some(flooder), "ZGVtbw").unwrap();
    }
    for _ in 0..2_000 {
        let err = server.hello_from(Some(flooder), "ZGVtbw").unwrap_err();
        assert_eq!(err, AuthError::TooManyHandshakes);
    }
    assert_eq!(DEFAULT_MAX_HANDSHAKES_PER_SOURCE, 32);
    assert_eq!(
        http::authenticate_from(&server, Some(flooder), Some("HELLO username=ZGVtbw")),
        HttpAuth::TooManyRequests {
            error: AuthError::TooManyHandshakes
        }
    );
    assert_eq!(AuthError::TooManyHandshakes.kind(), ErrorKind::Overloaded);
    // An IPv6 host is counted by its /64; its IPv4-mapped form as IPv4.
    let host: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let neighbour: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    for _ in 0..16 {
        server.hello_from(Some(host), "ZGVtbw").unwrap();
        server.hello_from(Some(neighbour), "ZGVtbw").unwrap();
    }
    assert!(server.hello_from(Some(host), "ZGVtbw").is_err());
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    assert!(server.hello_from(Some(mapped), "ZGVtbw").is_err());
    // Another address logs in.
    let user: IpAddr = "198.51.100.1".parse().unwrap();
    let mut client = ScramClient::new("demo", "demo-pass");
    let challenge = server
        .hello_from(Some(user), &client.hello_username())
        .unwrap();
    let first = server
        .first(&challenge.handshake_token, &client.client_first())
        .unwrap();
    let client_final = client.client_final(&first.data).unwrap();
    assert!(server.finish(&first.handshake_token, &client_final).is_ok());
}

#[test]
fn token_store_is_shared_by_clones() {
    let tokens = TokenStore::new();
    let http_side = ScramServer::new(users(), tokens.clone());
    let (mut client, token, server_first) = start(&http_side, "demo", "demo-pass");
    let auth_token = http_side
        .finish(&token, &client.client_final(&server_first).unwrap())
        .unwrap()
        .auth_token;
    // A "WebSocket server" holding another clone sees the token.
    let ws_side = ScramServer::new(users(), tokens.clone());
    assert_eq!(
        ws_side.authenticate_bearer(&auth_token).unwrap().username,
        "demo"
    );
}

mod client_checks {
    use super::*;

    fn client() -> ScramClient {
        let mut client = ScramClient::new("demo", "demo-pass").with_fixed_nonce("cnonce");
        client.client_first();
        client
    }

    fn server_first(nonce: &str, salt_len: usize, iterations: u32) -> String {
        data(&format!(
            "r={nonce},s={},i={iterations}",
            STANDARD.encode(vec![7u8; salt_len])
        ))
    }

    #[test]
    fn iteration_bounds() {
        let err = client()
            .client_final(&server_first("cnonceS", 16, 4095))
            .unwrap_err();
        assert_eq!(
            err,
            AuthError::IterationsOutOfRange {
                iterations: 4095,
                min: 4096,
                max: 1_000_000
            }
        );
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(matches!(
            client().client_final(&server_first("cnonceS", 16, 1_000_001)),
            Err(AuthError::IterationsOutOfRange { .. })
        ));
        assert!(
            client()
                .client_final(&server_first("cnonceS", 16, 4096))
                .is_ok()
        );
        let mut relaxed = ScramClient::new("demo", "pw")
            .with_fixed_nonce("cnonce")
            .with_iteration_bounds(1000, 2000);
        relaxed.client_first();
        assert!(
            relaxed
                .client_final(&server_first("cnonceS", 16, 1000))
                .is_ok()
        );
        let mut strict = ScramClient::new("demo", "pw")
            .with_fixed_nonce("cnonce")
            .with_iteration_bounds(1000, 2000);
        strict.client_first();
        assert!(
            strict
                .client_final(&server_first("cnonceS", 16, 4096))
                .is_err()
        );
    }

    #[test]
    fn short_salt_is_refused() {
        assert_eq!(
            client().client_final(&server_first("cnonceS", 15, 4096)),
            Err(AuthError::SaltTooShort(15))
        );
    }

    #[test]
    fn server_nonce_must_extend_ours() {
        assert_eq!(
            client().client_final(&server_first("otherS", 16, 4096)),
            Err(AuthError::NonceMismatch)
        );
        assert_eq!(
            client().client_final(&server_first("cnonce", 16, 4096)),
            Err(AuthError::NonceMismatch)
        );
        assert_eq!(
            client().client_final(&server_first("cnoncX1", 16, 4096)),
            Err(AuthError::NonceMismatch)
        );
    }

    #[test]
    fn server_signature_is_checked() {
        let server = server();
        let (mut client, token, first) = start(&server, "demo", "demo-pass");
        let client_final = client.client_final(&first).unwrap();
        let done = server.finish(&token, &client_final).unwrap();
        let mut signature = STANDARD.decode(&text(&done.data)[2..]).unwrap();
        signature[0] ^= 0x80;
        let forged = data(&format!("v={}", STANDARD.encode(&signature)));
        assert_eq!(
            client.verify_server_final(&forged),
            Err(AuthError::ServerSignatureMismatch)
        );
        assert_eq!(
            client.verify_server_final(&data("v=AAAA")),
            Err(AuthError::ServerSignatureMismatch)
        );
        assert_eq!(
            client.verify_server_final(&data("e=invalid-proof")),
            Err(AuthError::ServerRejected("invalid-proof".into()))
        );
        assert!(!client.is_complete());
        client.verify_server_final(&done.data).unwrap();
        assert!(client.is_complete());
    }

    #[test]
    fn steps_out_of_order_are_refused() {
        let mut fresh = ScramClient::new("demo", "demo-pass");
        assert_eq!(
            fresh.client_final(&server_first("x", 16, 4096)),
            Err(AuthError::OutOfOrder)
        );
        assert_eq!(
            fresh.verify_server_final(&data("v=AAAA")),
            Err(AuthError::OutOfOrder)
        );
        let mut used = client();
        used.client_final(&server_first("cnonceS", 16, 4096))
            .unwrap();
        assert_eq!(
            used.client_final(&server_first("cnonceS", 16, 4096)),
            Err(AuthError::OutOfOrder)
        );
    }

    #[test]
    fn nonce_is_32_base64url_chars() {
        let mut client = ScramClient::new("demo", "demo-pass");
        let first = text(&client.client_first());
        let nonce = first.strip_prefix("n,,n=demo,r=").unwrap();
        assert_eq!(nonce.len(), 32);
        assert_eq!(URL_SAFE_NO_PAD.decode(nonce).unwrap().len(), 24);
        let debug = format!("{client:?}");
        assert!(!debug.contains("demo-pass"), "{debug}");
    }
}
