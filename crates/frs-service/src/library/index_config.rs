//! `[index]`: how face sets are held in memory, and when searches of large sets use sign codes
//! (`docs/search-at-scale.md`).

use frs_index::{AnnSettings, IndexSettings, Precision};

/// How features are held in memory (`[index] precision`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeaturePrecision {
    /// 4 bytes per component: scores are the exact cosines.
    #[default]
    F32,
    /// 2 bytes per component; scores within ~1.5e-4 of the `f32` cosine.
    F16,
    /// 1 byte per component and a scale per face; scores within ~1e-3.
    I8,
}

impl From<FeaturePrecision> for Precision {
    fn from(p: FeaturePrecision) -> Precision {
        match p {
            FeaturePrecision::F32 => Precision::F32,
            FeaturePrecision::F16 => Precision::F16,
            FeaturePrecision::I8 => Precision::I8,
        }
    }
}

/// `[index]`: the feature precision of every set, and the sign codes of large sets.
///
/// A set makes its sign codes (1 bit per component and two half floats per face, ~20 B) in memory
/// once it holds `exact_below` faces: at load, or in the add that brings it there (that add holds
/// the set's index for about 0.1 s per 100,000 faces). While the set holds at least `exact_below`
/// faces, a search (with a filter: one matching at least `min_permille` of them) estimates every
/// candidate's cosine from the codes and scores only the best estimates on the features: scores
/// stay exact, which faces are found is approximate. Nothing is saved: the codes are made again
/// from the stored features at each start.
///
/// With FRS's limits (`[library] max_face_set_capacity` 100,000) only a full set reaches the
/// default `exact_below`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Feature precision of every set in memory (`f32`, `f16`, `i8`).
    pub precision: FeaturePrecision,
    /// Sets make their codes at this many faces and use them while they hold this many; smaller
    /// sets are searched exactly.
    pub exact_below: usize,
    /// A filter matching less than this share of the set (‰) is answered by an exact scan of its
    /// matches.
    pub min_permille: u32,
    /// Faces scored on their features per code search, in thousandths of the candidates...
    pub rerank_permille: u32,
    /// ...and at least this many (never fewer than `top_n`).
    pub min_rerank: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        let ann = AnnSettings::default();
        IndexConfig {
            precision: FeaturePrecision::F32,
            exact_below: ann.exact_below,
            min_permille: ann.min_permille,
            rerank_permille: ann.rerank_permille,
            min_rerank: ann.min_rerank,
        }
    }
}

impl IndexConfig {
    /// The index settings of every set.
    pub fn settings(&self) -> IndexSettings {
        let ann = AnnSettings {
            exact_below: self.exact_below,
            min_permille: self.min_permille,
            rerank_permille: self.rerank_permille,
            min_rerank: self.min_rerank,
        };
        IndexSettings { precision: self.precision.into(), ann: Some(ann) }
    }
}

/// How one face set's in-memory index stands: for operators' diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStatus {
    /// Faces in the set.
    pub faces: usize,
    /// `"f32"`, `"f16"` or `"i8"`.
    pub precision: &'static str,
    /// Whether the set has its sign codes.
    pub codes: bool,
}
