//! The in-memory part of the face library: typed custom-field schemas and values ([`Schema`],
//! [`FieldValues`]), the FRS filter language ([`Filter`]), search's sort keys ([`parse_sort`]), and one
//! face set's vector search ([`FaceSetIndex`]): exact, or for large sets a scan of 1-bit sign codes
//! that picks the faces to score ([`AnnSettings`]), over `f32`, `f16` or `i8` features
//! ([`Precision`]). Faces are persisted by `frs-store`; the caller keeps the two in step. Nothing
//! here has a file: the codes are made again from the features when a set is loaded.

mod bits;
mod codes;
mod columns;
mod face_id;
mod filter;
mod index;
mod kernel;
mod schema;
mod settings;
mod sort;
mod vectors;

pub use face_id::FaceId;
pub use filter::{Filter, FilterError, MAX_FILTER_DEPTH, MAX_FILTER_LEN};
pub use index::{FaceEntry, FaceSetIndex, HeapUsage, Hit, IndexError, SearchParams, SearchPath};
pub use kernel::Kernel;
pub use schema::{
    FieldType, FieldValue, FieldValues, MAX_FIELD_NAME_LEN, MAX_FIELDS, MAX_STRING_VALUE_LEN, RESERVED_NAMES, Schema,
    SchemaError, valid_string_value,
};
pub use settings::{AnnSettings, IndexSettings, Precision};
pub use sort::{SortError, SortKey, parse_sort};
