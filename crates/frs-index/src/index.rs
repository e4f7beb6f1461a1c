//! One face set in memory: features, entries, filter columns, exact search over them, and for large
//! sets sign codes that pick the faces worth scoring.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::bits::Bits;
use crate::codes::SignCodes;
use crate::columns::{Column, Number, hash_scan, str_hash};
use crate::face_id::FaceId;
use crate::filter::{Filter, Node, Predicate, Target, Term};
use crate::kernel::Kernel;
use crate::schema::{FieldValue, FieldValues, Schema};
use crate::settings::{AnnSettings, IndexSettings};
use crate::sort::SortKey;
use crate::vectors::Vectors;

/// What the index keeps per face besides its feature.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceEntry {
    /// The face's id, unique in its set.
    pub face_id: FaceId,
    /// The caller's id of the image the face came from (not unique).
    pub external_image_id: Box<str>,
    /// Face box in the enrolled image: x, y, width, height.
    pub bbox: [i32; 4],
    /// Custom-field values by schema position.
    pub fields: FieldValues,
}

/// Parameters of [`FaceSetIndex::search`].
#[derive(Clone, Copy, Debug)]
pub struct SearchParams<'a> {
    /// How many faces to return at most; 0 returns none.
    pub top_n: usize,
    /// Faces with cosine < `min_cosine` are not returned; -1.0 or less (or NaN) means no threshold.
    pub min_cosine: f32,
    /// Only faces matching this filter (parsed against the index's schema) are considered.
    pub filter: Option<&'a Filter>,
    /// Orders the returned hits (see [`FaceSetIndex::search`]).
    pub sort: &'a [SortKey],
}

/// One search result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// The matching face.
    pub face_id: FaceId,
    /// Its cosine similarity to the query (the dot product of the two normalised features).
    pub cosine: f32,
}

/// Why an insert was refused; the index is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A face with this id is already in the set.
    #[error("face {0} is already in the face set")]
    DuplicateId(FaceId),
    /// The feature does not have the index's dimension.
    #[error("the feature has {got} dimensions, the face set {expected}")]
    WrongDimension {
        /// The index's dimension.
        expected: usize,
        /// The feature's length.
        got: usize,
    },
}

/// Heap bytes of an index by part (see [`FaceSetIndex::heap_usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapUsage {
    /// The feature matrix, capacity included.
    pub features: usize,
    /// The sign codes of a large set (0 without them).
    pub codes: usize,
    /// The entries array, each entry's `external_image_id` text, and the `external_image_id` hash column.
    pub entries: usize,
    /// The `FaceId` → slot map (estimated from its capacity).
    pub id_map: usize,
    /// Custom-field values held by the entries (their vectors and strings).
    pub field_values: usize,
    /// Filter columns of the custom fields.
    pub columns: usize,
}

impl HeapUsage {
    /// The sum of the parts.
    pub fn total(&self) -> usize {
        self.features + self.codes + self.entries + self.id_map + self.field_values + self.columns
    }
}

/// Codes fitted on fewer faces than this are made again when the set doubles (at most ~0.1 s of
/// the set's write lock); fitted on more, they are kept.
const REFIT_BELOW: usize = 65_536;

/// Rows added at least when the feature matrix and the other per-face arrays grow.
const MIN_GROWTH: usize = 256;

/// Grows `v` for `additional` more elements by 1/16 of its length (at least `min_chunk`) rather than
/// `Vec`'s doubling, so spare capacity stays under ~6 % (the feature matrix is the bulk of a set's
/// memory). Large buffers are reallocated by `mremap` on Linux, so the smaller steps cost little.
pub(crate) fn grow<T>(v: &mut Vec<T>, additional: usize, min_chunk: usize) {
    if v.capacity() - v.len() < additional {
        v.reserve_exact(additional.max(v.len() / 16).max(min_chunk));
    }
}

/// How a search was (or would be) answered: see [`FaceSetIndex::search_path`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchPath {
    /// Every candidate face scored: the exact answer.
    Exact,
    /// The sign codes estimate every candidate face; the best estimates are scored as exact search
    /// scores them.
    Codes,
}

/// The approximate part of an index with [`IndexSettings::ann`].
struct Ann {
    settings: AnnSettings,
    /// Made when the set first holds `settings.exact_below` faces, centred on their mean; made again
    /// each time a set fitted on fewer than [`REFIT_BELOW`] faces doubles; kept in step with the
    /// features in between.
    codes: Option<SignCodes>,
}

