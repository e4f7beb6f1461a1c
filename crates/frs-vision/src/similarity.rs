//! The similarity FRS returns: a score in [0, 1], monotonic in the cosine of two features,
//! calibrated on impostor pairs so that a score threshold means a known false-accept rate.
//!
//! The mapping is piecewise linear through fixed knots. The knots' cosines are the thresholds
//! measured by `frs calibrate ../shared/data/lfw` (all different-person pairs of LFW folds 1–5);
//! see `docs/similarity.md` for the measurement and the table of operating points.

use crate::Feature;

/// `(cosine, score)` knots, strictly increasing in both coordinates.
const KNOTS: [(f32, f32); 6] = [(-1.0, 0.0), (0.30, 0.80), (0.37, 0.88), (0.42, 0.93), (0.47, 0.96), (1.0, 1.0)];

/// `(false-accept rate, score)`: the score threshold giving at most that FAR on the calibration set.
pub const OPERATING_POINTS: [(f64, f32); 4] = [(1e-2, 0.80), (1e-3, 0.88), (1e-4, 0.93), (1e-5, 0.96)];

/// Cosine similarity of two L2-normalised features.
pub fn cosine(a: &Feature, b: &Feature) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The calibrated score of a cosine similarity.
pub fn score_of_cosine(cosine: f32) -> f32 {
    let c = cosine.clamp(-1.0, 1.0);
    for pair in KNOTS.windows(2) {
        let ((c0, s0), (c1, s1)) = (pair[0], pair[1]);
        if c <= c1 {
            return s0 + (s1 - s0) * (c - c0) / (c1 - c0);
        }
    }
    1.0
}

/// The smallest cosine whose score is at least `score` (the inverse of [`score_of_cosine`]), for
/// turning a score threshold into a cosine bound. Scores ≤ 0 give -1, scores ≥ 1 give 1.
pub fn cosine_of_score(score: f32) -> f32 {
    let s = score.clamp(0.0, 1.0);
    for pair in KNOTS.windows(2) {
        let ((c0, s0), (c1, s1)) = (pair[0], pair[1]);
        if s <= s1 {
            return c0 + (c1 - c0) * (s - s0) / (s1 - s0);
        }
    }
    1.0
}

/// The calibrated similarity of two features, in [0, 1].
pub fn similarity(a: &Feature, b: &Feature) -> f32 {
    score_of_cosine(cosine(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_is_monotonic_bounded_and_hits_the_knots() {
        let mut previous = -1.0;
        for i in 0..=2000 {
            let s = score_of_cosine(-1.0 + i as f32 / 1000.0);
            assert!((0.0..=1.0).contains(&s) && s > previous, "at step {i}");
            previous = s;
        }
        for (c, s) in KNOTS {
            assert!((score_of_cosine(c) - s).abs() < 1e-6);
        }
        assert_eq!(score_of_cosine(3.0), 1.0);
        assert_eq!(score_of_cosine(-3.0), 0.0);
    }

    #[test]
    fn cosine_of_score_inverts_the_mapping() {
        for i in 0..=1000 {
            let score = i as f32 / 1000.0;
            let cosine = cosine_of_score(score);
            assert!((score_of_cosine(cosine) - score).abs() < 1e-5, "score {score}");
        }
        assert_eq!(cosine_of_score(0.0), -1.0);
        assert_eq!(cosine_of_score(1.0), 1.0);
    }

    #[test]
    fn operating_points_are_knots() {
        for (_, score) in OPERATING_POINTS {
            assert!(KNOTS.iter().any(|&(_, s)| s == score));
        }
    }
}
