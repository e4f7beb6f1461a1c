//! The HNSW graphs of large face sets (`docs/search-at-scale.md`): which sets keep one
//! ([`IndexConfig`]), their files in the data directory, building pending faces in short steps
//! beside searches and writes, and saving changed graphs in the background and at shutdown.
//!
//! Contracts:
//! - A graph file is only an accelerator: the store stays the truth. A missing, corrupt, stale or
//!   foreign file is logged and the set's graph rebuilt; searches are exact until it is linked.
//! - A file is replaced atomically (temporary file, fsync, rename, directory fsync), written under
//!   the set's index read lock (searches go on; that set's writers wait for the copy into the page
//!   cache, not for the fsync).
//! - No global pause: the builder takes one set's write lock for one short step at a time.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use frs_index::{AnnSettings, FaceSetIndex, IndexSettings, Precision};

use super::{FaceSet, Inner, read, write};

/// Subdirectory of the data directory holding one `<face_set_id>.hnsw` per graph.
pub const GRAPH_DIR: &str = "graphs";
/// A set is compacted when its removed faces exceed this share of its slots (‰).
pub(super) const COMPACT_PERMILLE: usize = 200;
/// At load, a set with at most this many faces to link builds them at once; larger builds go to
/// the background builder (searches are exact meanwhile).
const BUILD_AT_LOAD_MAX: usize = 2_000;
/// How often the background upkeep looks at the sets.
const TICK: Duration = Duration::from_millis(500);
/// Target write-lock hold of one build step.
const STEP_TARGET: Duration = Duration::from_millis(20);
/// `GraphState::saved_changes` of a graph whose file does not hold it at all.
const NEVER: u64 = u64::MAX;

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

/// `[index]`: how face sets are held in memory and which sets keep an HNSW graph.
///
/// The defaults change nothing for FRS-sized sets: no set can exceed 100,000 faces unless the
/// operator raises `[library] max_face_set_capacity`, so no set has a graph and search is exact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Feature precision of every set in memory (`f32`, `f16`, `i8`).
    pub precision: FeaturePrecision,
    /// Sets whose `face_set_capacity` exceeds this keep a graph (0: every set).
    pub ann_min_capacity: u32,
    /// Links per node on the upper graph layers (2·m on the base layer); a graph file with another
    /// `m` is rebuilt.
    pub m: usize,
    /// Candidate list while inserting (graph quality vs insert time).
    pub ef_construction: usize,
    /// Candidate list while searching (recall vs latency); at least `top_n`.
    pub ef_search: usize,
    /// Searches with fewer candidate faces (the set, or the faces passing the filter) are exact.
    pub exact_below: usize,
    /// A filter matching fewer than this share of the set (‰) is answered by an exact scan.
    pub graph_min_permille: u32,
    /// Threads linking a graph at start (0: one per core).
    pub build_threads: usize,
    /// A changed graph is saved after this many seconds...
    pub save_interval_secs: u64,
    /// ...or once this many faces were added or removed since its last save; and at shutdown.
    pub save_after_changes: u64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        let ann = AnnSettings::default();
        IndexConfig {
            precision: FeaturePrecision::F32,
            ann_min_capacity: 100_000,
            m: ann.m,
            ef_construction: ann.ef_construction,
            ef_search: ann.ef_search,
            exact_below: ann.exact_below,
            graph_min_permille: ann.graph_min_permille,
            build_threads: 0,
            save_interval_secs: 300,
            save_after_changes: 100_000,
        }
    }
}

impl IndexConfig {
    /// The index settings of a set of this capacity.
    pub fn settings_for(&self, capacity: u32) -> IndexSettings {
        let ann = (capacity > self.ann_min_capacity).then_some(AnnSettings {
            exact_below: self.exact_below,
            graph_min_permille: self.graph_min_permille,
            m: self.m,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
        });
        IndexSettings { precision: self.precision.into(), ann }
    }

