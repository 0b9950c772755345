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

#[cfg(test)]
pub(crate) mod tests;
mod values;

use std::borrow::Cow;

use libhaystack::val::Grid;

use super::limits::MAX_DEPTH;

/// The grid in `text`, or `None` when the serde path must decide.
pub(super) fn decode(text: &str) -> Option<Grid> {
    let mut parser = Parser::new(text);
    let grid = parser.grid()?;
    parser.end()?;
    Some(grid)
}

/// Containers are numbered as the serde path numbers them (the grid object
/// is level 1); this path gives up a little before [`MAX_DEPTH`], so that
/// whatever it accepts the serde path accepts too.
const DEPTH_LIMIT: usize = MAX_DEPTH - 2;

/// The parser, also used for WebSocket envelopes and plain read requests.
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
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
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
}
