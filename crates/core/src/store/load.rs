//! Loading entities from Haystack JSON (v4) and Zinc grid files.

use std::io::Cursor;
use std::path::Path;

use libhaystack::encoding::zinc::decode::parse_grid;
use libhaystack::encoding::zinc::decode::parser::Parser;
use libhaystack::val::{Dict, Grid};

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
    /// Insert (or replace) every row of `grid` as an entity; returns how many.
    /// Null cells are dropped. Every row needs an `id` Ref.
    pub fn load_grid(&self, grid: &Grid) -> Result<usize, OpError> {
        let entities = grid
            .rows
            .iter()
            .map(|row| {
                let mut entity: Dict = row.clone();
                entity.retain(|_, value| !value.is_null());
                entity
            })
            .collect();
        self.update_entities(entities)
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