    /// Whether a set could ever have a graph under `max_capacity`.
    pub(super) fn graphs_possible(&self, max_capacity: u32) -> bool {
        max_capacity > self.ann_min_capacity
    }

    fn threads(&self) -> usize {
        match self.build_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// How one face set's in-memory index stands: for operators' diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStatus {
    /// Faces in the set.
    pub faces: usize,
    /// `"f32"`, `"f16"` or `"i8"`.
    pub precision: &'static str,
    /// Whether the set keeps a graph.
    pub graph: bool,
    /// Faces not linked into the graph yet (searches are exact while any is).
    pub pending: usize,
    /// Removed faces kept as graph nodes until the next compaction.
    pub tombstones: usize,
    /// Whether a search without a filter uses the graph now.
    pub graph_search: bool,
    /// Faces the builder linked since the set was loaded (0 when the graph file was whole).
    pub built_since_load: u64,
    /// Whether the graph file holds the current graph.
    pub saved: bool,
}

/// The graph bookkeeping of one set that keeps a graph.
pub(super) struct GraphState {
    path: PathBuf,
    /// Faces added or removed, and compactions, since the set was loaded or created.
    changes: AtomicU64,
    /// `changes` when the file was last written (or found up to date at load); [`NEVER`] while
    /// the file is missing or refused, which makes the next upkeep round save it.
    saved_changes: AtomicU64,
    last_save: Mutex<Instant>,
    /// Faces linked by build steps since the load.
    built: AtomicU64,
    /// Held while the file is written or removed.
    file: Mutex<()>,
    /// Set when the face set is deleted: nothing may write its file any more.
    removed: AtomicBool,
}

impl GraphState {
    pub(super) fn new(path: PathBuf, up_to_date: bool) -> GraphState {
        GraphState {
            path,
            changes: AtomicU64::new(0),
            saved_changes: AtomicU64::new(if up_to_date { 0 } else { NEVER }),
            last_save: Mutex::new(Instant::now()),
            built: AtomicU64::new(0),
            file: Mutex::new(()),
            removed: AtomicBool::new(false),
        }
    }

