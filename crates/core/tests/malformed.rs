//! Malformed input never panics and always gives a typed error.

#![allow(clippy::unwrap_used)] // tests may unwrap

use hs_core::codec::{CodecError, Format, MAX_COLS, MAX_DEPTH, MAX_ROWS, decode_grid};
use hs_core::observe::ErrorKind;
use hs_core::ws::{
    ClientFrame, FrameError, MAX_BATCH, RequestId, decode_client_frame, decode_server_frame,
};

#[test]
fn malformed_json_grids_are_typed_errors() {
    let cases: &[(&str, &str)] = &[
        (r#"{"not a grid"#, "invalid_json"),
        ("[1,2]", "invalid_grid"),
        ("42", "invalid_grid"),
        (r#"{"_kind":"grid","meta":{},"cols":[]}"#, "invalid_grid"),
        (r#"{"_kind":"grid","meta":{},"rows":[]}"#, "invalid_grid"),
        (r#"{"meta":{},"cols":[],"rows":[]}"#, "invalid_grid"),
        (
            r#"{"_kind":"dict","meta":{},"cols":[],"rows":[]}"#,
            "invalid_grid",
        ),
        (
            r#"{"_kind":"grid","meta":5,"cols":[],"rows":[]}"#,
            "invalid_grid",
        ),
        (
            r#"{"_kind":"grid","meta":{},"cols":[{"nome":"a"}],"rows":[]}"#,
            "invalid_grid",
        ),
        (
            r#"{"_kind":"grid","meta":{},"cols":["a"],"rows":[]}"#,
            "invalid_grid",
        ),
        (
            r#"{"_kind":"grid","meta":{},"cols":[],"rows":[5]}"#,
            "invalid_grid",
        ),
        (
            r#"{"_kind":"grid","meta":{},"cols":[],"rows":[{"a":{"_kind":"bogus"}}]}"#,
            "invalid_grid",
        ),
        (
            r#"{"_kind":"grid","meta":{},"cols":[],"rows":[{"a":{"_kind":"ref"}}]}"#,
            "invalid_grid",
        ),
        (
            r#"{"_kind":"grid","meta":{},"cols":[],"rows":[{"a":{"_kind":"date","val":"2024-13-45"}}]}"#,
            "invalid_grid",
        ),
        (
            r#"{"_kind":"grid","meta":{},"cols":[],"rows":[]} trailing"#,
            "invalid_json",
        ),
    ];
    for (body, want) in cases {
        let err = decode_grid(body.as_bytes(), Format::Json).unwrap_err();
        assert_eq!(err.as_str(), *want, "{body}: {err}");
        assert_eq!(err.kind(), ErrorKind::BadRequest);
    }
}

#[test]
fn limits_are_enforced_with_typed_errors() {
    let deep = format!(
        r#"{{"_kind":"grid","meta":{{}},"cols":[{{"name":"a"}}],"rows":[{{"a":{}1{}}}]}}"#,
        "[".repeat(MAX_DEPTH),
        "]".repeat(MAX_DEPTH)
    );
    let err = decode_grid(deep.as_bytes(), Format::Json).unwrap_err();
    assert_eq!(err, CodecError::TooDeep { max: MAX_DEPTH });
    assert_eq!(err.kind(), ErrorKind::TooLarge);

    let rows = format!(
        r#"{{"_kind":"grid","meta":{{}},"cols":[],"rows":[{}{{}}]}}"#,
        "{},".repeat(MAX_ROWS)
    );
    assert_eq!(
        decode_grid(rows.as_bytes(), Format::Json),
        Err(CodecError::TooManyRows { max: MAX_ROWS })
    );
    let at_limit = format!(
        r#"{{"_kind":"grid","meta":{{}},"cols":[],"rows":[{}{{}}]}}"#,
        "{},".repeat(MAX_ROWS - 1)
    );
    assert_eq!(
        decode_grid(at_limit.as_bytes(), Format::Json)
            .unwrap()
            .len(),
        MAX_ROWS
    );

    let cols: Vec<String> = (0..=MAX_COLS)
        .map(|i| format!(r#"{{"name":"c{i}"}}"#))
        .collect();
    let wide = format!(
        r#"{{"_kind":"grid","meta":{{}},"cols":[{}],"rows":[]}}"#,
        cols.join(",")
    );
    assert_eq!(
        decode_grid(wide.as_bytes(), Format::Json),
        Err(CodecError::TooManyCols { max: MAX_COLS })
    );

    let zinc_deep = format!("ver:\"3.0\"\na\n{}", "[".repeat(MAX_DEPTH * 4));
    assert_eq!(
        decode_grid(zinc_deep.as_bytes(), Format::Zinc),
        Err(CodecError::TooDeep { max: MAX_DEPTH })
    );
    let zinc_rows = format!("ver:\"3.0\"\na\n{}", "1\n".repeat(MAX_ROWS + 1));
    assert_eq!(
        decode_grid(zinc_rows.as_bytes(), Format::Zinc),
        Err(CodecError::TooManyRows { max: MAX_ROWS })
    );
    // serde_json alone would overflow no stack here, but must not get the chance.
    let very_deep = "[".repeat(100_000);
    assert!(decode_grid(very_deep.as_bytes(), Format::Json).is_err());
    assert!(decode_grid(very_deep.as_bytes(), Format::Zinc).is_err());
}

#[test]
fn depth_counts_every_container_and_wins_over_later_errors() {
    let open = |n: usize| "[".repeat(n);
    let close = |n: usize| "]".repeat(n);
    // The grid is level 1, a top-level member's array level 2.
    let ignored = |n: usize| {
        format!(
            r#"{{"_kind":"grid","extra":{}{},"meta":{{}},"cols":[],"rows":[]}}"#,
            open(n),
            close(n)
        )
    };
    assert!(decode_grid(ignored(MAX_DEPTH - 1).as_bytes(), Format::Json).is_ok());
    assert_eq!(
        decode_grid(ignored(MAX_DEPTH).as_bytes(), Format::Json),
        Err(CodecError::TooDeep { max: MAX_DEPTH })
    );
    // Column meta is level 4, its values level 5.
    let column_meta = format!(
        r#"{{"_kind":"grid","meta":{{}},"cols":[{{"name":"a","meta":{{"m":{}{}}}}}],"rows":[]}}"#,
        open(MAX_DEPTH - 3),
        close(MAX_DEPTH - 3)
    );
    assert_eq!(
        decode_grid(column_meta.as_bytes(), Format::Json),
        Err(CodecError::TooDeep { max: MAX_DEPTH })
    );
    // Too deep anywhere is the error, even after a syntax or grid error.
    let broken_then_deep = format!(r#"{{"_kind":"grid","meta":5,"x":{}"#, open(MAX_DEPTH));
    assert_eq!(
        decode_grid(broken_then_deep.as_bytes(), Format::Json),
        Err(CodecError::TooDeep { max: MAX_DEPTH })
    );
}

#[test]
fn malformed_zinc_grids_are_typed_errors() {
    let cases: &[&[u8]] = &[
        b"not zinc",
        b"ver:3\na\n1",
        b"ver:\"3.0\"\na,b\n1,2,3",
        b"ver:\"3.0\"\na\n\"unterminated",
        b"ver:\"3.0\"\na\n@",
        b"ver:\"3.0\"\na\n[1,2",
        b"\xff\xfe",
    ];
    for body in cases {
        let err = decode_grid(body, Format::Zinc).unwrap_err();
        assert!(
            matches!(err.as_str(), "invalid_zinc" | "invalid_utf8"),
            "{:?}: {err}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn empty_bodies_are_empty_grids() {
    for format in [Format::Json, Format::Zinc] {
        let grid = decode_grid(b"", format).unwrap();
        assert!(grid.columns.is_empty() && grid.rows.is_empty() && grid.meta.is_none());
        assert!(decode_grid(b" \n", format).unwrap().rows.is_empty());
    }
}

#[test]
fn malformed_client_frames_are_typed_errors_with_ids() {
    let err = decode_client_frame("this is not json").unwrap_err();
    assert_eq!(err.as_str(), "invalid_json");
    assert_eq!(err.kind(), ErrorKind::Protocol);
    for scalar in ["42", "\"text\"", "null", "true", " 1.5 "] {
        assert_eq!(
            decode_client_frame(scalar).unwrap_err(),
            FrameError::NotAnObject,
            "{scalar}"
        );
    }
    for text in ["", "   ", "{", "[", "{\"id\":1,", "[{\"id\":1}"] {
        assert_eq!(
            decode_client_frame(text).unwrap_err().as_str(),
            "invalid_json",
            "{text:?}"
        );
    }

    let err = decode_client_frame(r#"{"id":"x1","op":5}"#).unwrap_err();
    assert_eq!(err.as_str(), "bad_field");
    assert_eq!(err.request_id().map(RequestId::as_json), Some(r#""x1""#));
    assert_eq!(err.kind(), ErrorKind::BadRequest);

    let err = decode_client_frame(r#"{"id":{"n":[1]},"op":"read","ch":7}"#).unwrap_err();
    assert_eq!(
        err.request_id().map(RequestId::as_json),
        Some(r#"{"n":[1]}"#)
    );

    let err = decode_client_frame(r#"{"id":3,"op":"read","grid":{"_kind":"grid"}}"#).unwrap_err();
    assert_eq!(err.as_str(), "bad_grid");
    assert_eq!(err.request_id().map(RequestId::as_json), Some("3"));

    let err = decode_client_frame(r#"{"id":3,"op":"read","grid":[]}"#).unwrap_err();
    assert_eq!(err.as_str(), "bad_grid");

    let err = decode_client_frame(r#"{"id":null,"op":"read","grid":7}"#).unwrap_err();
    assert_eq!(err.request_id(), None);

    let err = decode_client_frame(r#"{"type":"hello"}"#).unwrap_err();
    assert_eq!(err.as_str(), "missing_field");
    let err = decode_client_frame(r#"{"type":"scram","handshakeToken":1,"data":""}"#).unwrap_err();
    assert_eq!(err.as_str(), "bad_field");
    let err = decode_client_frame(r#"{"id":1,"op":"a","op":"b"}"#).unwrap_err();
    assert_eq!(err.as_str(), "invalid_json");
}

#[test]
fn batches_drop_non_objects_decode_items_separately_and_are_capped() {
    let frame =
        decode_client_frame(r#"[1,"x",{"id":"a","op":"about"},{"id":"b","op":7},null]"#).unwrap();
    let ClientFrame::Batch(items) = frame else {
        panic!("batch")
    };
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().op, "about");
    assert_eq!(
        items[1]
            .as_ref()
            .unwrap_err()
            .request_id()
            .map(RequestId::as_json),
        Some(r#""b""#)
    );

    assert_eq!(
        decode_client_frame("[]").unwrap(),
        ClientFrame::Batch(Vec::new())
    );

    let item = r#"{"op":"about"}"#;
    let full = format!("[{}]", vec![item; MAX_BATCH].join(","));
    let ClientFrame::Batch(items) = decode_client_frame(&full).unwrap() else {
        panic!()
    };
    assert_eq!(items.len(), MAX_BATCH);
    let over = format!("[{}]", vec![item; MAX_BATCH + 1].join(","));
    let err = decode_client_frame(&over).unwrap_err();
    assert_eq!(
        err,
        FrameError::BatchTooLarge {
            len: MAX_BATCH + 1,
            max: MAX_BATCH
        }
    );
    assert_eq!(err.kind(), ErrorKind::TooLarge);
}

#[test]
fn malformed_server_frames_are_typed_errors() {
    let cases = [
        ("nope", "invalid_json"),
        ("7", "not_an_object"),
        (r#"{"id":"0"}"#, "missing_field"),
        (r#"{"grid":{"_kind":"grid"},"id":"0"}"#, "bad_grid"),
        (
            r#"{"type":"watch","grid":{"_kind":"grid","meta":{},"cols":[],"rows":[]}}"#,
            "missing_field",
        ),
        (r#"{"type":"watch","watchId":"w"}"#, "missing_field"),
        (r#"{"type":"bogus"}"#, "unknown_type"),
        (r#"{"type":"authOk"}"#, "missing_field"),
        (r#"[{"id":"0"}]"#, "missing_field"),
    ];
    for (text, want) in cases {
        let err = decode_server_frame(text).unwrap_err();
        assert_eq!(err.as_str(), want, "{text}: {err}");
    }
    let err = decode_server_frame(r#"{"grid":{"_kind":"grid"},"id":"r9"}"#).unwrap_err();
    assert_eq!(err.request_id().map(RequestId::as_json), Some(r#""r9""#));
}

/// A small deterministic generator (xorshift), so the test needs no
/// dependency and every run checks the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_and_mutated_frames_never_panic() {
    let seeds: &[&[u8]] = &[
        br#"{"id":"0","op":"read","grid":{"_kind":"grid","meta":{"dis":"x"},"cols":[{"name":"id"},{"name":"v","meta":{"unit":"F"}}],"rows":[{"id":{"_kind":"ref","val":"a","dis":"A"},"v":{"_kind":"number","val":1.5,"unit":"m"}},{"t":{"_kind":"dateTime","val":"2024-01-01T00:00:00-05:00","tz":"New_York"},"c":{"_kind":"coord","lat":1,"lng":2},"l":[1,"a",null,{"x":{"_kind":"marker"}}]}]}}"#,
        br#"[{"id":1,"op":"about"},{"type":"hello","username":"ZGVtbw"},{"authToken":"t"}]"#,
        b"ver:\"3.0\" err dis:\"x\"\nid,v,t\n@a \"A\",1.5m,2024-01-01T00:00:00-05:00 New_York\nN,[1,\"a\",{x}],C(1,2)",
        br#"{"type":"capabilities","compression":["zlib"],"chunked":true,"version":2}"#,
    ];
    let alphabet = b"{}[]\",:0123456789.-eE_kindgrdmetacolsrowsNMTF@^`<>()\\ \n";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..4_000 {
        let mut input: Vec<u8> = if round % 4 == 0 {
            (0..rng.next() % 64)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect()
        } else {
            seeds[round % seeds.len()].to_vec()
        };
        if round % 4 != 0 {
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() % input.len() as u64) as usize;
                match rng.next() % 3 {
                    0 => input[at] = alphabet[(rng.next() % alphabet.len() as u64) as usize],
                    1 => {
                        input.remove(at);
                    }
                    _ => input.truncate(at),
                }
                if input.is_empty() {
                    break;
                }
            }
        }
        for format in [Format::Json, Format::Zinc] {
            let _ = decode_grid(&input, format);
        }
        if let Ok(text) = std::str::from_utf8(&input) {
            let _ = decode_client_frame(text);
            let _ = decode_server_frame(text);
        }
    }
}
