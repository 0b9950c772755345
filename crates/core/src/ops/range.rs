//! [`HisRange`]: the `range` argument of hisRead, parsed and resolved to instants.

use chrono::{Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use libhaystack::val::{DateTime, Value};

use super::OpError;

/// A hisRead range, as the Haystack spec defines it. Resolved against the
/// point's timezone by [`HisRange::resolve`]; every resolved span is
/// start-inclusive and end-exclusive.
///
/// ```
/// use hs_core::ops::HisRange;
///
/// assert_eq!(HisRange::parse("today").unwrap(), HisRange::Today);
/// assert!(matches!(HisRange::parse("2024-01-01,2024-01-07").unwrap(), HisRange::Dates(..)));
/// assert!(HisRange::parse("last tuesday").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HisRange {
    /// `today`: midnight to midnight in the point's timezone.
    Today,
    /// `yesterday`.
    Yesterday,
    /// One whole day: `2024-01-01` (or a Date value).
    Date(NaiveDate),
    /// Whole days from the first to the last, both included: `2024-01-01,2024-01-07`.
    Dates(NaiveDate, NaiveDate),
    /// From the first instant (included) to the second (excluded).
    Span(DateTime, DateTime),
    /// From an instant to now: a single DateTime.
    Since(DateTime),
}

impl HisRange {
    /// Parse a range string (`today`, `yesterday`, `date`, `date,date`,
    /// `dateTime,dateTime`, `dateTime`). A DateTime is ISO 8601 with an offset,
    /// optionally followed by a space and a Haystack timezone name, as Zinc writes it.
    pub fn parse(text: &str) -> Result<Self, OpError> {
        let text = text.trim();
        match text {
            "today" => return Ok(HisRange::Today),
            "yesterday" => return Ok(HisRange::Yesterday),
            "" => return Err(OpError::bad_request("hisRead: empty range")),
            _ => {}
        }
        let mut parts = text.split(',');
        let first = parts.next().unwrap_or_default().trim();
        let second = parts.next().map(str::trim);
        if parts.next().is_some() {
            return Err(bad_range(text, "more than two parts"));
        }
        match (
            parse_point(first, text)?,
            second.map(|s| parse_point(s, text)).transpose()?,
        ) {
            (RangePoint::Date(date), None) => Ok(HisRange::Date(date)),
            (RangePoint::DateTime(start), None) => Ok(HisRange::Since(start)),
            (RangePoint::Date(start), Some(RangePoint::Date(end))) => {
                if start > end {
                    return Err(bad_range(text, "start is after end"));
                }
                Ok(HisRange::Dates(start, end))
            }
            (RangePoint::DateTime(start), Some(RangePoint::DateTime(end))) => {
                if start > end {
                    return Err(bad_range(text, "start is after end"));
                }
                Ok(HisRange::Span(start, end))
            }
            _ => Err(bad_range(text, "mixes a Date and a DateTime")),
        }
    }

    /// Read a range from a request cell: a Str to [`parse`](Self::parse), a Date
    /// (one day) or a DateTime (from that instant).
    pub fn from_value(value: &Value) -> Result<Self, OpError> {
        match value {
            Value::Str(text) => Self::parse(text.as_str()),
            Value::Date(date) => Ok(HisRange::Date(**date)),
            Value::DateTime(start) => Ok(HisRange::Since(*start)),
            other => Err(OpError::bad_request(format!(
                "hisRead: range must be a Str, Date or DateTime, not {}",
                kind_name(other)
            ))),
        }
    }

    /// The instants `[start, end)` this range covers in timezone `tz`, given the
    /// current time `now`.
    pub fn resolve(
        &self,
        tz: Tz,
        now: chrono::DateTime<Utc>,
    ) -> (chrono::DateTime<Tz>, chrono::DateTime<Tz>) {
        let today = now.with_timezone(&tz).date_naive();
        let days = |first: NaiveDate, last: NaiveDate| {
            let end = last.checked_add_days(Days::new(1)).unwrap_or(last);
            (start_of_day(tz, first), start_of_day(tz, end))
        };
        match self {
            HisRange::Today => days(today, today),
            HisRange::Yesterday => {
                let yesterday = today.checked_sub_days(Days::new(1)).unwrap_or(today);
                days(yesterday, yesterday)
            }
            HisRange::Date(date) => days(*date, *date),
            HisRange::Dates(first, last) => days(*first, *last),
            HisRange::Span(start, end) => (to_tz(start, tz), to_tz(end, tz)),
            HisRange::Since(start) => {
                let start = to_tz(start, tz);
                let now = now.with_timezone(&tz);
                (start, now.max(start))
            }
        }
    }
}

enum RangePoint {
    Date(NaiveDate),
    DateTime(DateTime),
}

