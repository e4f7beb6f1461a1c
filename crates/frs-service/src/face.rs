//! Face detection and 1:1 comparison use-cases.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use crate::{Action, AttributeSet, Caller, Engine, ImageFetcher, ImageInput, ServiceError, attributes::Attribute};

/// Face box in pixels of the (EXIF-oriented) image, as FRS's `BoundingBox`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct BoundingBox {
    pub top_left_x: i32,
    pub top_left_y: i32,
    pub width: i32,
    pub height: i32,
}

/// One landmark point in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct LandmarkPoint {
    pub x: f32,
    pub y: f32,
}

/// The legacy FRS `Landmark` structure, filled from the detector's five points
/// (returned when attribute code `3` is requested): `eyes_contour` = [left eye, right eye]
/// (as seen in the image), `nose_contour` = [nose tip], `mouth_contour` = [left corner, right corner];
/// frs computes no eyebrow or face contour, so those lists are empty.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Landmark {
    pub eyes_contour: Vec<LandmarkPoint>,
    pub nose_contour: Vec<LandmarkPoint>,
    pub mouth_contour: Vec<LandmarkPoint>,
    pub eyebrow_contour: Vec<LandmarkPoint>,
    pub face_contour: Vec<LandmarkPoint>,
}

/// The attributes frs computes. Requested codes that frs does not compute are accepted and omitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct DetectAttributes {}

/// One detected face.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DetectFace {
    pub bounding_box: BoundingBox,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<DetectAttributes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landmark: Option<Landmark>,
}

/// Input of [`FaceService::detect`].
#[derive(Debug)]
pub struct DetectRequest {
    pub image: ImageInput,
    /// The raw `attributes` parameter (comma-separated codes), if given.
    pub attributes: Option<String>,
}

/// Output of [`FaceService::detect`]: every face, largest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DetectResponse {
    pub faces: Vec<DetectFace>,
}

/// Input of [`FaceService::compare`].
#[derive(Debug)]
pub struct CompareRequest {
    pub image1: ImageInput,
    pub image2: ImageInput,
}

/// The face of one image that a comparison used.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CompareFace {
    pub bounding_box: BoundingBox,
}

/// Output of [`FaceService::compare`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CompareResponse {
    pub image1_face: CompareFace,
    pub image2_face: CompareFace,
    /// Calibrated similarity in [0, 1]; see `docs/similarity.md`.
    pub similarity: f64,
}

/// The face use-cases. Cheap to clone; all clones share one inference engine.
#[derive(Clone)]
pub struct FaceService {
    engine: Arc<Engine>,
    fetcher: ImageFetcher,
}

impl FaceService {
    /// Wraps a started engine. URL inputs are refused until [`FaceService::with_fetcher`].
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine, fetcher: ImageFetcher::default() }
    }

    /// The same service fetching `*_url` inputs with `fetcher`.
    pub fn with_fetcher(mut self, fetcher: ImageFetcher) -> Self {
        self.fetcher = fetcher;
        self
    }

    /// True once the models are loaded and warmed up.
    pub fn ready(&self) -> bool {
        self.engine.ready()
    }

    /// Detects every face (of at least the minimum face size) in one image.
    pub async fn detect(
        &self,
        caller: &Caller,
        project_id: &str,
        req: DetectRequest,
    ) -> Result<DetectResponse, ServiceError> {
        caller.authorize(project_id, Action::DetectFace)?;
        let attributes = AttributeSet::parse(req.attributes.as_deref())?;
        let bytes = req.image.into_bytes("image", &self.fetcher).await?;
        let faces = self.engine.detect(bytes).await?;
        if faces.is_empty() {
            return Err(ServiceError::NoFace);
        }
        let faces = faces
            .iter()
            .map(|face| DetectFace {
                bounding_box: face.bbox.into(),
                attributes: attributes.requested_any().then(DetectAttributes::default),
                landmark: attributes.contains(Attribute::Landmark).then(|| landmark_of(face)),
            })
            .collect();
        Ok(DetectResponse { faces })
    }

    /// Compares the largest face of each image.
    pub async fn compare(
        &self,
        caller: &Caller,
        project_id: &str,
        req: CompareRequest,
    ) -> Result<CompareResponse, ServiceError> {
        caller.authorize(project_id, Action::CompareFace)?;
        if std::mem::discriminant(&req.image1) != std::mem::discriminant(&req.image2) {
            return Err(ServiceError::InvalidParameter("image1 and image2 must use the same input type".into()));
        }
        let (image1, image2) = tokio::try_join!(
            req.image1.into_bytes("image1", &self.fetcher),
            req.image2.into_bytes("image2", &self.fetcher)
        )?;
        let (face1, face2) =
            tokio::try_join!(self.engine.largest_face_feature(image1), self.engine.largest_face_feature(image2))?;
        let (face1, feature1) = face1.ok_or(ServiceError::NoFace)?;
        let (face2, feature2) = face2.ok_or(ServiceError::NoFace)?;
        Ok(CompareResponse {
            image1_face: CompareFace { bounding_box: face1.bbox.into() },
            image2_face: CompareFace { bounding_box: face2.bbox.into() },
            similarity: f64::from(frs_vision::similarity(&feature1, &feature2)),
        })
    }
}

fn landmark_of(face: &frs_vision::Face) -> Landmark {
    let p = |i: usize| LandmarkPoint { x: face.landmarks[i].x, y: face.landmarks[i].y };
    Landmark {
        eyes_contour: vec![p(0), p(1)],
        nose_contour: vec![p(2)],
        mouth_contour: vec![p(3), p(4)],
        eyebrow_contour: Vec::new(),
        face_contour: Vec::new(),
    }
}

impl From<frs_vision::BoundingBox> for BoundingBox {
    fn from(b: frs_vision::BoundingBox) -> Self {
        let x0 = b.x.round();
        let y0 = b.y.round();
        BoundingBox {
            top_left_x: x0 as i32,
            top_left_y: y0 as i32,
            width: ((b.x + b.width).round() - x0) as i32,
            height: ((b.y + b.height).round() - y0) as i32,
        }
    }
}
