//! frs use-cases, independent of any transport: the HTTP server and the CLI call the same methods.

mod attributes;
mod engine;
mod error;
mod face;
mod input;

pub use attributes::{Attribute, AttributeSet};
pub use engine::{Engine, EngineConfig};
pub use error::ServiceError;
pub use face::{
    BoundingBox, CompareFace, CompareRequest, CompareResponse, DetectAttributes, DetectFace, DetectRequest,
    DetectResponse, FaceService, Landmark, LandmarkPoint,
};
pub use input::{ImageInput, MAX_IMAGE_BYTES};
