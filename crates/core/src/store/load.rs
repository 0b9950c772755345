//! Loading entities from Haystack JSON (v4) and Zinc grid files.

use crate::observe::targets;
use std::collections::HashSet;
use std::io::Cursor;
use std::path::Path;

use libhaystack::encoding::zinc::decode::parse_grid;
use libhaystack::encoding::zinc::decode::parser::Parser;
use libhaystack::val::{Dict, Grid, Value};

use super::MemoryStore;
use crate::observe::ErrorKind;
use crate::ops::OpError;

/// Loading a grid file into a [`MemoryStore`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a Haystack JSON grid.
    #[error("invalid Haystack JSON grid: {0}")]
    Json(#[from] serde_json::Error),
    /// The text is not a Zinc grid.
    #[error("invalid Zinc grid: {0}")]
    Zinc(std::io::Error),
    /// A row is not a valid entity (no `id` Ref).
    #[error("invalid entity: {0}")]
    Entity(#[from] OpError),
}

impl LoadError {
    /// The stable error kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LoadError::Io { .. } => ErrorKind::NotFound,
            LoadError::Json(_) | LoadError::Zinc(_) | LoadError::Entity(_) => ErrorKind::BadRequest,
        }
    }

    /// The stable snake_case name of this error.
    pub fn as_str(&self) -> &'static str {
        match self {
            LoadError::Io { .. } => "io",
            LoadError::Json(_) => "json",
            LoadError::Zinc(_) => "zinc",
            LoadError::Entity(_) => "entity",
        }
    }
}

impl MemoryStore {
    /// Insert (or replace) every row of `grid` as an entity; returns how many
    /// distinct entities it holds. Null cells are dropped. Every row needs an
    /// `id` Ref. When rows repeat an id the last one wins, and the repeated
    /// ids are named in one WARN line (target `hs::store`): a data file with
    /// duplicates is almost always a mistake.
    pub fn load_grid(&self, grid: &Grid) -> Result<usize, OpError> {
        let entities: Vec<Dict> = grid
            .rows
            .iter()
            .map(|row| {
                let mut entity: Dict = row.clone();
                entity.retain(|_, value| !value.is_null());
                entity
            })
            .collect();
        let mut seen = HashSet::with_capacity(entities.len());
        let mut repeated: Vec<String> = Vec::new();
        for entity in &entities {
            let Some(Value::Ref(id)) = entity.get("id") else {
                continue;
            };
            let name = format!("@{}", id.value());
            if !seen.insert(id.value()) && !repeated.contains(&name) {
                repeated.push(name);
            }
        }
        if !repeated.is_empty() {
            log::warn!(
                target: targets::STORE,
                "{} id(s) appear in more than one row; the last row of each is kept: {}",
                repeated.len(),
                repeated.join(", ")
            );
        }
        let distinct = seen.len();
        self.update_entities(entities)?;
        Ok(distinct)
    }

    /// Load a Haystack JSON v4 grid (`{"_kind":"grid",...}`) from text.
    pub fn load_json_str(&self, json: &str) -> Result<usize, LoadError> {
        let grid: Grid = serde_json::from_str(json)?;
        Ok(self.load_grid(&grid)?)
    }

    /// Load a Haystack JSON v4 grid file.
    pub fn load_json_file(&self, path: impl AsRef<Path>) -> Result<usize, LoadError> {
        self.load_json_str(&read(path.as_ref())?)
    }

    /// Load a Zinc grid from text.
    pub fn load_zinc_str(&self, zinc: &str) -> Result<usize, LoadError> {
        let mut input = Cursor::new(zinc.as_bytes());
        let mut parser = Parser::make(&mut input).map_err(LoadError::Zinc)?;
        let grid = parse_grid(&mut parser).map_err(LoadError::Zinc)?;
        Ok(self.load_grid(&grid)?)
    }

    /// Load a Zinc grid file.
    pub fn load_zinc_file(&self, path: impl AsRef<Path>) -> Result<usize, LoadError> {
        self.load_zinc_str(&read(path.as_ref())?)
    }
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_ids_keep_the_last_row_and_count_once() {
        let store = MemoryStore::new();
        let zinc = "ver:\"3.0\"\nid,dis\n@a,\"first\"\n@b,\"B\"\n@a,\"second\"\n";
        assert_eq!(store.load_zinc_str(zinc).unwrap(), 2);
        assert_eq!(store.len(), 2);
        let a = store.entity("a").unwrap();
        assert_eq!(a.get("dis"), Some(&Value::from("second")));
    }
}
