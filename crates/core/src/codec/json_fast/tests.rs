//! The fast path against the serde path, on captured, hand-written and
//! randomly edited grids (helpers shared with the plain read's tests).
#![allow(clippy::unwrap_used)] // tests may unwrap

use super::*;
use crate::codec::json::decode_serde;

/// Whatever this path decodes, the serde path decodes the same; what
/// the serde path refuses, this path gives up on. `true` when this path
/// decoded the text.
pub(crate) fn agrees(text: &str) -> bool {
    let serde = decode_serde(text.as_bytes());
    match decode(text) {
        Some(grid) => {
            assert_eq!(serde.as_ref().ok(), Some(&grid), "{text}");
            true
        }
        None => false,
    }
}

/// Every grid in the captured haystack-py exchanges (and in JSON
/// strings inside them), and the demo entities.
pub(crate) fn corpus() -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if map.get("_kind").and_then(|kind| kind.as_str()) == Some("grid") {
                    out.push(value.to_string());
                }
                map.values().for_each(|value| walk(value, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            serde_json::Value::String(text) => {
                if let Ok(inner) = serde_json::from_str::<serde_json::Value>(text) {
                    walk(&inner, out);
                }
            }
            _ => {}
        }
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        for line in text.lines().chain([text.as_str()]) {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
                walk(&value, &mut out);
            }
        }
    }
    out
}

#[test]
fn captured_grids_decode_as_the_serde_path_decodes_them() {
    let corpus = corpus();
    let accepted = corpus.iter().filter(|text| agrees(text)).count();
    // Most of them are common grids this path takes (the rest have
    // dates, times or other kinds, and go to the serde path).
    assert!(corpus.len() > 50, "{} grids", corpus.len());
    assert!(
        accepted * 2 > corpus.len(),
        "{accepted} of {}",
        corpus.len()
    );
}

#[test]
fn common_shapes_are_taken() {
    for text in [
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p1"}}]}"#,
        r#"{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"filter"},{"name":"limit"}],"rows":[{"filter":"point and temp","limit":10}]}"#,
        r#" { "rows" : [ { "navId" : null } ] , "cols" : [ { "name" : "navId" } ] , "_kind" : "grid" } "#,
        r#"{"_kind":"grid","meta":{"err":{"_kind":"marker"},"dis":"x"},"cols":[],"rows":[]}"#,
        r#"{"_kind":"grid","meta":null,"cols":[{"name":"a","meta":{"u":{"_kind":"remove"},"n":null}}],"rows":[{"a":[1,-0,2.5e3,true,false,null,{"x":"y"},{"_kind":"na"}]}]}"#,
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"v"}],"rows":[{"v":{"_kind":"number","val":72.5,"unit":"°F"},"u":{"_kind":"uri","val":"http://x"},"s":{"_kind":"symbol","val":"elec"},"r":{"_kind":"ref","dis":"D","val":"r1"}}]}"#,
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"e"}],"rows":[{"e":"tab\t quote\" back\\ slash\/ \u00e9 \ud83d\ude00 \b\f\n\r","é":"ü"}]}"#,
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"n"}],"rows":[{"n":12345678901234567890},{"n":-9223372036854775809},{"n":0.1},{"n":1E-7},{"n":1e308}]}"#,
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"d"}],"rows":[{"d":{"a":1,"a":2}}]}"#,
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"t"}],"rows":[{"t":{"_kind":"dateTime","val":"2024-01-02T03:04:05.5-05:00","tz":"New_York"},"u":{"_kind":"dateTime","val":"2024-01-02T03:04:05Z"},"d":{"_kind":"date","val":"2024-01-02"},"h":{"_kind":"time","val":"10:20:30"},"c":{"_kind":"coord","lat":37.5,"lng":-77.25},"x":{"_kind":"xstr","type":"Bin","val":"text/plain"}}]}"#,
    ] {
        assert!(agrees(text), "not taken: {text}");
    }
}

