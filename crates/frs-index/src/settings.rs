//! Typed settings of a face set's index: feature precision and the approximate search.

/// How features are held in memory (see `docs/search-at-scale.md` for the measured score errors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// 4 bytes per component, as given. Scores are the exact `f32` dot products.
    #[default]
    F32,
    /// 2 bytes per component (IEEE binary16, nearest). A score is the exact `f32` dot product of the
    /// query and the stored half-precision feature; it differs from the `f32` cosine by at most
    /// ~2⁻¹¹ · Σ|qᵢ·xᵢ| ≤ 4.9·10⁻⁴ for unit vectors (measured: ~3·10⁻⁵ typical, ~1.5·10⁻⁴ worst).
    F16,
    /// 1 byte per component plus a 4-byte scale per face (symmetric, per-face max-abs scaling). A
    /// score is `scale · (query · codes)`; it differs from the `f32` cosine by ~10⁻³.
    I8,
}

impl Precision {
    /// Bytes per stored feature of `dim` components.
    pub fn bytes_per_feature(self, dim: usize) -> usize {
        match self {
            Precision::F32 => 4 * dim,
            Precision::F16 => 2 * dim,
            Precision::I8 => dim + 4,
        }
    }

    /// `"f32"`, `"f16"` or `"i8"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::I8 => "i8",
        }
    }
}

/// Settings of the approximate search of large face sets: sign codes
/// (`docs/search-at-scale.md`) estimate every face's cosine, and only the best estimates are scored.
///
/// The defaults were chosen by `cargo bench -p frs-index --bench ann` on features fitted to real
/// SFace features (see `docs/search-at-scale.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnSettings {
    /// The set makes its sign codes when it first holds this many faces, and searches use them
    /// while it holds at least this many; a smaller set is searched exactly.
    pub exact_below: usize,
    /// A filtered search uses the codes only when the filter matches at least this share of the
    /// set, in thousandths; below it the exact scan of the matching faces is faster (and exact).
    pub min_permille: u32,
    /// Faces scored per search, in thousandths of the candidate faces (recall vs latency)...
    pub rerank_permille: u32,
    /// ...and at least this many.
    pub min_rerank: usize,
}

impl AnnSettings {
    /// How many faces a search over `candidates` faces scores on their features.
    pub fn rerank(&self, candidates: usize) -> usize {
        (candidates as u64 * u64::from(self.rerank_permille)).div_ceil(1000).max(self.min_rerank as u64) as usize
    }
}

impl Default for AnnSettings {
    fn default() -> Self {
        AnnSettings { exact_below: 100_000, min_permille: 30, rerank_permille: 10, min_rerank: 5_000 }
    }
}

/// Settings of one face set's index. [`IndexSettings::default`] is what
/// [`crate::FaceSetIndex::new`] uses: `f32` features and exact search only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexSettings {
    /// How features are held in memory.
    pub precision: Precision,
    /// The approximate search of large sets; `None` searches every set exactly.
    pub ann: Option<AnnSettings>,
}

impl IndexSettings {
    /// `f32` features and the default approximate search: exact up to
    /// [`AnnSettings::exact_below`] faces, sign codes above.
    pub fn with_ann() -> IndexSettings {
        IndexSettings { precision: Precision::F32, ann: Some(AnnSettings::default()) }
    }
}
