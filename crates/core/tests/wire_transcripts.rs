//! Round trips against the captured haystack-py 0.1.10 frames in
//! `tests/fixtures/` (copied from the shared protocol transcripts).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;

use hs_core::codec::{Format, decode_grid, encode_grid};
use hs_core::ws::{
    ClientFrame, FrameError, ServerFrame, decode_client_frame, decode_server_frame, encode_auth,
    encode_capabilities_reply, encode_capabilities_request, encode_request, encode_requests,
    encode_response, encode_responses, encode_watch,
};

struct Event {
    file: String,
    index: usize,
    line: serde_json::Value,
}

fn events(prefix: &str) -> Vec<Event> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            name.starts_with(prefix) && name.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures for {prefix}");
    let mut out = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        for (index, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
            out.push(Event {
                file: file.clone(),
                index,
                line: serde_json::from_str(line).unwrap(),
            });
        }
    }
    out
}

fn text_frames(prefix: &str, dir: &str) -> Vec<(String, usize, String)> {
    events(prefix)
        .into_iter()
        .filter(|e| e.line["kind"] == "text" && e.line["dir"] == dir)
        .map(|e| (e.file, e.index, e.line["text"].as_str().unwrap().to_owned()))
        .collect()
}

fn reencode_client(frame: &ClientFrame) -> String {
    match frame {
        ClientFrame::Request(request) => encode_request(request),
        ClientFrame::Batch(items) => {
            let requests: Vec<_> = items.iter().map(|item| item.clone().unwrap()).collect();
            encode_requests(&requests)
        }
        ClientFrame::Auth(message) => encode_auth(message),
        ClientFrame::Capabilities(request) => encode_capabilities_request(request),
        other => panic!("unexpected frame {other:?}"),
    }
}

fn reencode_server(frame: &ServerFrame) -> String {
    match frame {
        ServerFrame::Response(response) => encode_response(response),
        ServerFrame::Batch(responses) => encode_responses(responses),
        ServerFrame::Watch { watch_id, grid } => encode_watch(watch_id, grid),
        ServerFrame::Auth(message) => encode_auth(message),
        ServerFrame::Capabilities(reply) => encode_capabilities_reply(reply),
        other => panic!("unexpected frame {other:?}"),
    }
}

/// JSON with object keys kept in document order (serde_json's `Value`
/// sorts them).
enum Ordered {
    Map(Vec<(String, Ordered)>),
    List(Vec<Ordered>),
    Scalar(serde_json::Value),
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> serde::de::Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Ordered>()? {
                    entries.push(entry);
                }
                Ok(Ordered::Map(entries))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Ordered>()? {
                    items.push(item);
                }
                Ok(Ordered::List(items))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(serde_json::Value::Null))
            }
        }
        deserializer.deserialize_any(OrderedVisitor)
    }
}

/// True when some grid in the document has a row whose tags are not in
/// column order (the reference builds such grids from unordered sets).
fn rows_out_of_column_order(value: &Ordered) -> bool {
    match value {
        Ordered::Map(entries) => {
            let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            if let (Some(Ordered::List(cols)), Some(Ordered::List(rows))) =
                (get("cols"), get("rows"))
            {
                let names: Vec<&str> = cols
                    .iter()
                    .filter_map(|col| match col {
                        Ordered::Map(col) => {
                            col.iter()
                                .find(|(k, _)| k == "name")
                                .and_then(|(_, v)| match v {
                                    Ordered::Scalar(serde_json::Value::String(name)) => {
                                        Some(name.as_str())
                                    }
                                    _ => None,
                                })
                        }
                        _ => None,
                    })
                    .collect();
                for row in rows {
                    if let Ordered::Map(tags) = row {
                        let positions: Vec<Option<usize>> = tags
                            .iter()
                            .map(|(k, _)| names.iter().position(|n| n == k))
                            .collect();
                        if positions.windows(2).any(|w| w[0] >= w[1]) {
                            return true;
                        }
                    }
                }
            }
            entries.iter().any(|(_, v)| rows_out_of_column_order(v))
        }
        Ordered::List(items) => items.iter().any(rows_out_of_column_order),
        Ordered::Scalar(_) => false,
    }
}

