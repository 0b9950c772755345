//! Numbers and units where libhaystack's decoders are stricter than the wire:
//! non-finite JSON numbers (`{"_kind":"number","val":"NaN"}`) and units that
//! are not in libhaystack's unit database.

use crate::observe::targets;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use libhaystack::units::{Unit, get_unit};
use libhaystack::val::Number;
use parking_lot::Mutex;

/// Most distinct unknown unit symbols kept as ad-hoc units per process.
pub(crate) const MAX_AD_HOC_UNITS: usize = 256;

/// Longest unknown unit symbol (in bytes) kept as an ad-hoc unit.
pub(crate) const MAX_AD_HOC_UNIT_LEN: usize = 32;

/// Ad-hoc units, by symbol. libhaystack's `Number` holds a `&'static Unit`,
/// so each one is leaked once and shared; the table is bounded by
/// [`MAX_AD_HOC_UNITS`] so a hostile peer cannot grow it without limit.
static AD_HOC_UNITS: LazyLock<Mutex<HashMap<String, &'static Unit>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The unit for a symbol received on the wire: libhaystack's database unit,
/// else an ad-hoc unit carrying only the symbol (no quantity, no dimension,
/// so it converts to nothing), else `None` (the number is kept without its
/// unit, with a DEBUG log) when the symbol is too long, is not made of Zinc
/// unit characters, or [`MAX_AD_HOC_UNITS`] are already in use.
pub(crate) fn unit_for_symbol(symbol: &str) -> Option<&'static Unit> {
    if symbol.is_empty() {
        return None;
    }
    if let Some(unit) = get_unit(symbol) {
        return Some(unit);
    }
    if symbol.len() > MAX_AD_HOC_UNIT_LEN || !symbol.chars().all(is_zinc_unit_char) {
        log::debug!(target: targets::CODEC, "unit {symbol:?} is unknown and not a valid Zinc unit: number kept without it");
        return None;
    }
    let mut units = AD_HOC_UNITS.lock();
    if let Some(unit) = units.get(symbol) {
        return Some(unit);
    }
    if units.len() >= MAX_AD_HOC_UNITS {
        log::debug!(target: targets::CODEC, "unit {symbol:?} is unknown and the ad-hoc unit table is full: number kept without it");
        return None;
    }
    log::debug!(target: targets::CODEC, "unit {symbol:?} is not in the unit database: kept as an ad-hoc unit");
    let unit: &'static Unit = Box::leak(Box::new(Unit {
        quantity: None,
        ids: Cow::Owned(vec![Cow::Owned(symbol.to_owned())]),
        dimensions: None,
        scale: 1.0,
        offset: 0.0,
    }));
    units.insert(symbol.to_owned(), unit);
    Some(unit)
}

/// Zinc's `<unitChar>`: a letter, `%`, `_`, `/`, `$`, or any non-ASCII character.
fn is_zinc_unit_char(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '%' | '_' | '/' | '$') || !c.is_ascii()
}

/// The symbol written for a unit: libhaystack's symbol (the last of the
/// unit's ids), except for seconds, written `s` (the SI symbol, the first
/// symbol the Haystack database lists, and what haystack-py writes) rather
/// than libhaystack's `sec`. Both decode to the same unit.
pub(crate) fn unit_symbol(unit: &Unit) -> &str {
    if unit.name() == "second" {
        "s"
    } else {
        unit.symbol()
    }
}

/// Decodes the members of a JSON v4 number object: `val` is a JSON number
/// or one of the strings `NaN`, `INF`, `-INF`; `unit` is optional (see
/// [`unit_for_symbol`]).
pub(crate) fn number_from_json(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<Number, String> {
    use serde_json::Value as Json;
    let value = match object.get("val") {
        Some(Json::Number(number)) => number
            .as_f64()
            .ok_or_else(|| format!("number {number} out of range"))?,
        Some(Json::String(text)) => match text.as_str() {
            "NaN" => f64::NAN,
            "INF" => f64::INFINITY,
            "-INF" => f64::NEG_INFINITY,
            other => return Err(format!("invalid number val {other:?}")),
        },
        _ => return Err("number: missing or invalid 'val'".to_owned()),
    };
    // As libhaystack does, a `unit` that is not a string is ignored.
    let unit = match object.get("unit") {
        Some(Json::String(symbol)) => unit_for_symbol(symbol),
        _ => None,
    };
    Ok(Number { value, unit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_units_come_from_libhaystack() {
        let unit = unit_for_symbol("°F").unwrap();
        assert!(std::ptr::eq(unit, get_unit("°F").unwrap()));
        assert!(std::ptr::eq(
            unit_for_symbol("s").unwrap(),
            get_unit("sec").unwrap()
        ));
    }

    #[test]
    fn unknown_units_are_shared_ad_hoc_units() {
        let first = unit_for_symbol("widgets_per_fortnight").unwrap();
        let again = unit_for_symbol("widgets_per_fortnight").unwrap();
        assert!(std::ptr::eq(first, again));
        assert_eq!(first.symbol(), "widgets_per_fortnight");
        assert_eq!(unit_symbol(first), "widgets_per_fortnight");
    }

    #[test]
    fn unwritable_units_are_dropped() {
        assert!(unit_for_symbol("kg m").is_none());
        assert!(unit_for_symbol("m2").is_none());
        assert!(unit_for_symbol(&"x".repeat(MAX_AD_HOC_UNIT_LEN + 1)).is_none());
        assert!(unit_for_symbol("").is_none());
    }

    #[test]
    fn seconds_are_written_s() {
        assert_eq!(unit_symbol(get_unit("sec").unwrap()), "s");
        assert_eq!(unit_symbol(get_unit("min").unwrap()), "min");
        assert_eq!(unit_symbol(get_unit("°F").unwrap()), "°F");
    }
}