fn parse_point(part: &str, whole: &str) -> Result<RangePoint, OpError> {
    if let Ok(date) = NaiveDate::parse_from_str(part, "%Y-%m-%d") {
        return Ok(RangePoint::Date(date));
    }
    let (iso, tz_name) = match part.split_once(' ') {
        Some((iso, tz_name)) => (iso, Some(tz_name.trim())),
        None => (part, None),
    };
    let parsed = match tz_name {
        Some(tz_name) => DateTime::parse_from_rfc3339_with_timezone(iso, tz_name),
        None => DateTime::parse_from_rfc3339(iso),
    };
    parsed
        .map(RangePoint::DateTime)
        .map_err(|_| bad_range(whole, &format!("`{part}` is not a Date or DateTime")))
}

fn bad_range(text: &str, why: &str) -> OpError {
    OpError::bad_request(format!("hisRead: invalid range `{text}`: {why}"))
}

/// Midnight at the start of `date` in `tz` (the first instant of the day when
/// a DST change skips midnight).
fn start_of_day(tz: Tz, date: NaiveDate) -> chrono::DateTime<Tz> {
    let midnight = date.and_time(NaiveTime::MIN);
    tz.from_local_datetime(&midnight)
        .earliest()
        .unwrap_or_else(|| tz.from_utc_datetime(&midnight))
}

fn to_tz(value: &DateTime, tz: Tz) -> chrono::DateTime<Tz> {
    tz.from_utc_datetime(&value.naive_utc())
}

/// The Haystack kind name of a value, for error messages.
pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Remove => "Remove",
        Value::Marker => "Marker",
        Value::Bool(_) => "Bool",
        Value::Na => "NA",
        Value::Number(_) => "Number",
        Value::Str(_) => "Str",
        Value::Uri(_) => "Uri",
        Value::Ref(_) => "Ref",
        Value::Symbol(_) => "Symbol",
        Value::Date(_) => "Date",
        Value::Time(_) => "Time",
        Value::DateTime(_) => "DateTime",
        Value::Coord(_) => "Coord",
        Value::XStr(_) => "XStr",
        Value::List(_) => "List",
        Value::Dict(_) => "Dict",
        Value::Grid(_) => "Grid",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ny() -> Tz {
        chrono_tz::America::New_York
    }

    fn now() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 15, 17, 30, 0).unwrap()
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(HisRange::parse(" today ").unwrap(), HisRange::Today);
        assert_eq!(HisRange::parse("yesterday").unwrap(), HisRange::Yesterday);
        assert_eq!(
            HisRange::parse("2024-01-01").unwrap(),
            HisRange::Date(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap())
        );
        assert!(matches!(
            HisRange::parse("2024-01-01,2024-01-02").unwrap(),
            HisRange::Dates(..)
        ));
        assert!(matches!(
            HisRange::parse(
                "2024-01-01T00:00:00-05:00 New_York,2024-01-01T01:00:00-05:00 New_York"
            )
            .unwrap(),
            HisRange::Span(..)
        ));
        assert!(matches!(
            HisRange::parse("2024-01-01T00:00:00Z").unwrap(),
            HisRange::Since(..)
        ));
    }

    #[test]
    fn rejects_malformed_ranges() {
        for bad in [
            "",
            "tomorrow",
            "2024-13-01",
            "2024-01-02,2024-01-01",
            "2024-01-01,2024-01-01T00:00:00Z",
            "a,b,c",
            "2024-01-01,",
            "2024-01-01T00:00:00Z Nowhere_City",
        ] {
            let err = HisRange::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::observe::ErrorKind::BadRequest, "{bad}");
        }
        assert!(HisRange::from_value(&Value::make_number(1.0)).is_err());
    }

    #[test]
    fn resolves_days_in_the_points_timezone() {
        let (start, end) = HisRange::Today.resolve(ny(), now());
        assert_eq!(start.to_rfc3339(), "2024-03-15T00:00:00-04:00");
        assert_eq!(end.to_rfc3339(), "2024-03-16T00:00:00-04:00");
        let (start, end) = HisRange::Yesterday.resolve(ny(), now());
        assert_eq!(start.to_rfc3339(), "2024-03-14T00:00:00-04:00");
        assert_eq!(end.to_rfc3339(), "2024-03-15T00:00:00-04:00");
        // DST starts on 2024-03-10: that day is 23 hours long.
        let (start, end) = HisRange::parse("2024-03-10").unwrap().resolve(ny(), now());
        assert_eq!((end - start).num_hours(), 23);
        let (start, end) = HisRange::parse("2024-01-01,2024-01-07")
            .unwrap()
            .resolve(ny(), now());
        assert_eq!((end - start).num_days(), 7);
    }

    #[test]
    fn resolves_instants() {
        let (start, end) = HisRange::parse("2024-03-15T12:00:00-04:00 New_York")
            .unwrap()
            .resolve(ny(), now());
        assert_eq!(start.to_rfc3339(), "2024-03-15T12:00:00-04:00");
        assert_eq!(end, now());
    }
}
