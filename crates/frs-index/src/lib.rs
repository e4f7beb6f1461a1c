//! The in-memory part of the face library: typed custom-field schemas and values ([`Schema`],
//! [`FieldValues`]), the FRS filter language ([`Filter`]), search's sort keys ([`parse_sort`]), and one
//! face set's exact vector search ([`FaceSetIndex`]). Persistence is `frs-store`'s; the caller keeps the
//! two in step.

mod bits;
mod columns;
mod face_id;
mod filter;
mod index;
mod kernel;
mod schema;
mod sort;

pub use face_id::FaceId;
pub use filter::{Filter, FilterError, MAX_FILTER_DEPTH, MAX_FILTER_LEN};
pub use index::{FaceEntry, FaceSetIndex, HeapUsage, Hit, IndexError, SearchParams};
pub use kernel::Kernel;
pub use schema::{
    FieldType, FieldValue, FieldValues, MAX_FIELD_NAME_LEN, MAX_FIELDS, MAX_STRING_VALUE_LEN, RESERVED_NAMES, Schema,
    SchemaError, valid_string_value,
};
pub use sort::{SortError, SortKey, parse_sort};
