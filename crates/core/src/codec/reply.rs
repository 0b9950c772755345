//! [`Reply`]: what an op answers, a grid or entity rows shared with a store.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use libhaystack::val::{Dict, Grid};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

/// What an op answers: a grid built for the request, or entity rows shared
/// with the store that holds them.
///
/// A read of stored entities need not copy them: [`Reply::Rows`] holds the
/// store's own `Arc<Dict>`s and the servers encode them in place, so a read
/// costs no copy of the entities and no column list. [`Reply::Encoded`]
/// also carries each row's JSON text, which a store can keep between reads:
/// a JSON answer then costs a copy of its bytes.
/// [`into_grid`](Self::into_grid) gives a [`Grid`] either way.
///
/// ```
/// use std::sync::Arc;
/// use hs_core::ops::Reply;
/// use libhaystack::val::{Dict, Value};
///
/// let mut entity = Dict::new();
/// entity.insert("id".into(), Value::make_ref("p1"));
/// entity.insert("point".into(), Value::make_marker());
/// let reply = Reply::Rows(vec![Arc::new(entity)]);
/// assert_eq!(reply.row_count(), 1);
/// let grid = reply.into_grid();
/// assert_eq!(grid.columns[0].name, "id"); // `id` first, as `make_grid` builds it
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// A grid.
    Grid(Grid),
    /// Rows shared with a store, without grid meta. The columns are the
    /// rows' tags in first-seen order, `id` first, as
    /// [`make_grid`] builds them; an empty dict is a row
    /// of nulls.
    Rows(Vec<Arc<Dict>>),
    /// As [`Rows`](Reply::Rows), each row with its JSON v4 object text.
    Encoded(EncodedRows),
}

/// Rows shared with a store, each with its JSON v4 object text (`id`
/// first, then the dict's order), for [`Reply::Encoded`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodedRows {
    rows: Vec<Arc<Dict>>,
    json: Vec<Arc<str>>,
    /// Each row's shape: rows of one shape have the same tag names in the
    /// same order; [`UNKNOWN_SHAPE`] for rows pushed without one.
    shapes: Vec<u32>,
}

/// The shape of a row whose tag names are not known to match another's.
pub(crate) const UNKNOWN_SHAPE: u32 = u32::MAX;

impl EncodedRows {
    /// No rows; room for `capacity`.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            rows: Vec::with_capacity(capacity),
            json: Vec::with_capacity(capacity),
            shapes: Vec::with_capacity(capacity),
        }
    }

    /// Adds `row`, whose JSON text is `json` (the caller keeps them in
    /// step: the text is sent as the row).
    pub(crate) fn push(&mut self, row: Arc<Dict>, json: Arc<str>) {
        self.push_shaped(row, json, UNKNOWN_SHAPE);
    }

    /// As [`push`](Self::push), with the row's shape: a store's id for its
    /// exact tag names, so that the answer's columns come from one row of
    /// each shape.
    pub(crate) fn push_shaped(&mut self, row: Arc<Dict>, json: Arc<str>, shape: u32) {
        self.rows.push(row);
        self.json.push(json);
        self.shapes.push(shape);
    }

    /// The answer's column names (as [`make_grid`] gives them): those of
    /// the first row of each shape and of every row without one.
    pub(crate) fn column_names(&self) -> Vec<&str> {
        let mut seen: FxHashSet<u32> = FxHashSet::default();
        let distinct = self
            .rows
            .iter()
            .zip(&self.shapes)
            .filter(move |(_, shape)| **shape == UNKNOWN_SHAPE || seen.insert(**shape))
            .map(|(row, _)| &**row);
        column_names_of(distinct)
    }

    /// The rows.
    pub fn rows(&self) -> &[Arc<Dict>] {
        &self.rows
    }

    /// The rows' JSON texts, in row order.
    pub(crate) fn json(&self) -> &[Arc<str>] {
        &self.json
    }
}

impl Reply {
    /// The reply as a grid; shared rows are copied (once each, and not at
    /// all when this reply holds the last reference).
    pub fn into_grid(self) -> Grid {
        match self {
            Reply::Grid(grid) => grid,
            Reply::Rows(rows) | Reply::Encoded(EncodedRows { rows, .. }) => make_grid(
                Dict::new(),
                rows.into_iter().map(Arc::unwrap_or_clone).collect(),
            ),
        }
    }

    /// The grid, when this reply is one.
    pub fn as_grid(&self) -> Option<&Grid> {
        match self {
            Reply::Grid(grid) => Some(grid),
            Reply::Rows(_) | Reply::Encoded(_) => None,
        }
    }

