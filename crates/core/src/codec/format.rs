use std::borrow::Cow;

use smallvec::SmallVec;

use super::CodecError;

/// The vendor media type of Haystack JSON; only `version=4` is JSON v4.
const HAYSTACK_JSON: &str = "application/vnd.haystack+json";

/// A grid wire format hs reads and writes.
///
/// JSON v4 (Hayson) is the default, as in haystack-py; Zinc 3.0 is the
/// Project Haystack default. JSON v3, Trio, CSV, Turtle and JSON-LD are not
/// spoken: [`Format::from_content_type`] refuses them (415) and
/// [`Format::negotiate`] skips them (406 when nothing else is acceptable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Format {
    /// Haystack JSON v4 (Hayson).
    #[default]
    Json,
    /// Zinc 3.0.
    Zinc,
}

/// One parsed entry of a `Content-Type` or `Accept` header.
struct MediaRange<'a> {
    /// Type and subtype, lower-cased (borrowed when already lower case).
    essence: Cow<'a, str>,
    /// Value of the `version` parameter, if any.
    version: Option<&'a str>,
    /// Value of the `q` parameter; 1.0 when absent or unparsable.
    weight: f32,
}

impl<'a> MediaRange<'a> {
    fn parse(entry: &'a str) -> Self {
        let mut parts = entry.split(';');
        let essence = parts.next().unwrap_or_default().trim();
        let essence = if essence.bytes().any(|byte| byte.is_ascii_uppercase()) {
            Cow::Owned(essence.to_ascii_lowercase())
        } else {
            Cow::Borrowed(essence)
        };
        let mut version = None;
        let mut weight = 1.0;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            let name = name.trim();
            if name.eq_ignore_ascii_case("version") {
                version = Some(value);
            } else if name.eq_ignore_ascii_case("q") {
                // An unparsable weight is ignored, as the reference does.
                weight = value.parse::<f32>().unwrap_or(weight);
            }
        }
        MediaRange {
            essence,
            version,
            weight,
        }
    }

    /// The format this exact media type names, if hs speaks it.
    fn format(&self) -> Option<Format> {
        match self.essence.as_ref() {
            "application/json" => Some(Format::Json),
            HAYSTACK_JSON if self.version == Some("4") => Some(Format::Json),
            "text/zinc" => Some(Format::Zinc),
            _ => None,
        }
    }
}

/// The format of a header value that is exactly one common media type
/// without parameters (what clients nearly always send), found without
/// parsing; `None` means "parse it".
fn common_media_type(value: &str) -> Option<Format> {
    match value {
        "application/json" => Some(Format::Json),
        "text/zinc" | "text/zinc; charset=utf-8" => Some(Format::Zinc),
        _ => None,
    }
}

