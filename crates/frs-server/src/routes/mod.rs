//! Route handlers, one module per resource. Each handler parses, calls one `FaceService` method
//! and maps the result; errors go through [`crate::ApiError`].

pub mod compare;
pub mod detect;
pub mod health;