    /// Records `n` changes of the graph (call under the set's index write lock).
    pub(super) fn changed(&self, n: usize) {
        self.changes.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(super) fn dirty(&self) -> bool {
        self.changes.load(Ordering::Relaxed) != self.saved_changes.load(Ordering::Relaxed)
    }

    /// Changes since the last save; `u64::MAX` when the file is missing or was refused.
    fn unsaved(&self) -> u64 {
        match self.saved_changes.load(Ordering::Relaxed) {
            NEVER => u64::MAX,
            saved => self.changes.load(Ordering::Relaxed).saturating_sub(saved),
        }
    }

    /// Marks the set deleted and removes its graph file (waiting for a save in progress).
    pub(super) fn remove_file(&self) {
        self.removed.store(true, Ordering::Release);
        let _file = lock(&self.file);
        for path in [self.path.clone(), tmp_path(&self.path)] {
            match fs::remove_file(&path) {
                Ok(()) => sync_dir(&path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "removing a graph file failed"),
            }
        }
    }
}

/// Where a set's graph file lives.
pub(super) fn graph_path(data_dir: &Path, set_id: &str) -> PathBuf {
    data_dir.join(GRAPH_DIR).join(format!("{set_id}.hnsw"))
}

fn tmp_path(path: &Path) -> PathBuf {
    path.with_extension("hnsw.tmp")
}

/// Attaches the set's saved graph to a freshly streamed, deferred index, and links small
/// remainders at once. Never fails: a bad file is logged and the graph rebuilt.
pub(super) fn attach_graph(index: &mut FaceSetIndex, path: PathBuf, set: &str, config: &IndexConfig) -> GraphState {
    let started = Instant::now();
    let outcome = match File::open(&path) {
        Ok(file) => index.load_graph(BufReader::new(file)).map_err(|e| e.to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(String::new()),
        Err(e) => Err(e.to_string()),
    };
    let up_to_date = match outcome {
        Ok(load) => {
            tracing::info!(
                face_set.id = set,
                saved = load.saved,
                attached = load.attached,
                pending = load.pending,
                duration_ms = started.elapsed().as_millis() as u64,
                "graph file attached"
            );
            load.saved == load.attached && load.pending == 0
        }
        Err(reason) if reason.is_empty() => {
            if !index.is_empty() {
                tracing::info!(face_set.id = set, faces = index.len(), "no graph file: building the graph");
            }
            index.is_empty()
        }
        Err(reason) => {
            tracing::warn!(face_set.id = set, path = %path.display(), error = %reason, "graph file refused: rebuilding the graph");
            false
        }
    };
    let state = GraphState::new(path, up_to_date);
    let pending = index.pending();
    if pending <= BUILD_AT_LOAD_MAX {
        index.build_graph(config.threads());
        state.built.fetch_add(pending as u64, Ordering::Relaxed);
    }
    state
}

/// Writes the set's graph file atomically. `Ok(false)` when the set was deleted meanwhile.
pub(super) fn save_graph(set: &FaceSet) -> io::Result<bool> {
    let Some(graph) = &set.graph else { return Ok(false) };
    let _file = lock(&graph.file);
    if graph.removed.load(Ordering::Acquire) {
        return Ok(false);
    }
    let started = Instant::now();
    let dir = graph.path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = tmp_path(&graph.path);
    let file = File::create(&tmp)?;
    let changes = {
        let index = read(&set.index);
        index.save_graph(&file).map_err(io::Error::other)?;
        graph.changes.load(Ordering::Relaxed)
    };
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &graph.path)?;
    sync_dir(&graph.path);
    graph.saved_changes.store(changes, Ordering::Relaxed);
    *lock(&graph.last_save) = Instant::now();
    tracing::info!(
        face_set.id = %set.row.id,
        bytes = fs::metadata(&graph.path).map_or(0, |m| m.len()),
        duration_ms = started.elapsed().as_millis() as u64,
        "graph saved"
    );
    Ok(true)
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

/// Removes graph files of sets the store does not have (a crash between a set's delete and its
/// file's removal), and leftover temporary files.
pub(super) fn remove_orphans(data_dir: &Path, known: &[&str]) {
    let Ok(entries) = fs::read_dir(data_dir.join(GRAPH_DIR)) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let keep = name.strip_suffix(".hnsw").is_some_and(|id| known.contains(&id));
        if !keep && (name.ends_with(".hnsw") || name.ends_with(".hnsw.tmp")) {
            tracing::info!(path = %path.display(), "removing a graph file of no face set");
            let _ = fs::remove_file(&path);
        }
    }
}

/// The status of one set.
pub(super) fn status(set: &FaceSet) -> IndexStatus {
    let index = read(&set.index);
    IndexStatus {
        faces: index.len(),
        precision: index.settings().precision.name(),
        graph: set.graph.is_some(),
        pending: index.pending(),
        tombstones: index.tombstones(),
        graph_search: index.search_path(None) == frs_index::SearchPath::Graph,
        built_since_load: set.graph.as_ref().map_or(0, |g| g.built.load(Ordering::Relaxed)),
        saved: set.graph.as_ref().is_some_and(|g| !g.dirty()),
    }
}

/// Compacts the set's index when its tombstones exceed [`COMPACT_PERMILLE`] of its slots. Call
/// under the set's writer lock (blocking: O(faces)).
pub(super) fn compact_if_sparse(set: &FaceSet) {
    let Some(graph) = &set.graph else { return };
    let mut index = write(&set.index);
    let tombstones = index.tombstones();
    if tombstones * 1000 <= (index.len() + tombstones) * COMPACT_PERMILLE {
        return;
    }
    let started = Instant::now();
    index.compact();
    graph.changed(1);
    tracing::info!(
        face_set.id = %set.row.id,
        tombstones,
        faces = index.len(),
        duration_ms = started.elapsed().as_millis() as u64,
        "face set compacted"
    );
}

/// The background upkeep shared by a library and its thread.
pub(super) struct Upkeep {
    state: Mutex<UpkeepState>,
    wake: Condvar,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct UpkeepState {
    stop: bool,
}

impl Upkeep {
    pub(super) fn new() -> Arc<Upkeep> {
        Arc::new(Upkeep { state: Mutex::new(UpkeepState::default()), wake: Condvar::new(), thread: Mutex::new(None) })
    }

