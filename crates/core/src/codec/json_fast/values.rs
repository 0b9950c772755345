//! Values, dicts and grids: what the [`Parser`] builds from the text.

use std::borrow::Cow;

use libhaystack::units::get_unit;
use libhaystack::val::{Column, Dict, Grid, List, Number, Ref, VER, Value};
use smallvec::SmallVec;

use super::{DEPTH_LIMIT, Parser};
use crate::codec::json::without_nulls;
use crate::codec::json_read::{Member, date_time_value, date_value, time_value};
use crate::codec::limits::{MAX_COLS, MAX_ROWS};

impl<'a> Parser<'a> {
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
    pub(crate) fn object_value(&mut self, depth: usize) -> Option<Value> {
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
    pub(crate) fn optional_dict(&mut self, depth: usize) -> Option<Option<Dict>> {
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
    pub(crate) fn skip_columns(&mut self) -> Option<()> {
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
