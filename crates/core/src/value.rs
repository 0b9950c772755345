//! Haystack values and grids, re-exported from [libhaystack] so that users
//! of hs need no direct libhaystack dependency.
//!
//! ```
//! use hs_core::value::{dict, get_unit, Dict, Grid, Marker, Number, Value};
//!
//! let row = dict! {
//!     "id" => Value::make_ref_with_dis("demo-ahu1-dat", "AHU-1 DAT"),
//!     "point" => Marker,
//!     "curVal" => Number::make_with_unit(55.5, get_unit("°F").unwrap()),
//! };
//! let grid = Grid::make_from_dicts(vec![row]);
//! assert_eq!(grid.len(), 1);
//! ```
//!
//! Wire encodings live in [`crate::codec`]; build error grids with
//! [`crate::codec::error_grid`].

pub use libhaystack::dict;
pub use libhaystack::units::{Unit, get_unit, get_unit_or_default};
pub use libhaystack::val::{
    Bool, Column, Coord, Date, DateTime, Dict, Grid, HaystackDict, List, Marker, Na, Number, Ref,
    Remove, Str, Symbol, Time, Uri, Value, XStr,
};