    /// Starts the thread (once) for the library `inner`.
    pub(super) fn start(self: &Arc<Self>, inner: Weak<Inner>) {
        let mut thread = lock(&self.thread);
        if thread.is_some() || self.stopped() {
            return;
        }
        let upkeep = Arc::clone(self);
        match std::thread::Builder::new().name("frs-graphs".into()).spawn(move || upkeep.run(inner)) {
            Ok(handle) => *thread = Some(handle),
            Err(e) => tracing::error!(error = %e, "could not start the graph upkeep thread"),
        }
    }

    /// Stops the thread; with `join`, waits for it (not from the thread itself).
    pub(super) fn stop(&self, join: bool) {
        lock(&self.state).stop = true;
        self.wake.notify_all();
        if join && let Some(handle) = lock(&self.thread).take() {
            let _ = handle.join();
        }
    }

    fn stopped(&self) -> bool {
        lock(&self.state).stop
    }

    fn run(&self, inner: Weak<Inner>) {
        let mut step = 64usize;
        loop {
            {
                let state = lock(&self.state);
                let (state, _) =
                    self.wake.wait_timeout_while(state, TICK, |s| !s.stop).unwrap_or_else(PoisonError::into_inner);
                if state.stop {
                    return;
                }
            }
            let Some(inner) = inner.upgrade() else { return };
            let sets: Vec<Arc<FaceSet>> =
                read(&inner.sets).values().filter(|set| set.graph.is_some()).cloned().collect();
            for set in sets {
                if self.stopped() {
                    return;
                }
                let built = self.build(&set, &inner.index, &mut step);
                let Some(graph) = &set.graph else { continue };
                if graph.removed.load(Ordering::Acquire) || !graph.dirty() || read(&set.index).pending() > 0 {
                    continue;
                }
                let unsaved = graph.unsaved();
                let due = lock(&graph.last_save).elapsed() >= Duration::from_secs(inner.index.save_interval_secs);
                if (built || due || unsaved >= inner.index.save_after_changes.max(1))
                    && let Err(e) = save_graph(&set)
                {
                    tracing::error!(face_set.id = %set.row.id, error = %e, "saving the graph failed");
                }
            }
        }
    }

    /// Links the set's pending faces in steps of about [`STEP_TARGET`] under its write lock.
    /// Returns whether it linked the last of them.
    fn build(&self, set: &FaceSet, config: &IndexConfig, step: &mut usize) -> bool {
        let Some(graph) = &set.graph else { return false };
        if read(&set.index).pending() == 0 {
            return false;
        }
        let started = Instant::now();
        let threads = config.threads();
        let mut linked = 0;
        loop {
            if self.stopped() || graph.removed.load(Ordering::Acquire) {
                return false;
            }
            let began = Instant::now();
            let (done, left) = {
                let mut index = write(&set.index);
                let done = index.build_graph_part(threads, *step);
                (done, index.pending())
            };
            let took = began.elapsed();
            linked += done;
            graph.built.fetch_add(done as u64, Ordering::Relaxed);
            if left == 0 {
                tracing::info!(
                    face_set.id = %set.row.id,
                    linked,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "graph built: searches use it from now on"
                );
                graph.changed(1);
                return true;
            }
            if took < STEP_TARGET / 2 {
                *step = (*step * 2).min(1 << 16);
            } else if took > STEP_TARGET * 2 {
                *step = (*step / 2).max(8);
            }
            // Let waiting writers and readers in between steps.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
