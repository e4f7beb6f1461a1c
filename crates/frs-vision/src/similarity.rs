//! The calibrated similarity FRS returns.
use crate::Feature;

/// Cosine similarity of two L2-normalised features.
pub fn cosine(a: &Feature, b: &Feature) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Calibrated similarity in [0, 1] (TODO: calibration).
pub fn similarity(a: &Feature, b: &Feature) -> f32 {
    ((cosine(a, b) + 1.0) / 2.0).clamp(0.0, 1.0)
}