impl Format {
    /// The `Content-Type` hs sends with a body in this format:
    /// `application/json` or `text/zinc; charset=utf-8` (as haystack-py).
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Zinc => "text/zinc; charset=utf-8",
        }
    }

    /// A short name: `json` or `zinc`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Zinc => "zinc",
        }
    }

    /// The format of a request body, from its `Content-Type` (docs/protocol.md
    /// 2.3).
    ///
    /// Absent or blank: JSON. `application/json` (any parameters) and
    /// `application/vnd.haystack+json;version=4`: JSON. `text/zinc` (any
    /// charset): Zinc. Anything else, JSON v3 included, is
    /// [`CodecError::UnsupportedMediaType`], which a server answers with
    /// HTTP 415.
    ///
    /// ```
    /// use hs_core::codec::Format;
    /// assert_eq!(Format::from_content_type(None).unwrap(), Format::Json);
    /// assert_eq!(Format::from_content_type(Some("text/zinc; charset=utf-8")).unwrap(), Format::Zinc);
    /// assert!(Format::from_content_type(Some("text/csv")).is_err());
    /// ```
    pub fn from_content_type(content_type: Option<&str>) -> Result<Format, CodecError> {
        let Some(content_type) = content_type.filter(|ct| !ct.trim().is_empty()) else {
            return Ok(Format::Json);
        };
        if let Some(format) = common_media_type(content_type) {
            return Ok(format);
        }
        let range = MediaRange::parse(content_type);
        range.format().ok_or(CodecError::UnsupportedMediaType {
            media_type: range.essence.into_owned(),
        })
    }

    /// The response format for an `Accept` header (docs/protocol.md 2.4), or
    /// `None` when nothing acceptable is spoken (HTTP 406).
    ///
    /// Absent or blank: `default`. Otherwise the entries are ordered by
    /// `q` (highest first, ties in header order; a weight of 0 does not
    /// exclude) and walked: `*/*`, `application/*` and `text/*` select
    /// `default` at once; `application/json`,
    /// `application/vnd.haystack+json;version=4` and `text/zinc` select their
    /// format; anything else is skipped.
    ///
    /// ```
    /// use hs_core::codec::Format;
    /// let accept = Some("text/zinc;q=0.5, application/json;q=0.9");
    /// assert_eq!(Format::negotiate(accept, Format::Zinc), Some(Format::Json));
    /// assert_eq!(Format::negotiate(Some("application/xml"), Format::Json), None);
    /// ```
    pub fn negotiate(accept: Option<&str>, default: Format) -> Option<Format> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Some(default);
        };
        if let Some(format) = common_media_type(accept) {
            return Some(format);
        }
        if accept == "*/*" {
            return Some(default);
        }
        let mut ranges: SmallVec<[MediaRange<'_>; 4]> = accept
            .split(',')
            .filter(|entry| !entry.trim().is_empty())
            .map(MediaRange::parse)
            .collect();
        // A stable sort keeps header order among equal weights.
        ranges.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        ranges
            .iter()
            .find_map(|range| match range.essence.as_ref() {
                "*/*" | "application/*" | "text/*" => Some(default),
                _ => range.format(),
            })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn content_types_from_protocol_table() {
        let cases: &[(Option<&str>, Option<Format>)] = &[
            (None, Some(Format::Json)),
            (Some(""), Some(Format::Json)),
            (Some("application/json"), Some(Format::Json)),
            (Some("Application/JSON; charset=utf-8"), Some(Format::Json)),
            (
                Some("application/vnd.haystack+json;version=4"),
                Some(Format::Json),
            ),
            (
                Some("application/vnd.haystack+json; version=\"4\""),
                Some(Format::Json),
            ),
            (Some("application/vnd.haystack+json;version=3"), None),
            (Some("application/vnd.haystack+json"), None),
            (Some("text/zinc"), Some(Format::Zinc)),
            (Some("text/zinc; charset=utf-8"), Some(Format::Zinc)),
            (Some("text/zinc;charset=latin1"), Some(Format::Zinc)),
            (Some("text/plain"), None),
            (Some("text/csv"), None),
            (Some("text/trio"), None),
            (Some("application/ld+json"), None),
        ];
        for (ct, want) in cases {
            assert_eq!(Format::from_content_type(*ct).ok(), *want, "{ct:?}");
        }
    }

    #[test]
    fn common_media_types_agree_with_the_parser() {
        for value in ["application/json", "text/zinc", "text/zinc; charset=utf-8"] {
            assert_eq!(
                common_media_type(value),
                MediaRange::parse(value).format(),
                "{value}"
            );
        }
    }

    #[test]
    fn refused_media_type_is_typed_415() {
        let err = Format::from_content_type(Some("Text/CSV; charset=utf-8")).unwrap_err();
        assert_eq!(
            err,
            CodecError::UnsupportedMediaType {
                media_type: "text/csv".into()
            }
        );
        assert_eq!(err.kind(), crate::observe::ErrorKind::Unsupported);
        assert_eq!(err.as_str(), "unsupported_media_type");
    }

    #[test]
    fn accept_variants_from_capture() {
        // http-accept-variants / http-error-not-acceptable, JSON default.
        let cases: &[(Option<&str>, Option<Format>)] = &[
            (None, Some(Format::Json)),
            (Some("  "), Some(Format::Json)),
            (Some("*/*"), Some(Format::Json)),
            (Some("application/json"), Some(Format::Json)),
            (Some("text/zinc"), Some(Format::Zinc)),
            (
                Some("application/vnd.haystack+json;version=4"),
                Some(Format::Json),
            ),
            (
                Some("text/zinc;q=0.5, application/json;q=0.9"),
                Some(Format::Json),
            ),
            (Some("application/xml, */*;q=0.1"), Some(Format::Json)),
            (Some("application/xml"), None),
            (Some("image/png"), None),
            // Formats the reference speaks but hs does not.
            (Some("application/vnd.haystack+json;version=3"), None),
            (Some("text/trio"), None),
            (Some("text/csv, text/zinc;q=0.1"), Some(Format::Zinc)),
            (Some("application/vnd.haystack+json"), None),
        ];
        for (accept, want) in cases {
            assert_eq!(
                Format::negotiate(*accept, Format::Json),
                *want,
                "{accept:?}"
            );
        }
    }

    #[test]
    fn wildcards_pick_the_default_and_ties_keep_header_order() {
        assert_eq!(
            Format::negotiate(Some("*/*"), Format::Zinc),
            Some(Format::Zinc)
        );
        assert_eq!(
            Format::negotiate(Some("text/*"), Format::Json),
            Some(Format::Json)
        );
        assert_eq!(
            Format::negotiate(Some("application/*"), Format::Zinc),
            Some(Format::Zinc)
        );
        assert_eq!(
            Format::negotiate(Some("text/zinc, application/json"), Format::Json),
            Some(Format::Zinc)
        );
        assert_eq!(
            Format::negotiate(Some("application/json, text/zinc"), Format::Zinc),
            Some(Format::Json)
        );
        // q=0 does not exclude; an unparsable q counts as 1.
        assert_eq!(
            Format::negotiate(Some("text/zinc;q=0"), Format::Json),
            Some(Format::Zinc)
        );
        assert_eq!(
            Format::negotiate(
                Some("text/zinc;q=0.2, application/json;q=abc"),
                Format::Zinc
            ),
            Some(Format::Json)
        );
        assert_eq!(
            Format::negotiate(Some("application/json;q=0.1, */*;q=0.5"), Format::Zinc),
            Some(Format::Zinc)
        );
    }

    #[test]
    fn content_type_strings() {
        assert_eq!(Format::Json.content_type(), "application/json");
        assert_eq!(Format::Zinc.content_type(), "text/zinc; charset=utf-8");
    }
}