/// Frames whose re-encoding may differ from the capture, and why. Everything
/// else must come back byte for byte.
fn known_difference(original: &str) -> Option<&'static str> {
    let ordered: Ordered = serde_json::from_str(original).unwrap();
    if rows_out_of_column_order(&ordered) {
        // libhaystack dicts keep no insertion order; hs writes row tags in
        // column order.
        return Some("row tags not in column order");
    }
    None
}

#[test]
fn every_client_text_frame_decodes_and_round_trips() {
    let mut exact = 0;
    let mut total = 0;
    for (file, index, text) in text_frames("", "c2s") {
        let decoded = decode_client_frame(&text);
        let frame = match (text.as_str(), decoded) {
            ("this is not json", Err(FrameError::InvalidJson { .. })) => continue,
            ("42", Err(FrameError::NotAnObject)) => continue,
            (_, Ok(frame)) => frame,
            (_, Err(err)) => panic!("{file}:{index}: {err} for {text}"),
        };
        total += 1;
        let again = reencode_client(&frame);
        if again == text {
            exact += 1;
            continue;
        }
        // Hand-made or non-library frames: the re-encoding must mean the same.
        let reparsed = decode_client_frame(&again).unwrap();
        let same = match (&frame, &reparsed) {
            (ClientFrame::Batch(a), ClientFrame::Batch(b)) => a == b,
            (a, b) => a == b,
        };
        assert!(same, "{file}:{index}: {text}\n  re-encoded {again}");
        println!("{file}:{index}: semantic only\n  {text}\n  {again}");
    }
    println!("client frames: {exact} of {total} byte-identical");
    assert!(total > 60, "{total}");
}

#[test]
fn every_server_text_frame_decodes_and_round_trips() {
    let mut exact = 0;
    let mut total = 0;
    for (file, index, text) in text_frames("", "s2c") {
        let frame =
            decode_server_frame(&text).unwrap_or_else(|err| panic!("{file}:{index}: {err}"));
        total += 1;
        let again = reencode_server(&frame);
        if again == text {
            exact += 1;
            continue;
        }
        let reparsed = decode_server_frame(&again).unwrap();
        assert_eq!(reparsed, frame, "{file}:{index}");
        let reason = known_difference(&text)
            .unwrap_or_else(|| panic!("{file}:{index}: not byte-identical\n  {text}\n  {again}"));
        println!("{file}:{index}: semantic only ({reason})");
    }
    println!("server frames: {exact} of {total} byte-identical");
    assert!(total > 60, "{total}");
}

#[test]
fn http_json_and_zinc_bodies_decode_and_round_trip() {
    let mut checked = 0;
    for event in events("http-") {
        let line = &event.line;
        let kind = line["kind"].as_str().unwrap();
        if kind != "http-request" && kind != "http-response" {
            continue;
        }
        let body = line["body"].as_str().unwrap_or_default();
        if body.is_empty() {
            continue;
        }
        let content_type = line["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case("content-type"))
            .map(|h| h[1].as_str().unwrap());
        let Ok(format) = Format::from_content_type(content_type) else {
            continue; // 415 material: text/plain, text/csv, ...
        };
        let where_ = format!("{}:{}", event.file, event.index);
        let is_grid = match format {
            Format::Json => body.starts_with(r#"{"_kind":"grid""#),
            _ => body.starts_with("ver:"),
        };
        let decoded = decode_grid(body.as_bytes(), format);
        if !is_grid {
            // FastAPI `{"detail":..}`, JSON v3, the malformed request body.
            assert!(decoded.is_err(), "{where_}: {body}");
            continue;
        }
        let grid = decoded.unwrap_or_else(|err| panic!("{where_}: {err}"));
        let again = encode_grid(&grid, format).unwrap();
        checked += 1;
        if again != body {
            assert_eq!(
                decode_grid(again.as_bytes(), format).unwrap(),
                grid,
                "{where_}"
            );
            let reason = match format {
                // Requests written with a trailing newline.
                Format::Zinc if body.trim_end() == again => "trailing newline",
                _ => known_difference(body)
                    .or_else(|| (line["dir"] == "c2s").then_some("hand-made request"))
                    .unwrap_or_else(|| panic!("{where_}: not byte-identical\n  {body}\n  {again}")),
            };
            println!("{where_}: semantic only ({reason})");
        }
    }
    assert!(checked > 30, "{checked}");
}
