//! Decoding limits, checked before the recursive decoders run so that a
//! hostile body can neither exhaust the stack nor force a huge allocation.

use super::CodecError;

/// Deepest nesting of containers a decoded grid may have (the reference's
/// limit). The grid object itself is level 1, its `rows` array level 2, a row
/// level 3, a Ref inside a row level 4.
pub const MAX_DEPTH: usize = 64;

/// Most rows a decoded grid may have (the reference's limit).
pub const MAX_ROWS: usize = 100_000;

/// Most columns a decoded grid may have (the reference's limit).
pub const MAX_COLS: usize = 10_000;

/// Checks that JSON text nests no deeper than [`MAX_DEPTH`].
///
/// A linear scan that skips string contents; it does not validate the JSON
/// (the parser does that afterwards).
pub(super) fn check_json_depth(bytes: &[u8]) -> Result<(), CodecError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(CodecError::TooDeep { max: MAX_DEPTH });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Checks that Zinc text nests no deeper than [`MAX_DEPTH`], counting the
/// grid itself as level 1 and each `[`, `{`, `(` and `<<` as one more.
/// String and URI contents are skipped.
pub(super) fn check_zinc_depth(bytes: &[u8]) -> Result<(), CodecError> {
    let mut depth = 1usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut iter = bytes.iter().copied().peekable();
    while let Some(byte) = iter.next() {
        if let Some(close) = quote {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == close {
                quote = None;
            }
            continue;
        }
        let opens = match byte {
            b'"' | b'`' => {
                quote = Some(byte);
                false
            }
            b'[' | b'{' | b'(' => true,
            b'<' if iter.peek() == Some(&b'<') => {
                iter.next();
                true
            }
            b']' | b'}' | b')' => {
                depth = depth.saturating_sub(1);
                false
            }
            b'>' if iter.peek() == Some(&b'>') => {
                iter.next();
                depth = depth.saturating_sub(1);
                false
            }
            _ => false,
        };
        if opens {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(CodecError::TooDeep { max: MAX_DEPTH });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn json_depth_counts_containers_not_string_contents() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(check_json_depth(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(
            check_json_depth(deep.as_bytes()),
            Err(CodecError::TooDeep { max: MAX_DEPTH })
        );
        let in_string = format!("[\"{}\\\"{}\"]", "[".repeat(200), "{".repeat(200));
        assert!(check_json_depth(in_string.as_bytes()).is_ok());
    }

    #[test]
    fn zinc_depth_counts_lists_dicts_and_nested_grids() {
        let ok = format!("ver:\"3.0\"\na\n{}", "[".repeat(MAX_DEPTH - 1));
        assert!(check_zinc_depth(ok.as_bytes()).is_ok());
        let deep = format!("ver:\"3.0\"\na\n{}", "[".repeat(MAX_DEPTH));
        assert!(check_zinc_depth(deep.as_bytes()).is_err());
        let grids = "<<".repeat(MAX_DEPTH);
        assert!(check_zinc_depth(grids.as_bytes()).is_err());
        let quoted = format!(
            "ver:\"3.0\"\na\n\"{}\",`{}`",
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(check_zinc_depth(quoted.as_bytes()).is_ok());
    }
}
