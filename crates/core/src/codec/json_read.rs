//! Streaming Hayson value decoding: the same values and errors as
//! libhaystack's JSON decoder, with the nesting depth checked on the way.
//!
//! libhaystack decodes every object into a `Dict` of owned keys and values
//! before it looks at its `_kind`, so a marker or a ref costs several
//! allocations. Here an object's members are kept as borrowed text until its
//! kind is known, and only a plain dict builds a `Dict`. The rules (last
//! member wins, what each kind requires, the error texts) are libhaystack's.

use std::borrow::Cow;
use std::fmt;

use chrono::{Offset, Utc};
use libhaystack::timezone::make_date_time_with_tz;
use libhaystack::units::get_unit;
use libhaystack::val::{
    Column, Date, DateTime, Dict, GRID_FORMAT_VERSION, Grid, HaystackDict, List, Number, Ref, Str,
    Time, VER, Value,
};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use smallvec::SmallVec;

use super::limits::MAX_DEPTH;

/// The error raised when the nesting passes [`MAX_DEPTH`]; the caller turns
/// it into [`CodecError::TooDeep`](super::CodecError::TooDeep).
pub(super) const TOO_DEEP: &str = "nesting too deep";

pub(super) fn check_depth<E: de::Error>(depth: usize) -> Result<(), E> {
    if depth > MAX_DEPTH {
        Err(E::custom(TOO_DEEP))
    } else {
        Ok(())
    }
}

/// A Hayson value whose containers open at nesting level `depth`.
#[derive(Clone, Copy)]
pub(super) struct ValueSeed {
    pub(super) depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        MemberSeed { depth: self.depth }
            .deserialize(deserializer)
            .map(Member::into_value)
    }
}

/// A dict or `None` for JSON `null`, as `Option<Dict>` decodes by
/// libhaystack: any other value is an error.
pub(super) struct OptionalDictSeed {
    pub(super) depth: usize,
}

impl<'de> DeserializeSeed<'de> for OptionalDictSeed {
    type Value = Option<Dict>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Dict>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalDictSeed {
    type Value = Option<Dict>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a dict or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<Dict>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Dict>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Dict>, D::Error> {
        match (ValueSeed { depth: self.depth }).deserialize(deserializer)? {
            Value::Dict(dict) => Ok(Some(dict)),
            _ => Err(de::Error::custom("Invalid Hayson Dict")),
        }
    }
}

/// Skips any JSON value, checking its depth (what `IgnoredAny` does,
/// bounded by [`MAX_DEPTH`] rather than serde_json's recursion limit).
pub(super) struct SkipSeed {
    pub(super) depth: usize,
}

impl<'de> DeserializeSeed<'de> for SkipSeed {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // Not `deserialize_ignored_any`: serde_json skips those values
        // without visiting them, and so without counting their depth.
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SkipSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        check_depth(self.depth)?;
        while seq
            .next_element_seed(SkipSeed {
                depth: self.depth + 1,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        check_depth(self.depth)?;
        while map.next_key::<de::IgnoredAny>()?.is_some() {
            map.next_value_seed(SkipSeed {
                depth: self.depth + 1,
            })?;
        }
        Ok(())
    }
}

/// An object member's value: text stays borrowed until it is known to be
/// needed as a `Str` (also used by [`json_fast`](super::json_fast)).
pub(super) enum Member<'de> {
    Text(Cow<'de, str>),
    Value(Value),
}

impl Member<'_> {
    pub(super) fn into_value(self) -> Value {
        match self {
            Member::Text(Cow::Borrowed(text)) => Value::Str(Str::from(text)),
            Member::Text(Cow::Owned(text)) => Value::Str(Str::from(text)),
            Member::Value(value) => value,
        }
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Member::Text(text) => Some(text),
            Member::Value(Value::Str(text)) => Some(text.value()),
            Member::Value(_) => None,
        }
    }