#[test]
fn unusual_or_invalid_input_goes_to_the_serde_path() {
    for text in [
        "",
        "null",
        "[]",
        r#"{"_kind":"grid","cols":[],"rows":[]} x"#,
        r#"{"_kind":"grid","cols":[]}"#,
        r#"{"_kind":"dict","cols":[],"rows":[]}"#,
        r#"{"_kind":"grid","_kind":"grid","cols":[],"rows":[]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[],"other":1}"#,
        r#"{"_kind":"grid","cols":[{"name":""}],"rows":[]}"#,
        r#"{"_kind":"grid","cols":[{"name":"a","x":1}],"rows":[]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[null]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"_kind":"dict","a":1}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"_kind":"marker","x":1}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"dis":"D","_kind":"ref","val":"r1"}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"_kind":"ref","val":"x","val":"y"}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"_kind":"ref","val":"x","dis":null}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"_kind":"number","val":"NaN"}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"_kind":"number","val":1,"unit":"furlongs"}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"_kind":"date","val":"2024-13-02"}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"_kind":"dateTime","val":"2024-01-02T00:00:00Z","tz":"Nowhere"}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"_kind":"coord","lat":"1","lng":2}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":{"_kind":"bin","val":"x"}}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":1e400}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":01}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":1.}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":+1}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":"\ud800"}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":"\x"}]}"#,
        "{\"_kind\":\"grid\",\"cols\":[],\"rows\":[{\"a\":\"raw\ncontrol\"}]}",
        r#"{"_kind":"grid","cols":[],"rows":[{"a":tru}]}"#,
        r#"{"_kind":"grid","cols":[],"rows":[{"a":1,}]}"#,
    ] {
        assert!(!agrees(text), "taken: {text}");
    }
    let deep = format!(
        r#"{{"_kind":"grid","cols":[],"rows":[{{"a":{}1{}}}]}}"#,
        "[".repeat(MAX_DEPTH),
        "]".repeat(MAX_DEPTH)
    );
    assert!(!agrees(&deep));
}

/// Each seed with 1 to 3 random byte edits (replace, insert, delete) with
/// bytes from `alphabet`, `per_seed` times; the valid UTF-8 ones are
/// passed to `check`, which says whether the fast path took them. How
/// many were taken.
pub(crate) fn mutants(
    seeds: &[&str],
    alphabet: &[u8],
    per_seed: usize,
    mut check: impl FnMut(&str) -> bool,
) -> usize {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut taken = 0;
    for seed in seeds {
        for _ in 0..per_seed {
            let mut bytes = seed.as_bytes().to_vec();
            for _ in 0..=(next() % 3) {
                let at = (next() as usize) % bytes.len();
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            if let Ok(text) = String::from_utf8(bytes) {
                taken += usize::from(check(&text));
            }
        }
    }
    taken
}

/// Random byte edits of taken grids: the two paths never disagree.
#[test]
fn mutations_never_make_the_paths_disagree() {
    let seeds = [
        r#"{"_kind":"grid","meta":{"ver":"3.0","watchId":"w-1"},"cols":[{"name":"id"},{"name":"curVal","meta":{"unit":"°F"}}],"rows":[{"id":{"_kind":"ref","val":"p1","dis":"P \"1\""},"curVal":{"_kind":"number","val":-72.5e0,"unit":"°F"},"tags":[{"_kind":"marker"},"s\u00e9",null,true]}]}"#,
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"point and siteRef==@s"}]}"#,
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"ts"}],"rows":[{"ts":{"_kind":"dateTime","val":"2024-01-02T03:04:05-05:00","tz":"New_York"},"d":{"_kind":"date","val":"2024-01-02"},"c":{"_kind":"coord","lat":1.5,"lng":-2}}]}"#,
    ];
    const ALPHABET: &[u8] = br#"{}[]:,"\ -0123456789.eE+_kindgrefvalnumbertruefalsenull/u"#;
    let taken = mutants(&seeds, ALPHABET, 3_000, agrees);
    assert!(taken > 100, "only {taken} mutants decoded");
}