    /// The grid meta; `None` for shared rows, which carry none.
    pub fn meta(&self) -> Option<&Dict> {
        self.as_grid().and_then(|grid| grid.meta.as_ref())
    }

    /// Number of rows.
    pub fn row_count(&self) -> usize {
        match self {
            Reply::Grid(grid) => grid.rows.len(),
            Reply::Rows(rows) => rows.len(),
            Reply::Encoded(rows) => rows.rows.len(),
        }
    }

    /// `Some(dis)` when the reply is an error grid (see
    /// [`codec::error_message`](crate::codec::error_message)).
    pub fn error_message(&self) -> Option<String> {
        self.as_grid().and_then(crate::codec::error_message)
    }
}

impl From<Grid> for Reply {
    fn from(grid: Grid) -> Self {
        Reply::Grid(grid)
    }
}

impl Default for Reply {
    /// The empty grid.
    fn default() -> Self {
        Reply::Grid(Grid::default())
    }
}

/// A grid of `rows` with `meta`: columns in first-seen order, `id` first when
/// present. A row that is an empty dict is a row of nulls.
pub fn make_grid(meta: Dict, rows: Vec<Dict>) -> Grid {
    let columns = column_names(&rows)
        .into_iter()
        .map(|name| libhaystack::val::Column {
            name: name.to_owned(),
            meta: None,
        })
        .collect();
    Grid {
        meta: (!meta.is_empty()).then_some(meta),
        columns,
        rows,
        ..Grid::default()
    }
}

/// The column names [`make_grid`] gives `rows`: first-seen order, `id`
/// first when a row has it or a row is empty (a row of nulls).
pub(crate) fn column_names<R: Borrow<Dict>>(rows: &[R]) -> Vec<&str> {
    column_names_of(rows.iter().map(Borrow::borrow))
}

