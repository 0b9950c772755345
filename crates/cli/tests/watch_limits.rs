//! `hs serve --max-watches`, `--max-watches-per-user` and
//! `--max-watches-per-connection` reach the servers (issue 13, item 6):
//! WebSocket clients of a real `hs serve` are refused past each limit with
//! an error grid naming it, and a closed connection's watches free their
//! places.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use support::{WAIT, serve};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws"))
        .await
        .unwrap();
    socket
}

/// A `watchSub` of one point: `Ok(watch id)` or `Err(the error grid's dis)`.
async fn watch_sub(socket: &mut Socket) -> Result<String, String> {
    let grid = json!({"_kind": "grid", "meta": {"watchDis": "limits"}, "cols": [{"name": "id"}],
                      "rows": [{"id": {"_kind": "ref", "val": "demo-ahu1-dat-sp"}}]});
    let request = json!({"id": "s", "op": "watchSub", "grid": grid});
    socket
        .send(Message::text(request.to_string()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(WAIT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Json = serde_json::from_str(&text).unwrap();
                    if frame["id"] == "s" {
                        return frame;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("an answer within the wait");
    let meta = &answer["grid"]["meta"];
    match meta.get("err") {
        Some(_) => Err(meta["dis"].as_str().unwrap_or_default().to_owned()),
        None => Ok(meta["watchId"].as_str().unwrap().to_owned()),
    }
}

fn run(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

#[test]
fn serve_limits_watches_per_connection_and_per_user_and_frees_them_on_close() {
    let (_server, addr) = serve(&[
        "--event-log",
        "off",
        "--max-watches-per-connection",
        "2",
        "--max-watches-per-user",
        "3",
    ]);
    run(async {
        let mut first = connect(&addr).await;
        watch_sub(&mut first).await.unwrap();
        watch_sub(&mut first).await.unwrap();
        let refused = watch_sub(&mut first).await.unwrap_err();
        assert!(
            refused.contains("--max-watches-per-connection"),
            "{refused}"
        );

        let mut second = connect(&addr).await;
        watch_sub(&mut second).await.unwrap();
        let refused = watch_sub(&mut second).await.unwrap_err();
        assert!(
            refused.contains("anonymous clients") && refused.contains("--max-watches-per-user"),
            "{refused}"
        );

        // The first connection's two watches close with it. Its release may
        // come a moment after our close: retry a bounded number of times.
        first.close(None).await.unwrap();
        let mut answer = watch_sub(&mut second).await;
        for _ in 0..100 {
            if answer.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            answer = watch_sub(&mut second).await;
        }
        answer.expect("the closed connection's places are free");
    });
}

#[test]
fn serve_limits_watches_in_total() {
    let (_server, addr) = serve(&["--event-log", "off", "--max-watches", "3"]);
    run(async {
        let mut sockets = Vec::new();
        for _ in 0..3 {
            let mut socket = connect(&addr).await;
            watch_sub(&mut socket).await.unwrap();
            sockets.push(socket);
        }
        let mut late = connect(&addr).await;
        let refused = watch_sub(&mut late).await.unwrap_err();
        assert!(
            refused.contains("limit of 3 watches") && refused.contains("--max-watches"),
            "{refused}"
        );
    });
}
