//! The in-memory part of the face library: typed custom-field schemas and values ([`Schema`],
//! [`FieldValues`]), the FRS filter language ([`Filter`]), search's sort keys ([`parse_sort`]), and one
//! face set's vector search ([`FaceSetIndex`]): exact, or for large sets an HNSW graph
//! ([`AnnSettings`]) over `f32`, `f16` or `i8` features ([`Precision`]). Faces are persisted by
//! `frs-store`; the caller keeps the two in step. Only the graph has a file of its own
//! ([`FaceSetIndex::save_graph`]), so a large set need not be re-indexed at every start.

mod bits;
mod columns;
mod face_id;
mod filter;
mod hnsw;
mod index;
mod kernel;
mod schema;
mod settings;
mod sort;
mod vectors;

pub use face_id::FaceId;
pub use filter::{Filter, FilterError, MAX_FILTER_DEPTH, MAX_FILTER_LEN};
pub use hnsw::{GRAPH_FILE_VERSION, GraphFileError};
pub use index::{FaceEntry, FaceSetIndex, GraphLoad, HeapUsage, Hit, IndexError, SearchParams, SearchPath};
pub use kernel::Kernel;
pub use schema::{
    FieldType, FieldValue, FieldValues, MAX_FIELD_NAME_LEN, MAX_FIELDS, MAX_STRING_VALUE_LEN, RESERVED_NAMES, Schema,
    SchemaError, valid_string_value,
};
pub use settings::{AnnSettings, IndexSettings, Precision};
pub use sort::{SortError, SortKey, parse_sort};