/// One face set in memory: features (L2-normalised, `dim` each) and entries, kept in step with the
/// store by the caller.
///
/// [`FaceSetIndex::new`] makes an exact-only index of `f32` features; [`FaceSetIndex::with_settings`]
/// can hold features as `f16`/`i8` ([`crate::Precision`]) and, for large sets, sign codes
/// ([`AnnSettings`]) that pick the faces a search scores (see [`FaceSetIndex::search`]).
///
/// Layout: one row-major feature matrix and a parallel `Vec<FaceEntry>`, indexed by slot;
/// a `HashMap<FaceId, u32>` from id to slot; a 32-bit hash column of `external_image_id`; one column
/// per custom field for filters and sorting. Removal swaps the last face into the freed slot, so slot
/// order is not insertion order (nothing observable depends on it: results are ordered by cosine and
/// face id). At most `u32::MAX` faces.
///
/// `insert` and `update` store the given `FieldValues` with one position per schema field (shorter
/// vectors are padded with `None`, longer ones cut). They should come from this schema's
/// [`Schema::parse_values`]: a value whose variant does not fit its field's type (say a string in an
/// integer field) is kept in the entry but never matches a filter term or sorts (an `Integer` in a
/// float/double field is taken as that number).
///
/// With sign codes, an insert also encodes the new face (one `dim`×`dim` rotation, microseconds) and
/// removal moves the last face's code with its row.
pub struct FaceSetIndex {
    schema: Schema,
    dim: usize,
    kernel: Kernel,
    vectors: Vectors,
    entries: Vec<FaceEntry>,
    slots: HashMap<FaceId, u32>,
    ext_hashes: Vec<u32>,
    columns: Vec<Column>,
    ann: Option<Ann>,
}

impl std::fmt::Debug for FaceSetIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceSetIndex")
            .field("schema", &self.schema)
            .field("dim", &self.dim)
            .field("len", &self.len())
            .field("kernel", &self.kernel)
            .field("precision", &self.vectors.precision())
            .field("codes", &self.ann.as_ref().map(|a| a.codes.is_some()))
            .finish_non_exhaustive()
    }
}

impl FaceSetIndex {
    /// An empty set of `dim`-dimensional `f32` features (`dim > 0`), searched exactly with
    /// [`Kernel::detect`]: [`FaceSetIndex::with_settings`] with [`IndexSettings::default`].
    pub fn new(schema: Schema, dim: usize) -> Self {
        FaceSetIndex::with_settings(schema, dim, IndexSettings::default())
    }

    /// An empty set with the given feature precision and, if `settings.ann` is set, sign codes made
    /// once it holds [`AnnSettings::exact_below`] faces.
    pub fn with_settings(schema: Schema, dim: usize, settings: IndexSettings) -> Self {
        assert!(dim > 0, "feature dimension must be positive");
        let columns = schema.fields().map(|(_, t)| Column::new(t)).collect();
        FaceSetIndex {
            schema,
            dim,
            kernel: Kernel::detect(),
            vectors: Vectors::new(settings.precision),
            entries: Vec::new(),
            slots: HashMap::new(),
            ext_hashes: Vec::new(),
            columns,
            ann: settings.ann.map(|settings| Ann { settings, codes: None }),
        }
    }

    /// The settings: precision, and the approximate search's as last set.
    pub fn settings(&self) -> IndexSettings {
        IndexSettings { precision: self.vectors.precision(), ann: self.ann.as_ref().map(|a| a.settings) }
    }

    /// Changes the approximate search's settings; makes the sign codes now if the set already holds
    /// the new `exact_below` faces. No effect on an index made without them.
    pub fn set_ann_settings(&mut self, settings: AnnSettings) {
        if let Some(ann) = &mut self.ann {
            ann.settings = settings;
        }
        self.make_codes_if_due();
    }

    /// Makes the sign codes of every face, centred on their mean, once the set holds
    /// `exact_below` faces (at least one), and again whenever it has doubled since codes fitted on
    /// fewer than [`REFIT_BELOW`] faces were made (a mean of a few faces centres the rest badly).
    fn make_codes_if_due(&mut self) {
        let len = self.entries.len();
        if let Some(ann) = &mut self.ann
            && match &ann.codes {
                None => len >= ann.settings.exact_below.max(1),
                Some(codes) => codes.fitted() < REFIT_BELOW && len >= 2 * codes.fitted(),
            }
        {
            let (vectors, dim) = (&self.vectors, self.dim);
            ann.codes = Some(SignCodes::build(dim, len, |slot| vectors.row(slot, dim), self.kernel));
        }
    }

    /// The custom-field schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of faces.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the set has no faces.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether the set has its sign codes (see [`FaceSetIndex::with_settings`]).
    pub fn has_codes(&self) -> bool {
        self.ann.as_ref().is_some_and(|a| a.codes.is_some())
    }