    pub(super) fn as_number(&self) -> Option<&Number> {
        match self {
            Member::Value(Value::Number(number)) => Some(number),
            _ => None,
        }
    }
}

/// A typed object's members, inline up to the four a Hayson kind has at
/// most (`_kind` aside).
type Members<'de> = SmallVec<[(Cow<'de, str>, Member<'de>); 4]>;

struct MemberSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = Member<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Member<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// A Hayson kind with members (the member-less kinds return at once).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Ref,
    Symbol,
    Uri,
    Date,
    Time,
    DateTime,
    Coord,
    XStr,
    Grid,
}

impl<'de> Visitor<'de> for MemberSeed {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("A valid Hayson Haystack encoding.")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Member<'de>, E> {
        Ok(Member::Value(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Member<'de>, E> {
        Ok(Member::Value(Value::make_bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Member<'de>, E> {
        Ok(Member::Value(Value::make_number(v as f64)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Member<'de>, E> {
        Ok(Member::Value(Value::make_number(v as f64)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Member<'de>, E> {
        Ok(Member::Value(Value::make_number(v)))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Member<'de>, E> {
        Ok(Member::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Member<'de>, E> {
        Ok(Member::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Member<'de>, E> {
        Ok(Member::Text(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member<'de>, A::Error> {
        check_depth(self.depth)?;
        let item = ValueSeed {
            depth: self.depth + 1,
        };
        let mut list = List::new();
        while let Some(value) = seq.next_element_seed(item)? {
            list.push(value);
        }
        Ok(Member::Value(Value::make_list(list)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Member<'de>, A::Error> {
        check_depth(self.depth)?;
        // The members of an object that starts with `_kind` are kept apart
        // until its end; any other object's members are gathered (inline
        // for a typical row) and become a dict built at its final size.
        // libhaystack's result does not depend on where `_kind` is.
        let mut members: Members<'de> = SmallVec::new();
        let mut plain: SmallVec<[(String, Value); 16]> = SmallVec::new();
        // The last `_kind` wins; `None` (also for "dict") means a dict.
        let mut kind: Option<Kind> = None;
        let mut typed = false;
        let mut first = true;
        while let Some(key) = access.next_key::<Cow<'de, str>>()? {
            let value = access.next_value_seed(MemberSeed {
                depth: self.depth + 1,
            })?;
            if key == "_kind" {
                let Some(name) = value.as_str() else {
                    return Err(de::Error::custom("Invalid Hayson kind type"));
                };
                kind = match name {
                    "marker" => return Ok(Member::Value(Value::Marker)),
                    "remove" => return Ok(Member::Value(Value::Remove)),
                    "na" => return Ok(Member::Value(Value::Na)),
                    "number" => Some(Kind::Number),
                    "ref" => Some(Kind::Ref),
                    "symbol" => Some(Kind::Symbol),
                    "uri" => Some(Kind::Uri),
                    "date" => Some(Kind::Date),
                    "time" => Some(Kind::Time),
                    "dateTime" => Some(Kind::DateTime),
                    "coord" => Some(Kind::Coord),
                    "xstr" => Some(Kind::XStr),
                    "grid" => Some(Kind::Grid),
                    "dict" => None,
                    other => {
                        return Err(de::Error::custom(format!("Invalid Hayson kind: {other}")));
                    }
                };
                typed |= first;
            } else if typed {
                members.push((key, value));
            } else {
                plain.push((key.into_owned(), value.into_value()));
            }
            first = false;
        }
        let Some(kind) = kind else {
            // Collecting inserts in order: a repeated name keeps its last
            // value, as libhaystack's inserts do.
            let dict: Dict = if typed {
                members
                    .into_iter()
                    .map(|(key, value)| (key.into_owned(), value.into_value()))
                    .collect()
            } else {
                plain.into_iter().collect()
            };
            return Ok(Member::Value(Value::make_dict(dict)));
        };
        // A kind found after plain members: look all members up in one place.
        for (key, value) in plain {
            members.push((Cow::Owned(key), Member::Value(value)));
        }
        let fields = Fields(&members);
        let (what, result) = match kind {
            Kind::Number => ("Number", fields.number()),
            Kind::Ref => ("Ref", fields.reference()),
            Kind::Symbol => ("Symbol", fields.val().map(Value::make_symbol)),
            Kind::Uri => ("Uri", fields.val().map(Value::make_uri)),
            Kind::Date => ("Date", fields.date()),
            Kind::Time => ("Time", fields.time()),
            Kind::DateTime => ("DateTime", fields.date_time()),
            Kind::Coord => ("Coord", fields.coord()),
            Kind::XStr => ("XStr", fields.xstr()),
            Kind::Grid => ("Grid", Fields::grid(members)),
        };
        result
            .map(Member::Value)
            .map_err(|err| de::Error::custom(format!("Invalid Hayson {what}. {err}")))
    }
}

/// A Hayson date from its `val` (also used by [`json_fast`](super::json_fast)).
pub(super) fn date_value(val: &str) -> Result<Value, String> {
    val.parse::<Date>()
        .map(Value::make_date)
        .map_err(|err| format!("Invalid date 'val', {err}"))
}

/// A Hayson time from its `val`.
pub(super) fn time_value(val: &str) -> Result<Value, String> {
    val.parse::<Time>()
        .map(Value::make_time)
        .map_err(|err| format!("Invalid time 'val', {err}"))
}

/// A Hayson date-time from its `val` and `tz`.
pub(super) fn date_time_value(val: &str, tz: Option<&str>) -> Result<Value, String> {
    let date = DateTime::parse_from_rfc3339(val)
        .map_err(|err| format!("Invalid datetime 'val', {err}"))?;
    match tz {
        Some(tz) => make_date_time_with_tz(&date.with_timezone(&Utc.fix()), tz)
            .map(|date| Value::DateTime(date.into())),
        None => Ok(Value::make_datetime(date)),
    }
}

/// The members of a typed object, looked up as libhaystack's `Dict` would
/// (the last member of a name wins).
struct Fields<'a, 'de>(&'a [(Cow<'de, str>, Member<'de>)]);

impl<'a, 'de> Fields<'a, 'de> {
    fn get(&self, name: &str) -> Option<&'a Member<'de>> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    fn str(&self, name: &str) -> Option<&'a str> {
        self.get(name).and_then(Member::as_str)
    }

    fn num(&self, name: &str) -> Option<&'a Number> {
        self.get(name).and_then(Member::as_number)
    }

    fn val(&self) -> Result<&'a str, String> {
        self.str("val")
            .ok_or_else(|| "Missing or invalid 'val'".to_owned())
    }

    fn number(&self) -> Result<Value, String> {
        let value = self
            .num("val")
            .ok_or_else(|| "Missing or invalid 'val'".to_owned())?;
        match self.str("unit") {
            Some(symbol) => match get_unit(symbol) {
                Some(unit) => Ok(Value::Number(Number {
                    value: value.value,
                    unit: Some(unit),
                })),
                None => Err(format!("Unit not found: {:?}", Str::from(symbol))),
            },
            None => Ok(Value::Number(*value)),
        }
    }

    fn reference(&self) -> Result<Value, String> {
        let value = self.val()?;
        Ok(Value::Ref(Ref::make(value, self.str("dis"))))
    }

    fn date(&self) -> Result<Value, String> {
        date_value(self.val()?)
    }

    fn time(&self) -> Result<Value, String> {
        time_value(self.val()?)
    }

    fn date_time(&self) -> Result<Value, String> {
        date_time_value(self.val()?, self.str("tz"))
    }

    fn coord(&self) -> Result<Value, String> {
        let lat = self
            .num("lat")
            .ok_or_else(|| "Missing or invalid 'lat'".to_owned())?;
        let lng = self
            .num("lng")
            .ok_or_else(|| "Missing or invalid 'lng'".to_owned())?;
        Ok(Value::make_coord_from(lat.value, lng.value))
    }

    fn xstr(&self) -> Result<Value, String> {
        let kind = self
            .str("type")
            .ok_or_else(|| "Missing or invalid 'type'".to_owned())?;
        Ok(Value::make_xstr_from(kind, self.val()?))
    }

    /// A nested grid as libhaystack builds it: rows and columns kept as
    /// they are (nulls included), `ver` taken from the meta.
    fn grid(members: Members<'_>) -> Result<Value, String> {
        let mut dict = Dict::new();
        for (key, value) in members {
            dict.insert(key.into_owned(), value.into_value());
        }
        let rows = dict
            .get_list("rows")
            .ok_or_else(|| "Missing or invalid 'rows'".to_owned())?;
        let cols = dict
            .get_list("cols")
            .ok_or_else(|| "Missing or invalid 'cols'".to_owned())?;
        let mut meta = dict.get_dict("meta").cloned();
        let mut ver = GRID_FORMAT_VERSION.to_owned();
        if let Some(meta_dict) = meta.as_mut() {
            if let Some(found) = meta_dict.get_str(VER) {
                ver = found.to_string();
                meta_dict.remove(VER);
            }
            if meta_dict.is_empty() {
                meta = None;
            }
        }
        let columns = cols
            .iter()
            .map(|col| match col {
                Value::Dict(col) => match col.get_str("name") {
                    Some(name) => match col.get("meta") {
                        Some(Value::Dict(meta)) => Ok(Column {
                            name: name.to_string(),
                            meta: Some(meta.clone()),
                        }),
                        Some(_) => Err("Invalid 'meta'".to_owned()),
                        None => Ok(Column {
                            name: name.to_string(),
                            meta: None,
                        }),
                    },
                    None => Err("Missing or invalid 'name'".to_owned()),
                },
                _ => Err("Invalid column type, expected a Dict".to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = rows
            .iter()
            .map(|row| match row {
                Value::Dict(row) => Ok(row.clone()),
                _ => Err("Invalid row type, expected a Dict".to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Value::make_grid(Grid {
            meta,
            columns,
            rows,
            ver,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn ours(text: &str) -> Result<Value, String> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        ValueSeed { depth: 1 }
            .deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(|err| err.to_string())
    }

    fn libhaystack(text: &str) -> Result<Value, String> {
        serde_json::from_str::<Value>(text).map_err(|err| err.to_string())
    }

    #[test]
    fn values_and_errors_match_libhaystack() {
        let cases = [
            r#"null"#,
            r#"true"#,
            r#"-3"#,
            r#"18446744073709551615"#,
            r#"2.5e-3"#,
            r#""text \"escaped\" \u00e9""#,
            r#"[1,"a",null,[{"_kind":"marker"}]]"#,
            r#"{"_kind":"marker"}"#,
            r#"{"_kind":"na"}"#,
            r#"{"_kind":"remove"}"#,
            r#"{"_kind":"marker","extra":1}"#,
            r#"{"extra":1,"_kind":"marker"}"#,
            r#"{"_kind":"number","val":68.5,"unit":"°F"}"#,
            r#"{"_kind":"number","val":3}"#,
            r#"{"_kind":"number","val":3,"unit":"furlongs_per_week"}"#,
            r#"{"_kind":"number","val":"NaN"}"#,
            r#"{"_kind":"number","unit":"m"}"#,
            r#"{"_kind":"number","val":1,"unit":5}"#,
            r#"{"_kind":"number","val":{"_kind":"number","val":2,"unit":"m"}}"#,
            r#"{"_kind":"number","val":1,"val":2}"#,
            r#"{"val":7,"_kind":"number"}"#,
            r#"{"_kind":"ref","val":"p-1","dis":"Point \"1\""}"#,
            r#"{"_kind":"ref","val":"p-1","dis":3}"#,
            r#"{"_kind":"ref","dis":"x"}"#,
            r#"{"_kind":"ref","val":"a","_kind":"symbol"}"#,
            r#"{"_kind":"ref","val":"a","_kind":"dict"}"#,
            r#"{"_kind":"dict","a":1,"b":{"_kind":"marker"}}"#,
            r#"{"a":1,"a":2,"b":null}"#,
            r#"{}"#,
            r#"{"_kind":"symbol","val":"elec-meter"}"#,
            r#"{"_kind":"uri","val":"http://x/"}"#,
            r#"{"_kind":"date","val":"2024-01-02"}"#,
            r#"{"_kind":"date","val":"2024-13-02"}"#,
            r#"{"_kind":"time","val":"10:20:30.5"}"#,
            r#"{"_kind":"dateTime","val":"2024-01-02T03:04:05.123-05:00","tz":"New_York"}"#,
            r#"{"_kind":"dateTime","val":"2024-01-02T03:04:05Z"}"#,
            r#"{"_kind":"dateTime","val":"2024-01-02T03:04:05Z","tz":"Nowhere"}"#,
            r#"{"_kind":"dateTime","val":"yesterday"}"#,
            r#"{"_kind":"coord","lat":37.5,"lng":-77.25}"#,
            r#"{"_kind":"coord","lat":37.5}"#,
            r#"{"_kind":"xstr","type":"Bin","val":"text/plain"}"#,
            r#"{"_kind":"xstr","val":"text/plain"}"#,
            r#"{"_kind":"bogus"}"#,
            r#"{"_kind":5}"#,
            r#"{"_kind":{"_kind":"bogus"}}"#,
            r#"{"_kind":"grid","meta":{"ver":"3.0","dis":"x"},"cols":[{"name":"a","meta":{"m":{"_kind":"marker"}}},{"name":"b"}],"rows":[{"a":1,"b":null},{"a":{"_kind":"grid","meta":{},"cols":[],"rows":[]}}]}"#,
            r#"{"_kind":"grid","meta":{},"cols":[{"name":""}],"rows":[]}"#,
            r#"{"_kind":"grid","cols":[{"name":"a","meta":1}],"rows":[]}"#,
            r#"{"_kind":"grid","cols":[{"x":"a"}],"rows":[]}"#,
            r#"{"_kind":"grid","cols":[1],"rows":[]}"#,
            r#"{"_kind":"grid","cols":[],"rows":[1]}"#,
            r#"{"_kind":"grid","cols":[]}"#,
            r#"{"_kind":"grid","rows":[]}"#,
            r#"{"a":[1,2"#,
            r#"{"a" 1}"#,
        ];
        for text in cases {
            assert_eq!(ours(text), libhaystack(text), "{text}");
        }
        // Large dicts (past libhaystack's small-dict size) with repeated
        // names, in and out of order.
        for count in [20, 40] {
            let members: Vec<String> = (0..count)
                .map(|i| format!(r#""k{:02}":{i}"#, (i * 7) % count))
                .chain([r#""k03":"again""#.to_owned(), r#""k03":null"#.to_owned()])
                .collect();
            let text = format!("{{{}}}", members.join(","));
            assert_eq!(ours(&text), libhaystack(&text), "{text}");
            let text = format!("{{{},\"k01\":\"last\"}}", members.join(","));
            assert_eq!(ours(&text), libhaystack(&text), "{text}");
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(ours(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(ours(&deep).unwrap_err().starts_with(TOO_DEEP));
        let deep_dicts = format!(
            "{}1{}",
            r#"{"a":"#.repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert!(ours(&deep_dicts).unwrap_err().starts_with(TOO_DEEP));
        let mut deserializer = serde_json::Deserializer::from_str(&deep);
        let skipped = SkipSeed { depth: 1 }.deserialize(&mut deserializer);
        assert!(skipped.unwrap_err().to_string().starts_with(TOO_DEEP));
    }
}
