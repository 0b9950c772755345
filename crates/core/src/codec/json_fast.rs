//! A hand-written decoder for the JSON v4 grids nearly every request and
//! response is, tried before the serde path ([`json`](super::json)).
//!
//! It reads the text once, byte by byte, and builds the grid directly:
//! no serde visitors, strings without escapes borrowed until they become a
//! value. It handles plain dicts, lists, strings, numbers, booleans, nulls
//! and the kinds `marker`, `na`, `remove`, `ref`, `number`, `uri`,
//! `symbol`, `date`, `time`, `dateTime`, `coord` and `xstr`, each with
//! exactly its own members and named first (dates and times are built by
//! the serde path's own functions). On anything else (any
//! syntax error, another kind, a duplicate member, an unknown unit, a
//! non-finite number, nesting or sizes near a limit) it gives up and the
//! serde path decodes the text from the start: the grids are the same and
//! every error and limit is the serde path's (tested against it).

use std::borrow::Cow;

use libhaystack::units::get_unit;
use libhaystack::val::{Column, Dict, Grid, List, Number, Ref, VER, Value};
use smallvec::SmallVec;

use super::json::without_nulls;
use super::json_read::{Member, date_time_value, date_value, time_value};
use super::limits::{MAX_COLS, MAX_DEPTH, MAX_ROWS};
use crate::ops::ReadRequest;

/// The grid in `text`, or `None` when the serde path must decide.
pub(super) fn decode(text: &str) -> Option<Grid> {
    let mut parser = Parser::new(text);
    let grid = parser.grid()?;
    parser.end()?;
    Some(grid)
}

/// The read request in `text`, when it is a plain one (see
/// [`Parser::read_request`]); `None` when the grid must be decoded.
pub(crate) fn read_request(text: &str) -> Option<ReadRequest> {
    let mut parser = Parser::new(text);
    let request = parser.read_request()?;
    parser.end()?;
    Some(request)
}

/// Containers are numbered as the serde path numbers them (the grid object
/// is level 1); this path gives up a little before [`MAX_DEPTH`], so that
/// whatever it accepts the serde path accepts too.
const DEPTH_LIMIT: usize = MAX_DEPTH - 2;

