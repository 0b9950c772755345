//! The plain read request, decoded straight from a JSON v4 body: every
//! row just an `id` Ref, or one row just a `filter`. No grid is built; any
//! other body gives up (`None`) and the grid path decides.

use libhaystack::val::Value;

use super::ReadRequest;
use crate::codec::MAX_ROWS;
use crate::codec::json_fast::Parser;

/// The read request in `text`, when it is a plain one (see [`read_grid`]);
/// `None` when the grid must be decoded.
pub(crate) fn read_request(text: &str) -> Option<ReadRequest> {
    let mut parser = Parser::new(text);
    let request = read_grid(&mut parser)?;
    parser.end()?;
    Some(request)
}

/// A read request grid (level 1) of the plainest shapes, without building
/// the grid: every row is `{"id": <ref>}`, or the one row is
/// `{"filter": "<text>"}`. Meta and columns are checked as
/// [`Parser::grid`] checks them, then dropped (a read uses neither). Any
/// other shape, and any invalid filter, gives up.
pub(crate) fn read_grid(parser: &mut Parser<'_>) -> Option<ReadRequest> {
    let mut is_grid = false;
    let (mut seen_meta, mut seen_columns) = (false, false);
    let mut request = None;
    parser.object(|parser, key| {
        match key.as_ref() {
            "_kind" if !is_grid => {
                is_grid = parser.string()? == "grid";
                return is_grid.then_some(());
            }
            "meta" if !seen_meta => {
                seen_meta = true;
                parser.optional_dict(2)?;
            }
            "cols" if !seen_columns => {
                seen_columns = true;
                parser.skip_columns()?;
            }
            "rows" if request.is_none() => request = Some(read_rows(parser)?),
            _ => return None,
        }
        Some(())
    })?;
    (is_grid && seen_columns).then_some(())?;
    request
}

/// The `rows` of a [`read_grid`].
fn read_rows(parser: &mut Parser<'_>) -> Option<ReadRequest> {
    let mut ids = Vec::new();
    let mut filter = None;
    parser.array(|parser| {
        if ids.len() + 1 >= MAX_ROWS || filter.is_some() {
            return None;
        }
        let mut members = 0;
        parser.object(|parser, key| {
            members += 1;
            match key.as_ref() {
                "id" if members == 1 && filter.is_none() => match parser.object_value(4)? {
                    Value::Ref(id) => ids.push(id),
                    _ => return None,
                },
                "filter" if members == 1 && ids.is_empty() => {
                    filter = Some(parser.string()?);
                }
                _ => return None,
            }
            Some(())
        })?;
        (members == 1).then_some(())
    })?;
    match filter {
        Some(text) => ReadRequest::filter(&text, None).ok(),
        None => (!ids.is_empty()).then_some(ReadRequest::Ids(ids)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::codec::json_fast::tests::{agrees, corpus, mutants};
    use crate::codec::{Format, decode_grid, encode_reply};
    use crate::ops::{HaystackOps, ParsedFilter};

    /// What hs itself writes for a read of the demo building (refs with
    /// dis, numbers with units, strings, markers) is taken whole.
    #[tokio::test]
    async fn our_own_read_responses_are_taken() {
        let store = crate::demo::building();
        let filter = ParsedFilter::parse("point").unwrap();
        let request = ReadRequest::Filter {
            filter,
            limit: None,
            explain: false,
        };
        let reply = store.read_reply(request).await.unwrap();
        let text = encode_reply(&reply, Format::Json).unwrap();
        assert!(reply.row_count() > 900);
        assert!(agrees(&text), "the demo read is not taken");
    }

    /// Whatever [`read_request`] takes, decoding the grid and
    /// [`ReadRequest::from_grid`] give the same request. `true` when it
    /// took the text.
    fn read_agrees(text: &str) -> bool {
        let Some(fast) = read_request(text) else {
            return false;
        };
        let grid =
            decode_grid(text.as_bytes(), Format::Json).unwrap_or_else(|e| panic!("{text}: {e}"));
        let general = ReadRequest::from_grid(&grid).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert_eq!(fast, general, "{text}");
        true
    }

    #[test]
    fn plain_read_requests_are_taken_as_the_grid_path_reads_them() {
        for text in [
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p1"}}]}"#,
            r#"{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"id","meta":{"x":null}}],"rows":[{"id":{"_kind":"ref","val":"p1","dis":"P 1"}},{"id":{"_kind":"ref","val":"p2"}}]}"#,
            r#" { "rows" : [ { "id" : { "_kind" : "ref" , "val" : "a" } } ] , "cols" : [ { "name" : "x" } ] , "_kind" : "grid" } "#,
            r#"{"_kind":"grid","meta":null,"cols":[{"name":"filter"}],"rows":[{"filter":"point and siteRef==@s"}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"dis==\"a\\\"b\""}]}"#,
        ] {
            assert!(read_agrees(text), "not taken: {text}");
        }
    }

    #[test]
    fn other_read_requests_go_to_the_grid_path() {
        for text in [
            // Valid, but not plain: the grid path decides.
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":"@p1"}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p1"},"x":1}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"},{"name":"limit"}],"rows":[{"filter":"point","limit":3}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"point"},{"filter":"site"}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p1"}},{"filter":"site"}]}"#,
            // Errors: the grid path reports them.
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":null}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"and and"}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":""}]}"#,
            r#"{"_kind":"grid","meta":{},"rows":[{"id":{"_kind":"ref","val":"p1"}}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":""}],"rows":[{"id":{"_kind":"ref","val":"p1"}}]}"#,
            r#"{"_kind":"grid","cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p1"}}]} x"#,
        ] {
            assert!(!read_agrees(text), "taken: {text}");
        }
    }

    /// Random byte edits of plain read requests, and every captured grid:
    /// the fast read never disagrees with the grid path.
    #[test]
    fn read_mutations_and_captures_never_disagree() {
        let seeds = [
            r#"{"_kind":"grid","meta":{"ver":"3.0"},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p-1","dis":"P \"1\""}},{"id":{"_kind":"ref","val":"p2"}}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"point and siteRef==@s"}]}"#,
        ];
        for seed in seeds {
            assert!(read_agrees(seed));
        }
        const ALPHABET: &[u8] = br#"{}[]:,"\ -0123456789_kindgrefvalidfilterpoint=@nul"#;
        let taken = mutants(&seeds, ALPHABET, 3_000, read_agrees);
        assert!(taken > 100, "only {taken} mutants taken");
        let captured = corpus().iter().filter(|text| read_agrees(text)).count();
        assert!(captured > 0, "no captured read request taken");
    }
}