    /// The dot-product kernel search uses.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Uses `kernel` for search (benchmarks and tests compare kernels; [`Kernel::detect`] is the default).
    pub fn set_kernel(&mut self, kernel: Kernel) {
        self.kernel = kernel;
    }

    /// Adds a face. Err if its id is already present or `feature.len() != dim`; nothing changes on error.
    /// The feature should be L2-normalised (search returns dot products as cosines).
    pub fn insert(&mut self, mut entry: FaceEntry, feature: &[f32]) -> Result<(), IndexError> {
        if feature.len() != self.dim {
            return Err(IndexError::WrongDimension { expected: self.dim, got: feature.len() });
        }
        let slot = self.entries.len();
        let slot_u32 = u32::try_from(slot).expect("a face set holds at most u32::MAX faces");
        match self.slots.entry(entry.face_id) {
            std::collections::hash_map::Entry::Occupied(_) => return Err(IndexError::DuplicateId(entry.face_id)),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(slot_u32);
            }
        }
        normalise_fields(&mut entry.fields, self.schema.len());
        self.vectors.push(feature, MIN_GROWTH);
        for (column, value) in self.columns.iter_mut().zip(&entry.fields.0) {
            column.push(value.as_ref());
        }
        grow(&mut self.ext_hashes, 1, MIN_GROWTH);
        self.ext_hashes.push(str_hash(&entry.external_image_id));
        grow(&mut self.entries, 1, MIN_GROWTH);
        self.entries.push(entry);
        if let Some(codes) = self.ann.as_mut().and_then(|a| a.codes.as_mut()) {
            codes.push(&self.vectors.row(slot, self.dim), self.kernel, MIN_GROWTH);
        }
        self.make_codes_if_due();
        Ok(())
    }

    /// Removes a face in O(1) (the last face moves into its slot); false if absent.
    pub fn remove(&mut self, face_id: FaceId) -> bool {
        let Some(slot) = self.slots.remove(&face_id) else { return false };
        let slot = slot as usize;
        if let Some(codes) = self.ann.as_mut().and_then(|a| a.codes.as_mut()) {
            codes.swap_remove(slot);
        }
        let last = self.entries.len() - 1;
        self.vectors.swap_remove(slot, self.dim);
        self.entries.swap_remove(slot);
        self.ext_hashes.swap_remove(slot);
        for column in &mut self.columns {
            column.swap_remove(slot);
        }
        if slot != last {
            // `slot` fits in u32: it came out of the map.
            self.slots.insert(self.entries[slot].face_id, slot as u32);
        }
        self.shrink_if_sparse();
        true
    }

    /// The entry and feature of a face: the feature as given for [`crate::Precision::F32`] (borrowed), the
    /// stored `f16`/`i8` feature widened to `f32` otherwise.
    pub fn get(&self, face_id: FaceId) -> Option<(&FaceEntry, Cow<'_, [f32]>)> {
        let slot = *self.slots.get(&face_id)? as usize;
        Some((&self.entries[slot], self.vectors.row(slot, self.dim)))
    }

    /// Replaces `external_image_id` and/or the fields of one face (the whole `FieldValues`: merge with
    /// [`FieldValues::merged`] first for FRS's update semantics); false if absent.
    pub fn update(
        &mut self,
        face_id: FaceId,
        external_image_id: Option<Box<str>>,
        fields: Option<FieldValues>,
    ) -> bool {
        let Some(&slot) = self.slots.get(&face_id) else { return false };
        let slot = slot as usize;
        let entry = &mut self.entries[slot];
        if let Some(external_image_id) = external_image_id {
            self.ext_hashes[slot] = str_hash(&external_image_id);
            entry.external_image_id = external_image_id;
        }
        if let Some(mut fields) = fields {
            normalise_fields(&mut fields, self.schema.len());
            for (column, value) in self.columns.iter_mut().zip(&fields.0) {
                column.set(slot, value.as_ref());
            }
            entry.fields = fields;
        }
        true
    }

    /// Ids of every face the filter matches, in no particular order.
    pub fn select(&self, filter: &Filter) -> Vec<FaceId> {
        self.eval(&filter.root).ones_iter().map(|slot| self.entries[slot].face_id).collect()
    }

    /// Ids of every face with this `external_image_id`, in no particular order.
    pub fn with_external_image_id(&self, external_image_id: &str) -> Vec<FaceId> {
        let bits = self.external_image_id_bits(external_image_id);
        bits.ones_iter().map(|slot| self.entries[slot].face_id).collect()
    }

    /// How [`FaceSetIndex::search`] answers a query with this filter: [`SearchPath::Codes`] when the
    /// index has its sign codes, holds at least [`AnnSettings::exact_below`] faces, and the filter
    /// (if any) passes at least [`AnnSettings::min_permille`] of them; else exact. The count is taken by
    /// evaluating the filter on the columns (what search does first anyway).
    pub fn search_path(&self, filter: Option<&Filter>) -> SearchPath {
        let bits = filter.map(|f| self.eval(&f.root));
        self.choose_path(bits.as_ref()).0
    }

    /// The path, and how many faces pass the filter.
    fn choose_path(&self, bits: Option<&Bits>) -> (SearchPath, usize) {
        let (len, count) = (self.entries.len(), bits.map_or(self.entries.len(), Bits::count_ones));
        let Some(Ann { settings, codes: Some(_) }) = &self.ann else { return (SearchPath::Exact, count) };
        let large = len >= settings.exact_below;
        let dense = count > 0 && count as u64 * 1000 >= len as u64 * u64::from(settings.min_permille);
        (if large && dense { SearchPath::Codes } else { SearchPath::Exact }, count)
    }

    /// Search. Panics if `query.len() != dim`.
    ///
    /// Considers every face that passes the filter and whose cosine (dot product with `query`) is
    /// ≥ `min_cosine` (faces whose cosine is NaN never qualify); takes the `top_n` with the highest
    /// cosine, ties broken by face id ascending so results are deterministic; then, if `sort` is
    /// non-empty, orders those hits by the sort keys in turn (a face missing a key's field goes after
    /// those having it, in either direction; hits equal on every key keep their cosine order). So `sort`
    /// orders the `top_n` most similar faces; it does not pick different ones. Sort keys naming a
    /// non-numeric or unknown position are ignored.
    ///
    /// Exact search ([`SearchPath::Exact`]): one dot product per face passing the filter (the filter
    /// runs first on the columns), a bounded heap of `top_n`. Without sign codes, or below their
    /// thresholds ([`FaceSetIndex::search_path`]), this is the answer.
    ///
    /// Code search ([`SearchPath::Codes`]): the sign codes estimate the cosine of every face passing
    /// the filter, and the [`AnnSettings::rerank`] faces (at least `top_n`) with the highest estimates
    /// are scored on their stored features; exactly the rules above pick and order the hits among
    /// them. Each returned cosine is the score exact search gives that face; what is approximate is
    /// only which faces are found (a face the estimate passes over is absent, never mis-scored).
    ///
    /// Scores are `f32` dot products of `query` with the stored feature: exact cosines for
    /// [`crate::Precision::F32`], of the rounded feature for `F16`/`I8` (see [`crate::Precision`]).
    pub fn search(&self, query: &[f32], params: &SearchParams<'_>) -> Vec<Hit> {
        assert_eq!(query.len(), self.dim, "query dimension");
        if params.top_n == 0 || self.is_empty() {
            return Vec::new();
        }
        let no_threshold = params.min_cosine.is_nan() || params.min_cosine <= -1.0;
        let min = if no_threshold { f32::NEG_INFINITY } else { params.min_cosine };
        let mut top = TopK::new(params.top_n, min);
        let bits = params.filter.map(|f| self.eval(&f.root));
        match (self.choose_path(bits.as_ref()), &self.ann) {
            ((SearchPath::Codes, count), Some(Ann { settings, codes: Some(codes) })) => {
                let wanted = settings.rerank(count).max(params.top_n);
                let mut slots = Vec::with_capacity(wanted + wanted / 4);
                codes.candidates(&codes.query(query, self.kernel), wanted, count, bits.as_ref(), &mut slots);
                self.offer_slots(query, slots.into_iter(), &mut top);
            }
            _ => match &bits {
                None => {
                    let mut cosines = [0.0f32; BLOCK];
                    let rows = self.entries.len();
                    for block in 0..rows.div_ceil(BLOCK) {
                        let first = block * BLOCK;
                        let out = &mut cosines[..(rows - first).min(BLOCK)];
                        self.vectors.scores_range(self.kernel, query, first, out);
                        top.offer_block(out, |i| (first + i) as u32, &self.entries);
                    }
                }
                Some(bits) => self.offer_slots(query, bits.ones_iter().map(|slot| slot as u32), &mut top),
            },
        }
        self.finish(top, params)
    }

    /// Scores the faces at `slots`, `BLOCK` at a time, and offers them to `top`.
    fn offer_slots(&self, query: &[f32], slots: impl Iterator<Item = u32>, top: &mut TopK) {
        let mut cosines = [0.0f32; BLOCK];
        let mut block = [0u32; BLOCK];
        let mut n = 0;
        let mut flush = |block: &[u32], top: &mut TopK| {
            let out = &mut cosines[..block.len()];
            self.vectors.scores_gather(self.kernel, query, block, out);
            top.offer_block(out, |i| block[i], &self.entries);
        };
        for slot in slots {
            block[n] = slot;
            n += 1;
            if n == BLOCK {
                flush(&block, top);
                n = 0;
            }
        }
        flush(&block[..n], top);
    }

    /// The kept candidates, best first, then ordered by the sort keys.
    fn finish(&self, top: TopK, params: &SearchParams<'_>) -> Vec<Hit> {
        let mut hits = top.into_sorted();
        let keys: Vec<(&Column, bool)> =
            params.sort.iter().filter_map(|k| self.columns.get(k.field).map(|c| (c, k.descending))).collect();
        if !keys.is_empty() {
            hits.sort_by(|a, b| compare_by_keys(&keys, a.slot as usize, b.slot as usize));
        }
        hits.into_iter().map(|c| Hit { face_id: c.face_id, cosine: c.cosine }).collect()
    }

    /// Bytes of heap this index holds (features, entries, id map, field values, columns): the sum of
    /// [`FaceSetIndex::heap_usage`]. O(n): it walks the entries.
    pub fn heap_bytes(&self) -> usize {
        self.heap_usage().total()
    }

    /// Heap bytes by part. Counts requested bytes (capacities), not the allocator's own overhead;
    /// the id map's size is estimated from its capacity as hashbrown lays it out.
    pub fn heap_usage(&self) -> HeapUsage {
        let entry_size = std::mem::size_of::<FaceEntry>();
        let value_size = std::mem::size_of::<Option<FieldValue>>();
        let mut usage = HeapUsage {
            features: self.vectors.heap_bytes(),
            codes: self.ann.as_ref().and_then(|a| a.codes.as_ref()).map_or(0, SignCodes::heap_bytes),
            entries: self.entries.capacity() * entry_size + self.ext_hashes.capacity() * 4,
            id_map: hash_map_bytes(self.slots.capacity(), std::mem::size_of::<(FaceId, u32)>()),
            field_values: 0,
            columns: self.columns.iter().map(Column::heap_bytes).sum(),
        };
        for entry in &self.entries {
            usage.entries += entry.external_image_id.len();
            usage.field_values += entry.fields.0.capacity() * value_size;
            for value in entry.fields.0.iter().flatten() {
                if let FieldValue::String(s) = value {
                    usage.field_values += s.len();
                }
            }
        }
        usage
    }

    /// Makes room for `additional` more faces without reallocating (used when loading a set at start).
    pub fn reserve(&mut self, additional: usize) {
        self.vectors.reserve_exact(additional, self.dim);
        self.entries.reserve_exact(additional);
        self.slots.reserve(additional);
        self.ext_hashes.reserve_exact(additional);
        for column in &mut self.columns {
            column.reserve_exact(additional);
        }
        if let Some(codes) = self.ann.as_mut().and_then(|a| a.codes.as_mut()) {
            codes.reserve_exact(additional);
        }
    }

    /// Gives memory back once over half of the capacity is unused (after many removals).
    fn shrink_if_sparse(&mut self) {
        let len = self.entries.len();
        if self.entries.capacity() > 2 * len + MIN_GROWTH {
            let keep = len + len / 8;
            self.vectors.shrink_to(keep, self.dim);
            self.entries.shrink_to(keep);
            self.ext_hashes.shrink_to(keep);
            for column in &mut self.columns {
                column.shrink_to(keep);
            }
            self.slots.shrink_to(keep);
            if let Some(codes) = self.ann.as_mut().and_then(|a| a.codes.as_mut()) {
                codes.shrink_to(keep);
            }
        }
    }

    /// Slots matching a filter node.
    fn eval(&self, node: &Node) -> Bits {
        let len = self.entries.len();
        match node {
            Node::And(items) => {
                let mut bits = Bits::ones(len);
                for item in items {
                    if bits.is_all_zero() {
                        break;
                    }
                    bits.and_with(&self.eval(item));
                }
                bits
            }
            Node::Or(items) => {
                let mut bits = Bits::zeros(len);
                for item in items {
                    bits.or_with(&self.eval(item));
                }
                bits
            }
            Node::Not(inner) => {
                let mut bits = self.eval(inner);
                bits.negate();
                bits
            }
            Node::Term(term) => self.eval_term(term),
        }
    }

    fn eval_term(&self, Term { target, predicate }: &Term) -> Bits {
        let len = self.entries.len();
        match (target, predicate) {
            (Target::Field(position), _) => {
                let Some(column) = self.columns.get(*position) else { return Bits::zeros(len) };
                let mut bits = column.scan(predicate, len);
                if let Predicate::Str(wanted) = predicate {
                    // Confirm hash matches against the text.
                    let false_positives: Vec<usize> = bits
                        .ones_iter()
                        .filter(|&slot| {
                            !matches!(self.entries[slot].fields.get(*position), Some(FieldValue::String(s)) if s == wanted)
                        })
                        .collect();
                    for slot in false_positives {
                        bits.set(slot, false);
                    }
                }
                bits
            }
            (Target::ExternalImageId, Predicate::Str(wanted)) => self.external_image_id_bits(wanted),
            (Target::FaceId, Predicate::Str(wanted)) => {
                let mut bits = Bits::zeros(len);
                if let Some(&slot) = FaceId::parse(wanted).and_then(|id| self.slots.get(&id)) {
                    bits.set(slot as usize, true);
                }
                bits
            }
            _ => Bits::zeros(len),
        }
    }

    fn external_image_id_bits(&self, wanted: &str) -> Bits {
        let mut bits = hash_scan(&self.ext_hashes, str_hash(wanted), self.entries.len());
        let false_positives: Vec<usize> =
            bits.ones_iter().filter(|&slot| *self.entries[slot].external_image_id != *wanted).collect();
        for slot in false_positives {
            bits.set(slot, false);
        }
        bits
    }
}