/// The parser, also used by [`ws`](crate::ws) for request envelopes.
/// Every method gives up (`None`) on input it does not take.
pub(crate) struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    /// Nothing but whitespace left.
    pub(crate) fn end(&mut self) -> Option<()> {
        self.skip_whitespace();
        (self.pos == self.bytes.len()).then_some(())
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next significant byte, not consumed.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    pub(crate) fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word.as_bytes()).then(|| self.pos = end)
    }

    /// An object: `member` is called with each key, positioned at its value.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array: `item` is called positioned at each item.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string literal's JSON text, quotes and escapes included.
    pub(crate) fn raw_string(&mut self) -> Option<&'a str> {
        self.skip_whitespace();
        let start = self.pos;
        self.string()?;
        Some(&self.text[start..self.pos])
    }

    /// A string literal: borrowed when it has no escape.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        let start = self.pos;
        let plain_end = self.plain_run();
        match *self.bytes.get(plain_end)? {
            b'"' => {
                self.pos = plain_end + 1;
                // Slicing at ASCII bytes keeps to char boundaries.
                return Some(Cow::Borrowed(&self.text[start..plain_end]));
            }
            b'\\' => {}
            _ => return None, // a control character
        }
        let mut out = String::from(&self.text[start..plain_end]);
        self.pos = plain_end;
        loop {
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    let escaped = *self.bytes.get(self.pos + 1)?;
                    self.pos += 2;
                    out.push(match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    });
                }
                0..=0x1f => return None,
                _ => {
                    let end = self.plain_run();
                    out.push_str(&self.text[self.pos..end]);
                    self.pos = end;
                }
            }
        }
    }

    /// Where the run of string bytes needing no attention, from here, ends.
    fn plain_run(&self) -> usize {
        let mut end = self.pos;
        while let Some(&byte) = self.bytes.get(end) {
            if byte == b'"' || byte == b'\\' || byte < 0x20 {
                break;
            }
            end += 1;
        }
        end
    }

    /// The character of a `\uXXXX` escape (the `\u` read), a surrogate pair
    /// taken whole; a lone surrogate gives up, as serde_json refuses it.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if !(0xD800..0xE000).contains(&first) {
            return char::from_u32(first);
        }
        if first >= 0xDC00 || self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
            return None;
        }
        self.pos += 2;
        let second = self.hex4()?;
        if !(0xDC00..0xE000).contains(&second) {
            return None;
        }
        char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        let mut value = 0;
        for &digit in digits {
            value = value * 16 + char::from(digit).to_digit(16)?;
        }
        self.pos += 4;
        Some(value)
    }

    /// A JSON number, as serde_json with `float_roundtrip` reads it: the
    /// correctly rounded `f64` (integers too, as they convert exactly or
    /// round the same way). Out of range gives up (serde_json refuses it).
    fn number(&mut self) -> Option<f64> {
        let value: f64 = self.number_text()?.parse().ok()?;
        value.is_finite().then_some(value)
    }

    /// The text of a number, checked against JSON's grammar.
    pub(crate) fn number_text(&mut self) -> Option<&'a str> {
        self.skip_whitespace();
        let start = self.pos;
        let digits = |parser: &mut Self| {
            let from = parser.pos;
            while parser.bytes.get(parser.pos).is_some_and(u8::is_ascii_digit) {
                parser.pos += 1;
            }
            (parser.pos > from).then_some(())
        };
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos)? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => digits(self)?,
            _ => return None,
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            digits(self)?;
        }
        Some(&self.text[start..self.pos])
    }

    /// Any value; its containers open at level `depth`.
    fn member(&mut self, depth: usize) -> Option<Member<'a>> {
        let value = match self.peek()? {
            b'"' => return self.string().map(Member::Text),
            b'{' => self.object_value(depth)?,
            b'[' => {
                if depth > DEPTH_LIMIT {
                    return None;
                }
                let mut list = List::new();
                self.array(|parser| {
                    list.push(parser.member(depth + 1)?.into_value());
                    Some(())
                })?;
                Value::make_list(list)
            }
            b't' => self.literal("true").map(|()| Value::make_bool(true))?,
            b'f' => self.literal("false").map(|()| Value::make_bool(false))?,
            b'n' => self.literal("null").map(|()| Value::Null)?,
            _ => Value::make_number(self.number()?),
        };
        Some(Member::Value(value))
    }

    /// An object at level `depth`: a dict, or a value of one of the kinds
    /// handled here.
    fn object_value(&mut self, depth: usize) -> Option<Value> {
        if depth > DEPTH_LIMIT {
            return None;
        }
        if self.peek()? != b'{' {
            return None;
        }
        // A typed object names its kind first (as every encoder writes it);
        // one that names it later goes to the serde path.
        if self.starts_with_kind() {
            return self.typed_value(depth);
        }
        // Inline for a typical row: the dict is then allocated once, at its
        // final size.
        let mut tags: SmallVec<[(String, Value); 16]> = SmallVec::new();
        self.object(|parser, key| {
            if key == "_kind" {
                return None;
            }
            tags.push((key.into_owned(), parser.member(depth + 1)?.into_value()));
            Some(())
        })?;
        // Collected as the serde path collects: a repeated name keeps its
        // last value.
        Some(Value::make_dict(tags.drain(..).collect()))
    }

    /// Whether the object opening here starts with the member `_kind` (a
    /// look ahead; nothing is consumed).
    fn starts_with_kind(&self) -> bool {
        let rest = &self.bytes[self.pos + 1..];
        let start = rest
            .iter()
            .position(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(rest.len());
        rest[start..].starts_with(b"\"_kind\"")
    }

    /// An object at level `depth` whose first member is `_kind`: a value
    /// of one of the kinds handled here.
    fn typed_value(&mut self, depth: usize) -> Option<Value> {
        let mut members: SmallVec<[(Cow<'a, str>, Member<'a>); 3]> = SmallVec::new();
        let mut kind: Option<Cow<'a, str>> = None;
        self.object(|parser, key| {
            if key == "_kind" {
                if kind.is_some() {
                    return None;
                }
                kind = Some(parser.string()?);
            } else {
                members.push((key, parser.member(depth + 1)?));
            }
            Some(())
        })?;
        let kind = kind?;
        let typed = Typed::new(&members)?;
        match kind.as_ref() {
            "marker" if members.is_empty() => Some(Value::Marker),
            "na" if members.is_empty() => Some(Value::Na),
            "remove" if members.is_empty() => Some(Value::Remove),
            "ref" => {
                typed.only(&["val", "dis"])?;
                Some(Value::Ref(Ref::make(
                    typed.text("val")?,
                    typed.optional_text("dis")?,
                )))
            }
            "number" => {
                typed.only(&["val", "unit"])?;
                let value = typed.number("val")?.value;
                let unit = match typed.optional_text("unit")? {
                    Some(symbol) => Some(get_unit(symbol)?),
                    None => None,
                };
                Some(Value::Number(Number { value, unit }))
            }
            "uri" => {
                typed.only(&["val"])?;
                Some(Value::make_uri(typed.text("val")?))
            }
            "symbol" => {
                typed.only(&["val"])?;
                Some(Value::make_symbol(typed.text("val")?))
            }
            "date" => {
                typed.only(&["val"])?;
                date_value(typed.text("val")?).ok()
            }
            "time" => {
                typed.only(&["val"])?;
                time_value(typed.text("val")?).ok()
            }
            "dateTime" => {
                typed.only(&["val", "tz"])?;
                date_time_value(typed.text("val")?, typed.optional_text("tz")?).ok()
            }
            "coord" => {
                typed.only(&["lat", "lng"])?;
                let (lat, lng) = (typed.number("lat")?, typed.number("lng")?);
                Some(Value::make_coord_from(lat.value, lng.value))
            }
            "xstr" => {
                typed.only(&["type", "val"])?;
                Some(Value::make_xstr_from(
                    typed.text("type")?,
                    typed.text("val")?,
                ))
            }
            _ => None,
        }
    }

    /// A grid object (level 1).
    pub(crate) fn grid(&mut self) -> Option<Grid> {
        let mut is_grid = false;
        let mut meta: Option<Option<Dict>> = None;
        let mut columns: Option<Vec<Column>> = None;
        let mut rows: Option<Vec<Dict>> = None;
        self.object(|parser, key| {
            match key.as_ref() {
                "_kind" if !is_grid => {
                    is_grid = parser.string()? == "grid";
                    return is_grid.then_some(());
                }
                "meta" if meta.is_none() => meta = Some(parser.optional_dict(2)?),
                "cols" if columns.is_none() => columns = Some(parser.columns()?),
                "rows" if rows.is_none() => rows = Some(parser.rows()?),
                _ => return None,
            }
            Some(())
        })?;
        if !is_grid {
            return None;
        }
        let mut grid = Grid {
            meta: None,
            columns: columns?,
            rows: rows?,
            ..Grid::default()
        };
        if let Some(meta) = meta.flatten() {
            let mut meta = without_nulls(meta);
            if let Some(Value::Str(ver)) = meta.remove(VER) {
                grid.ver = ver.value().to_owned();
            }
            grid.meta = Some(meta).filter(|meta| !meta.is_empty());
        }
        Some(grid)
    }

    /// `null` or a dict object at level `depth`.
    fn optional_dict(&mut self, depth: usize) -> Option<Option<Dict>> {
        if self.peek()? == b'n' {
            return self.literal("null").map(|()| None);
        }
        match self.object_value(depth)? {
            Value::Dict(dict) => Some(Some(dict)),
            _ => None,
        }
    }

    /// The `cols` array (level 2) of column objects (level 3).
    fn columns(&mut self) -> Option<Vec<Column>> {
        let mut columns = Vec::new();
        self.array(|parser| {
            if columns.len() + 1 >= MAX_COLS {
                return None;
            }
            let (name, meta) = parser.column()?;
            let meta = meta.map(without_nulls).filter(|meta| !meta.is_empty());
            columns.push(Column {
                name: name.into_owned(),
                meta,
            });
            Some(())
        })?;
        Some(columns)
    }

    /// The `cols` array, checked as [`columns`](Self::columns) checks it
    /// but not kept.
    fn skip_columns(&mut self) -> Option<()> {
        let mut count = 0;
        self.array(|parser| {
            count += 1;
            if count >= MAX_COLS {
                return None;
            }
            parser.column().map(drop)
        })
    }

    /// One column object (level 3): its non-empty name and its meta.
    fn column(&mut self) -> Option<(Cow<'a, str>, Option<Dict>)> {
        let mut name: Option<Cow<'a, str>> = None;
        let mut meta: Option<Option<Dict>> = None;
        self.object(|parser, key| {
            match key.as_ref() {
                "name" if name.is_none() => name = Some(parser.string()?),
                "meta" if meta.is_none() => meta = Some(parser.optional_dict(4)?),
                _ => return None,
            }
            Some(())
        })?;
        Some((name.filter(|name| !name.is_empty())?, meta.flatten()))
    }

    /// The `rows` array (level 2) of dict objects (level 3).
    fn rows(&mut self) -> Option<Vec<Dict>> {
        let mut rows = Vec::new();
        self.array(|parser| {
            if rows.len() + 1 >= MAX_ROWS || parser.peek()? != b'{' {
                return None;
            }
            match parser.object_value(3)? {
                Value::Dict(row) => rows.push(without_nulls(row)),
                _ => return None,
            }
            Some(())
        })?;
        Some(rows)
    }

    /// A read request grid (level 1) of the plainest shapes, without
    /// building the grid: every row is `{"id": <ref>}`, or the one row is
    /// `{"filter": "<text>"}`. Meta and columns are checked as
    /// [`grid`](Self::grid) checks them, then dropped (a read uses
    /// neither). Any other shape, and any invalid filter, gives up.
    pub(crate) fn read_request(&mut self) -> Option<ReadRequest> {
        let mut is_grid = false;
        let (mut seen_meta, mut seen_columns) = (false, false);
        let mut request = None;
        self.object(|parser, key| {
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
                "rows" if request.is_none() => request = Some(parser.read_rows()?),
                _ => return None,
            }
            Some(())
        })?;
        (is_grid && seen_columns).then_some(())?;
        request
    }

    /// The `rows` of a [`read_request`](Self::read_request).
    fn read_rows(&mut self) -> Option<ReadRequest> {
        let mut ids = Vec::new();
        let mut filter = None;
        self.array(|parser| {
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
}

/// The members of a typed object (`_kind` aside), each name at most once.
struct Typed<'m, 'a>(&'m [(Cow<'a, str>, Member<'a>)]);

impl<'m, 'a> Typed<'m, 'a> {
    fn new(members: &'m [(Cow<'a, str>, Member<'a>)]) -> Option<Self> {
        let distinct = members
            .iter()
            .enumerate()
            .all(|(i, (name, _))| members[..i].iter().all(|(other, _)| other != name));
        distinct.then_some(Typed(members))
    }

    /// Gives up on a member this kind does not have.
    fn only(&self, names: &[&str]) -> Option<()> {
        self.0
            .iter()
            .all(|(name, _)| names.contains(&name.as_ref()))
            .then_some(())
    }

    fn get(&self, name: &str) -> Option<&'m Member<'a>> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// A text member (`None`: absent or not text).
    fn text(&self, name: &str) -> Option<&'m str> {
        self.get(name)?.as_str()
    }

    /// An optional text member: `Some(None)` when absent, `None` when not
    /// text.
    fn optional_text(&self, name: &str) -> Option<Option<&'m str>> {
        match self.get(name) {
            Some(member) => member.as_str().map(Some),
            None => Some(None),
        }
    }

    /// A number member.
    fn number(&self, name: &str) -> Option<&'m Number> {
        self.get(name)?.as_number()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::codec::json::decode_serde;

    /// Whatever this path decodes, the serde path decodes the same; what
    /// the serde path refuses, this path gives up on. `true` when this path
    /// decoded the text.
    fn agrees(text: &str) -> bool {
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
    fn corpus() -> Vec<String> {
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

    /// What hs itself writes for a read of the demo building (refs with
    /// dis, numbers with units, strings, markers) is taken whole.
    #[tokio::test]
    async fn our_own_read_responses_are_taken() {
        use crate::ops::{HaystackOps, ReadRequest};
        let store = crate::demo::building();
        let filter = crate::ops::ParsedFilter::parse("point").unwrap();
        let request = ReadRequest::Filter {
            filter,
            limit: None,
            explain: false,
        };
        let reply = store.read_reply(request).await.unwrap();
        let text = crate::codec::encode_reply(&reply, crate::codec::Format::Json).unwrap();
        assert!(reply.row_count() > 900);
        assert!(agrees(&text), "the demo read is not taken");
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
    fn mutants(
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

    /// Whatever [`read_request`] takes, decoding the grid and
    /// [`ReadRequest::from_grid`] give the same request. `true` when it
    /// took the text.
    fn read_agrees(text: &str) -> bool {
        let Some(fast) = read_request(text) else {
            return false;
        };
        let grid = decode_serde(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
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
