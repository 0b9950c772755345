//! Printing grids: an aligned table for people, or Zinc / JSON for programs;
//! and [`outln!`], the one way the commands write a line to stdout.

use std::io::Write;

use hs_core::codec::{self, Format};
use hs_core::value::{Grid, Value};
use libhaystack::encoding::zinc::encode::ToZinc;

use crate::cli::OutputFormat;
use crate::error::CliError;

/// `println!` that returns the write error (as [`CliError`]) instead of
/// panicking, so a closed stdout (`hs ... | head -1`) ends the command
/// through the usual error path, where `main` lets it end quietly.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes one line to stdout; see [`outln!`].
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.write_all(b"\n")?;
    Ok(())
}

/// Renders `grid` in `format`; `columns` (table only) picks and orders the
/// columns shown, empty for all.
pub(crate) fn render(
    grid: &Grid,
    format: OutputFormat,
    columns: &[String],
) -> Result<String, CliError> {
    match format {
        OutputFormat::Table => Ok(table(grid, columns)),
        OutputFormat::Zinc => Ok(codec::encode_grid(grid, Format::Zinc)?),
        OutputFormat::Json => Ok(codec::encode_grid(grid, Format::Json)?),
    }
}

/// An aligned table: a header, a rule, one line per row; `(no rows)` for an
/// empty grid. Columns that are empty in every row are left out; `id` and
/// `dis` come first.
pub(crate) fn table(grid: &Grid, only: &[String]) -> String {
    let names: Vec<&str> = if only.is_empty() {
        let mut names: Vec<&str> = grid
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|name| grid.rows.iter().any(|row| row.get(name).is_some()))
            .collect();
        // `id` and `dis` first, as people scan for them; the rest in grid order.
        names.sort_by_key(|name| match *name {
            "id" => 0,
            "dis" => 1,
            _ => 2,
        });
        names
    } else {
        only.iter().map(String::as_str).collect()
    };
    if grid.rows.is_empty() || names.is_empty() {
        return "(no rows)\n".to_owned();
    }
    let cells: Vec<Vec<String>> = grid
        .rows
        .iter()
        .map(|row| {
            names
                .iter()
                .map(|name| match (*name, row.get(name)) {
                    // The dis has its own column; don't repeat it in the id.
                    ("id", Some(Value::Ref(id))) if row.get("dis").is_some() => {
                        format!("@{}", id.value())
                    }
                    (_, value) => value.map(cell).unwrap_or_default(),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            cells
                .iter()
                .map(|row| width(&row[i]))
                .chain(std::iter::once(width(name)))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    push_line(&mut out, names.iter().copied(), &widths);
    push_line(
        &mut out,
        widths
            .iter()
            .map(|w| "─".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
        &widths,
    );
    for row in &cells {
        push_line(&mut out, row.iter().map(String::as_str), &widths);
    }
    out
}

fn push_line<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>, widths: &[usize]) {
    let mut line = String::new();
    for (i, (text, w)) in cells.zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(text);
        line.extend(std::iter::repeat_n(' ', w.saturating_sub(width(text))));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Display width in terminal cells: CJK text and most emoji take two cells,
/// combining marks none (a char count misaligns both).
fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// One value as a person reads it: markers as ✓, numbers with their unit,
/// strings bare, refs as `@id "dis"`, everything else as Zinc.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Marker => "✓".to_owned(),
        Value::Na => "NA".to_owned(),
        Value::Bool(b) => b.value.to_string(),
        Value::Str(s) => s.value().replace('\n', "\\n"),
        Value::Number(n) => {
            let unit = n.unit.map_or("", |u| u.symbol());
            format!("{}{unit}", trim_float(n.value))
        }
        Value::Ref(r) => match r.dis() {
            Some(dis) => format!("@{} \"{dis}\"", r.value()),
            None => format!("@{}", r.value()),
        },
        other => other.to_zinc_string().unwrap_or_else(|_| "?".to_owned()),
    }
}

/// `1 entity`, `2 entities`.
pub(crate) fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// `72`, `72.5`, `0.001`: shortest round-trip form without a trailing `.0`.
fn trim_float(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hs_core::value::{Dict, Number, Ref, get_unit};

    fn grid() -> Grid {
        let mut a = Dict::new();
        a.insert("id".into(), Value::from(Ref::make("p1", Some("Zone Temp"))));
        a.insert("point".into(), Value::make_marker());
        a.insert(
            "curVal".into(),
            Value::from(Number::make_with_unit(72.5, get_unit("°F").unwrap())),
        );
        let mut b = Dict::new();
        b.insert("id".into(), Value::from(Ref::from("p2")));
        b.insert("dis".into(), Value::from("Fan"));
        Grid::make_from_dicts(vec![a, b])
    }

    #[test]
    fn table_aligns_columns_and_renders_values_for_people() {
        let text = table(&grid(), &[]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        // Every line starts its second column at the same offset.
        let header_offset = lines[0].find("  ").unwrap();
        assert!(lines[2].starts_with("@p1 \"Zone Temp\""), "{text}");
        assert!(
            lines[3].starts_with("@p2  "),
            "no dis repeated when a dis column exists: {text}"
        );
        assert!(lines[3].starts_with("@p2"), "{text}");
        assert!(text.contains("72.5°F"), "{text}");
        assert!(text.contains('✓'), "{text}");
        assert!(lines[2].len() >= header_offset);
    }

    #[test]
    fn table_picks_columns_and_reports_empty_grids() {
        let text = table(&grid(), &["dis".to_owned()]);
        assert_eq!(text, "dis\n───\n\nFan\n");
        assert_eq!(table(&Grid::make_empty(), &[]), "(no rows)\n");
    }

    #[test]
    fn zinc_and_json_round_trip() {
        let zinc = render(&grid(), OutputFormat::Zinc, &[]).unwrap();
        assert!(zinc.starts_with("ver:\"3.0\""), "{zinc}");
        let json = render(&grid(), OutputFormat::Json, &[]).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["rows"].as_array().unwrap().len(), 2);
    }
}
