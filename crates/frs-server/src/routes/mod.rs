//! Route handlers, one module per resource. Each handler parses, calls one `FaceService` or
//! `FaceLibrary` method and maps the result; errors go through [`crate::ApiError`].

pub mod compare;
pub mod detect;
pub mod face_sets;
pub mod faces;
pub mod health;
pub mod search;
pub mod tokens;
