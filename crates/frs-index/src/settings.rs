//! Typed settings of a face set's index: feature precision and the approximate (graph) index.

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

/// Settings of the HNSW graph index a large face set is searched with.
///
/// The defaults were chosen by `cargo bench -p frs-index --bench ann` on synthetic SFace-like
/// features (see `docs/search-at-scale.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnSettings {
    /// A search considers the graph only when at least this many faces are candidates (the whole
    /// set, or those passing the filter); below it, search is the exact scan. 0 always uses the graph.
    pub exact_below: usize,
    /// A filtered search uses the graph only when the filter matches at least this fraction of the
    /// set, in thousandths (50 = 5 %); below it the exact scan of the matching faces is faster and exact.
    pub graph_min_permille: u32,
    /// Links per node on the upper layers (the base layer has `2·m`); 2..=127.
    pub m: usize,
    /// Candidate list length while inserting (graph quality vs insert time).
    pub ef_construction: usize,
    /// Candidate list length while searching (recall vs latency); a search uses at least `top_n`.
    pub ef_search: usize,
}

impl Default for AnnSettings {
    fn default() -> Self {
        AnnSettings { exact_below: 100_000, graph_min_permille: 50, m: 16, ef_construction: 100, ef_search: 96 }
    }
}

/// Settings of one face set's index. [`IndexSettings::default`] is what
/// [`crate::FaceSetIndex::new`] uses: `f32` features and exact search only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexSettings {
    /// How features are held in memory.
    pub precision: Precision,
    /// The graph index; `None` searches every set exactly.
    pub ann: Option<AnnSettings>,
}

impl IndexSettings {
    /// `f32` features and the default graph settings: exact search up to
    /// [`AnnSettings::exact_below`] faces, the graph above.
    pub fn with_ann() -> IndexSettings {
        IndexSettings { precision: Precision::F32, ann: Some(AnnSettings::default()) }
    }
}
