//! frs use-cases, independent of any transport: the HTTP server and the CLI call the same methods.
//! [`FaceService`] detects and compares; [`FaceLibrary`] keeps face sets and searches them.

mod access;
mod attributes;
mod audit;
mod credentials;
mod engine;
mod error;
mod face;
mod fetch;
mod input;
mod library;
mod observer;
mod quota;

pub use access::{Action, Caller, Policy};
pub use attributes::{Attribute, AttributeSet};
pub use audit::{AuditFilter, AuditLog, AuditRecord, NO_ACCESS_KEY};
pub use credentials::{
    ACCESS_KEY_LEN, Clock, CredentialInfo, Credentials, CredentialsConfig, IssuedToken, MAX_DESCRIPTION_LEN, MasterKey,
    NewCredential, SECRET_KEY_LEN, SigningKey, format_rfc3339, token_access_key,
};
pub use engine::{Engine, EngineConfig};
pub use error::ServiceError;
pub use face::{
    BoundingBox, CompareFace, CompareRequest, CompareResponse, DetectAttributes, DetectFace, DetectRequest,
    DetectResponse, FaceService, Landmark, LandmarkPoint,
};
pub use fetch::{FetchPolicy, FetchPolicyError, ImageFetcher};
pub use input::{ImageInput, MAX_IMAGE_BYTES};
pub use library::{
    AddFacesRequest, CAPACITY_STEP, CreateFaceSetRequest, DeleteFaceSetResponse, DeleteFaces, FaceCountResponse,
    FaceLibrary, FaceSetFace, FaceSetInfo, FaceSetResponse, FaceSetSize, FaceSetsResponse, FacesQuery, FacesResponse,
    LibraryLimits, MAX_FACES_PER_IMAGE, MAX_LISTED_FACES, MAX_TOP_N, MultiFaceSearchResponse, Probe, ProbeFaceMatches,
    SearchFace, SearchRequest, SearchResponse, UpdateFaceRequest,
};
pub use library::{FeaturePrecision, IndexConfig, IndexStatus};
pub use observer::{NoObserver, Observer, Stage};
pub use quota::{CallCounts, Permit, ProjectQuota, QuotaConfig, Quotas, USAGE_FILE, Usage, action_named};