/// Rows per kernel call.
const BLOCK: usize = 256;

fn normalise_fields(fields: &mut FieldValues, len: usize) {
    if fields.0.len() != len {
        fields.0.resize(len, None);
        fields.0.shrink_to_fit();
    }
}

/// hashbrown's allocation for `capacity` items of `item` bytes: a power-of-two bucket count at 7/8
/// load, one control byte per bucket plus a 16-byte group.
fn hash_map_bytes(capacity: usize, item: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets =
        if capacity < 8 { (capacity + 1).next_power_of_two() } else { (capacity * 8 / 7).next_power_of_two() };
    buckets * (item + 1) + 16
}

fn compare_by_keys(keys: &[(&Column, bool)], a: usize, b: usize) -> Ordering {
    for &(column, descending) in keys {
        let order = match (column.number(a), column.number(b)) {
            (None, None) => Ordering::Equal,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x, y) {
                    (Number::Int(x), Number::Int(y)) => x.cmp(&y),
                    (Number::Float(x), Number::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                    _ => Ordering::Equal,
                };
                if descending { order.reverse() } else { order }
            }
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// A search candidate.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    cosine: f32,
    face_id: FaceId,
    slot: u32,
}

impl Candidate {
    /// Rank order: higher cosine first, then smaller face id. `Less` = better.
    fn rank(&self, other: &Candidate) -> Ordering {
        other.cosine.partial_cmp(&self.cosine).unwrap_or(Ordering::Equal).then(self.face_id.cmp(&other.face_id))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.rank(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// Worse candidates are greater, so the max-heap's top is the worst kept.
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank(other)
    }
}

/// The best `k` candidates seen, worst on top.
struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
    /// Candidates below this cosine cannot enter: `min_cosine` until full, then the worst kept.
    bar: f32,
}

impl TopK {
    fn new(k: usize, min_cosine: f32) -> TopK {
        TopK { k, heap: BinaryHeap::with_capacity(k.min(4096) + 1), bar: min_cosine }
    }

    /// Offers a block of cosines; `slot_of(i)` is the slot of `cosines[i]`.
    #[inline]
    fn offer_block(&mut self, cosines: &[f32], slot_of: impl Fn(usize) -> u32, entries: &[FaceEntry]) {
        for (i, &cosine) in cosines.iter().enumerate() {
            if cosine < self.bar || cosine.is_nan() {
                continue;
            }
            let slot = slot_of(i);
            let candidate = Candidate { cosine, face_id: entries[slot as usize].face_id, slot };
            if self.heap.len() < self.k {
                self.heap.push(candidate);
            } else if let Some(mut worst) = self.heap.peek_mut() {
                if candidate.rank(&worst) == Ordering::Less {
                    *worst = candidate;
                } else {
                    continue;
                }
            }
            if self.heap.len() == self.k
                && let Some(worst) = self.heap.peek()
            {
                self.bar = worst.cosine;
            }
        }
    }

    /// The kept candidates, best first.
    fn into_sorted(self) -> Vec<Candidate> {
        // BinaryHeap::into_sorted_vec is ascending by `Ord`, i.e. best first.
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id(text: &str) -> FaceId {
        FaceId::parse(text).expect("valid id")
    }

    fn entry(face_id: &str, ext: &str, fields: FieldValues) -> FaceEntry {
        FaceEntry { face_id: id(face_id), external_image_id: ext.into(), bbox: [1, 2, 3, 4], fields }
    }

    fn schema() -> Schema {
        Schema::parse(&json!({"dept": {"type": "integer"}, "ts": {"type": "long"}, "name": {"type": "string"}}))
            .expect("valid")
    }

    fn params<'a>(top_n: usize, filter: Option<&'a Filter>, sort: &'a [SortKey]) -> SearchParams<'a> {
        SearchParams { top_n, min_cosine: -1.0, filter, sort }
    }

    #[test]
    fn insert_get_update_remove() {
        let s = schema();
        let mut index = FaceSetIndex::new(s.clone(), 2);
        let values = s.parse_values(&json!({"dept": 7, "name": "zhangsan"})).expect("valid");
        index.insert(entry("AAAAAAAA", "img-1", values.clone()), &[1.0, 0.0]).expect("insert");
        index.insert(entry("BBBBBBBB", "img-1", FieldValues::default()), &[0.0, 1.0]).expect("insert");
        assert!(matches!(
            index.insert(entry("AAAAAAAA", "x", FieldValues::default()), &[1.0, 0.0]),
            Err(IndexError::DuplicateId(_))
        ));
        assert!(matches!(
            index.insert(entry("CCCCCCCC", "x", FieldValues::default()), &[1.0]),
            Err(IndexError::WrongDimension { expected: 2, got: 1 })
        ));
        assert_eq!(index.len(), 2);
        let (e, f) = index.get(id("BBBBBBBB")).expect("present");
        assert_eq!(&*f, &[0.0, 1.0]);
        assert_eq!(e.fields.0, vec![None, None, None], "padded to the schema");
        let mut ids = index.with_external_image_id("img-1");
        ids.sort();
        assert_eq!(ids, vec![id("AAAAAAAA"), id("BBBBBBBB")]);

        let update = s.parse_values(&json!({"dept": 8})).expect("valid");
        assert!(index.update(id("AAAAAAAA"), Some("img-2".into()), Some(values.merged(&update))));
        assert!(!index.update(id("ZZZZZZZZ"), None, None));
        let (e, _) = index.get(id("AAAAAAAA")).expect("present");
        assert_eq!(&*e.external_image_id, "img-2");
        assert_eq!(e.fields.get(s.field("dept").expect("declared").0), Some(&FieldValue::Integer(8)));
        assert_eq!(e.fields.get(s.field("name").expect("declared").0), Some(&FieldValue::String("zhangsan".into())));
        assert_eq!(index.select(&Filter::parse("dept:8 && name:zhangsan", &s).expect("valid")), vec![id("AAAAAAAA")]);
        assert!(index.select(&Filter::parse("dept:7", &s).expect("valid")).is_empty());

        assert!(index.remove(id("AAAAAAAA")));
        assert!(!index.remove(id("AAAAAAAA")));
        assert_eq!(index.len(), 1);
        assert_eq!(index.get(id("BBBBBBBB")).map(|(_, f)| f.to_vec()), Some(vec![0.0, 1.0]));
        assert!(index.remove(id("BBBBBBBB")));
        assert!(index.is_empty());
        assert!(index.search(&[1.0, 0.0], &params(10, None, &[])).is_empty());
    }

    #[test]
    fn search_orders_by_cosine_then_id_and_applies_threshold_and_sort() {
        let s = schema();
        let mut index = FaceSetIndex::new(s.clone(), 2);
        let faces = [
            ("DDDDDDDD", [1.0, 0.0], json!({"ts": 5})),
            ("CCCCCCCC", [0.6, 0.8], json!({"ts": 9})),
            ("BBBBBBBB", [0.6, 0.8], json!({})),
            ("AAAAAAAA", [0.0, 1.0], json!({"ts": 1})),
            ("EEEEEEEE", [-1.0, 0.0], json!({"ts": 7})),
        ];
        for (face_id, feature, values) in &faces {
            index.insert(entry(face_id, "x", s.parse_values(values).expect("valid")), feature).expect("insert");
        }
        let ids = |hits: Vec<Hit>| hits.into_iter().map(|h| h.face_id.to_string()).collect::<Vec<_>>();
        let all = index.search(&[1.0, 0.0], &params(10, None, &[]));
        assert_eq!(ids(all.clone()), ["DDDDDDDD", "BBBBBBBB", "CCCCCCCC", "AAAAAAAA", "EEEEEEEE"]);
        assert_eq!(all[0].cosine, 1.0);
        assert_eq!(all[4].cosine, -1.0);
        assert_eq!(ids(index.search(&[1.0, 0.0], &params(2, None, &[]))), ["DDDDDDDD", "BBBBBBBB"]);
        assert!(index.search(&[1.0, 0.0], &params(0, None, &[])).is_empty());
        let p = SearchParams { min_cosine: 0.6, ..params(10, None, &[]) };
        assert_eq!(ids(index.search(&[1.0, 0.0], &p)), ["DDDDDDDD", "BBBBBBBB", "CCCCCCCC"]);

        // Sort orders the top_n; the face without `ts` goes last either way.
        let ts = s.field("ts").expect("declared").0;
        let desc = [SortKey { field: ts, descending: true }];
        assert_eq!(ids(index.search(&[1.0, 0.0], &params(3, None, &desc))), ["CCCCCCCC", "DDDDDDDD", "BBBBBBBB"]);
        let asc = [SortKey { field: ts, descending: false }];
        assert_eq!(ids(index.search(&[1.0, 0.0], &params(3, None, &asc))), ["DDDDDDDD", "CCCCCCCC", "BBBBBBBB"]);

        let filter = Filter::parse("ts:[2 TO *] || face_id:AAAAAAAA", &s).expect("valid");
        assert_eq!(
            ids(index.search(&[1.0, 0.0], &params(10, Some(&filter), &[]))),
            ["DDDDDDDD", "CCCCCCCC", "AAAAAAAA", "EEEEEEEE"]
        );
    }

    #[test]
    fn filtered_search_spans_blocks() {
        let s = schema();
        let mut index = FaceSetIndex::new(s.clone(), 3);
        for i in 0..1000i64 {
            let values = s.parse_values(&json!({"dept": i % 10})).expect("valid");
            let angle = i as f32 / 1000.0;
            let face_id = format!("{i:0>8}");
            index.insert(entry(&face_id, "x", values), &[angle.cos(), angle.sin(), 0.0]).expect("insert");
        }
        let filter = Filter::parse("!dept:3", &s).expect("valid");
        let hits = index.search(&[1.0, 0.0, 0.0], &params(1000, Some(&filter), &[]));
        assert_eq!(hits.len(), 900);
        assert_eq!(hits[0].face_id.as_str(), "00000000");
        assert!(hits.windows(2).all(|w| w[0].cosine >= w[1].cosine));
        assert_eq!(index.select(&filter).len(), 900);
    }

    /// Codes made on a few faces are made again as the set doubles, until they were fitted on
    /// `REFIT_BELOW` faces; then kept.
    #[test]
    fn codes_are_refitted_as_a_small_set_doubles() {
        let settings = IndexSettings {
            precision: crate::Precision::F32,
            ann: Some(AnnSettings { exact_below: 3, ..AnnSettings::default() }),
        };
        let mut index = FaceSetIndex::with_settings(Schema::default(), 2, settings);
        let fitted = |index: &FaceSetIndex| index.ann.as_ref().and_then(|a| a.codes.as_ref()).map(SignCodes::fitted);
        let mut seen = Vec::new();
        for i in 0..(2 * REFIT_BELOW + 10) as u32 {
            let angle = i as f32 * 0.01;
            let face = entry(&format!("{i:08}"), "x", FieldValues::default());
            index.insert(face, &[angle.cos(), angle.sin()]).expect("insert");
            if seen.last() != Some(&fitted(&index)) {
                seen.push(fitted(&index));
            }
        }
        let doublings: Vec<Option<usize>> = std::iter::once(None)
            .chain((0..).map(|k| Some(3usize << k)).take_while(|&n| n.is_some_and(|n| n < 2 * REFIT_BELOW)))
            .collect();
        assert_eq!(seen, doublings);
        assert_eq!(index.ann.as_ref().and_then(|a| a.codes.as_ref()).map(SignCodes::len), Some(index.len()));
    }

    #[test]
    fn memory_slack_is_bounded() {
        let mut index = FaceSetIndex::new(Schema::empty(), 128);
        let feature = vec![0.0f32; 128];
        for _ in 0..20_000 {
            index.insert(entry(FaceId::random().as_str(), "img", FieldValues::default()), &feature).expect("insert");
        }
        let usage = index.heap_usage();
        let raw = 20_000 * 128 * 4;
        assert!(usage.features <= raw + raw / 16 + MIN_GROWTH * 128 * 4, "{usage:?}");
        for id in index.entries.iter().map(|e| e.face_id).collect::<Vec<_>>().into_iter().skip(1000) {
            index.remove(id);
        }
        assert_eq!(index.len(), 1000);
        assert!(index.heap_usage().features < 2 * 1000 * 128 * 4 + MIN_GROWTH * 128 * 4 * 2);
    }
}