/// [`column_names`] of the rows `rows` yields (walked twice).
pub(crate) fn column_names_of<'a, I>(rows: I) -> Vec<&'a str>
where
    I: Iterator<Item = &'a Dict> + Clone,
{
    let mut names: Vec<&str> = Vec::new();
    let with_id = rows
        .clone()
        .any(|row| row.is_empty() || row.contains_key("id"));
    if with_id {
        names.push("id");
    }
    let mut first_two = rows.clone();
    if let (Some(row), None) = (first_two.next(), first_two.next()) {
        // One row (a read by id, about): its keys are already distinct, so
        // no set is needed.
        names.extend(row.keys().map(String::as_str).filter(|name| *name != "id"));
        return names;
    }
    let mut seen: FxHashSet<&str> = FxHashSet::default();
    if with_id {
        seen.insert("id");
    }
    // Rows of one query carry a few tag sets over and over: a row whose
    // tags are a known row's (same hash, then compared) adds no column.
    let mut shapes: FxHashMap<u64, &Dict> = FxHashMap::default();
    for row in rows {
        let mut hasher = FxHasher::default();
        for name in row.keys() {
            name.hash(&mut hasher);
        }
        match shapes.entry(hasher.finish()) {
            Entry::Occupied(known) => {
                let known = known.get();
                if known.len() == row.len() && known.keys().eq(row.keys()) {
                    continue;
                }
            }
            Entry::Vacant(vacant) => {
                vacant.insert(row);
            }
        }
        for name in row.keys() {
            if seen.insert(name.as_str()) {
                names.push(name.as_str());
            }
        }
    }
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::codec::{Format, encode_grid, encode_reply};
    use libhaystack::val::Value;

    fn entity(id: Option<&str>, tags: &[(&str, Value)]) -> Arc<Dict> {
        let mut dict = Dict::new();
        if let Some(id) = id {
            dict.insert("id".into(), Value::make_ref_with_dis(id, "Dis \"quoted\""));
        }
        for (name, value) in tags {
            dict.insert((*name).into(), value.clone());
        }
        Arc::new(dict)
    }

    /// Shared rows are written exactly as the grid `into_grid` builds.
    #[test]
    fn shared_rows_encode_as_their_grid() {
        let point = entity(
            Some("p1"),
            &[
                ("point", Value::make_marker()),
                ("curVal", Value::make_number(72.5)),
                ("dis", Value::make_str("Point\t1")),
            ],
        );
        let other = entity(
            Some("p2"),
            &[("zeta", Value::make_bool(true)), ("alpha", Value::Null)],
        );
        let without_id = entity(None, &[("only", Value::make_str("x"))]);
        let null_row = Arc::new(Dict::new());
        let sets = [
            vec![],
            vec![point.clone()],
            vec![null_row.clone()],
            vec![point.clone(), point.clone(), null_row, other.clone()],
            vec![without_id.clone(), other.clone()],
            vec![without_id],
            vec![other],
            vec![entity(Some("p3"), &[("id", Value::Null)])],
        ];
        for rows in sets {
            let mut encoded = EncodedRows::default();
            for row in &rows {
                encoded.push(row.clone(), Arc::from(crate::codec::json_row(row)));
            }
            let encoded = Reply::Encoded(encoded);
            let reply = Reply::Rows(rows);
            let grid = reply.clone().into_grid();
            // The encoded rows are the same grid: each row's tags may come
            // in the row's own order rather than the columns'.
            assert_eq!(encoded.clone().into_grid(), grid);
            assert_eq!(encoded.row_count(), grid.rows.len());
            let text = encode_reply(&encoded, Format::Json).unwrap();
            assert_eq!(
                crate::codec::decode_grid(text.as_bytes(), Format::Json).unwrap(),
                crate::codec::decode_grid(
                    encode_grid(&grid, Format::Json).unwrap().as_bytes(),
                    Format::Json
                )
                .unwrap()
            );
            assert_eq!(
                encode_reply(&encoded, Format::Zinc).unwrap(),
                encode_grid(&grid, Format::Zinc).unwrap()
            );
            if grid.rows.len() <= 1 {
                assert_eq!(text, encode_grid(&grid, Format::Json).unwrap());
            }
            let envelope = crate::ws::encode_response(&crate::ws::WsResponse {
                id: Some(7.into()),
                grid: encoded,
                ch: Some("c".into()),
            });
            assert!(envelope.contains(&text), "{envelope}");
            assert_eq!(reply.row_count(), grid.rows.len());
            for format in [Format::Json, Format::Zinc] {
                assert_eq!(
                    encode_reply(&reply, format).unwrap(),
                    encode_grid(&grid, format).unwrap(),
                    "{format:?}"
                );
            }
            let response = |grid: Reply| crate::ws::WsResponse {
                id: Some(7.into()),
                grid,
                ch: Some("c".into()),
            };
            assert_eq!(
                crate::ws::encode_response(&response(reply)),
                crate::ws::encode_response(&response(Reply::Grid(grid)))
            );
        }
    }

    #[test]
    fn encoded_columns_come_from_one_row_of_each_shape() {
        let a = entity(Some("a1"), &[("x", Value::make_marker())]);
        let b = entity(
            Some("b1"),
            &[("y", Value::make_marker()), ("z", Value::make_marker())],
        );
        let c = entity(None, &[("w", Value::make_marker())]);
        let mut rows = EncodedRows::default();
        for (row, shape) in [(&a, 0), (&b, 1), (&a, 0), (&c, UNKNOWN_SHAPE), (&b, 1)] {
            rows.push_shaped(row.clone(), Arc::from(crate::codec::json_row(row)), shape);
        }
        let plain = [a.clone(), b.clone(), a, c, b];
        assert_eq!(rows.column_names(), column_names(&plain));
        assert_eq!(rows.column_names(), ["id", "x", "y", "z", "w"]);
    }

    #[test]
    fn only_grids_carry_meta_and_errors() {
        let error = Reply::from(crate::codec::error_grid("boom"));
        assert_eq!(error.error_message().as_deref(), Some("boom"));
        assert!(error.meta().is_some());
        let rows = Reply::Rows(vec![Arc::new(Dict::new())]);
        assert_eq!(rows.error_message(), None);
        assert_eq!(rows.meta(), None);
        assert_eq!(Reply::default().into_grid(), Grid::default());
    }

    #[test]
    fn make_grid_columns_in_first_seen_order_id_first() {
        let rows = vec![
            row(&["b", "a"]),
            row(&["a", "b"]),
            row(&["a", "b"]),
            row(&["c", "id"]),
            row(&["a", "b"]),
            row(&["d"]),
        ];
        let grid = make_grid(Dict::new(), rows);
        let names: Vec<&str> = grid.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "a", "b", "c", "d"]);
        assert_eq!(grid.rows.len(), 6);
        let grid = make_grid(Dict::new(), vec![row(&["x"]), Dict::new()]);
        let names: Vec<&str> = grid.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "x"]);
        // Tag sets that come back are recognised; a new one still adds its tags.
        let rows = [
            &["a", "b"][..],
            &["c"],
            &["a", "b"],
            &["a", "b", "e"],
            &["c"],
        ];
        let grid = make_grid(Dict::new(), rows.iter().map(|tags| row(tags)).collect());
        let names: Vec<&str> = grid.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "e"]);
    }

    fn row(tags: &[&str]) -> Dict {
        let mut row = Dict::new();
        for tag in tags {
            row.insert((*tag).into(), Value::make_marker());
        }
        row
    }
}
