//! The face library: face sets, their faces and 1:N search, per project.
//!
//! Contracts:
//! - Tenancy: every call names its project; a face set is found only by `(project_id, name)`, so no
//!   call can reach another project's sets.
//! - Durability: a write returns only after the store has committed (fsynced) it.
//! - Consistency: the writes of one set are serialised (store commit, then the in-memory index
//!   update, under the set's writer lock); searches read the index, so a face is either fully
//!   searchable or absent. A failed call changes nothing.
//! - Cheap checks first: parameters and custom fields are validated before any inference.

mod index_config;
mod types;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use frs_index::{
    AnnSettings, FaceEntry, FaceId, FaceSetIndex, FieldValues, Filter, Hit, IndexSettings, Schema, SchemaError,
    SearchParams, SearchPath, SortError,
};
use frs_store::{FaceRow, FaceSetRow, Store, StoreError};
use frs_vision::{FEATURE_DIM, Face, Feature};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::{Action, BoundingBox, Caller, Engine, ImageFetcher, ServiceError, Stage};

pub use index_config::{FeaturePrecision, IndexConfig, IndexStatus};
pub use types::*;

/// Largest `offset + limit` of show faces (FRS §5.3).
pub const MAX_LISTED_FACES: i64 = 10_000;
/// Largest `top_n` of search.
pub const MAX_TOP_N: i64 = 1000;
/// Face-set capacities are multiples of this (FRS §2.6).
pub const CAPACITY_STEP: u32 = 10_000;
/// Most faces one add or one multi-face search takes from an image.
pub const MAX_FACES_PER_IMAGE: usize = 100;

/// Per-project limits. The defaults are FRS's; an operator can raise them (an frs extension).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LibraryLimits {
    /// Face sets per project (FRS: 10, `FRS.0305` beyond).
    pub max_face_sets_per_project: usize,
    /// Largest `face_set_capacity` (FRS: 100,000); a multiple of 10,000.
    pub max_face_set_capacity: u32,
}

impl Default for LibraryLimits {
    fn default() -> Self {
        LibraryLimits { max_face_sets_per_project: 10, max_face_set_capacity: 100_000 }
    }
}

/// One loaded face set.
struct FaceSet {
    row: FaceSetRow,
    schema: Schema,
    index: RwLock<FaceSetIndex>,
    /// Serialises the writes of this set; `true` once the set is deleted.
    writer: Mutex<bool>,
}

impl FaceSet {
    fn face_number(&self) -> usize {
        read(&self.index).len()
    }

    fn info(&self) -> FaceSetInfo {
        FaceSetInfo {
            face_set_name: self.row.name.clone(),
            face_set_id: self.row.id.clone(),
            create_date: format_utc(self.row.created_at),
            face_set_capacity: self.row.capacity,
            face_number: self.face_number(),
            external_fields: self.schema.to_json(),
        }
    }

    fn counted(&self, face_number: usize) -> FaceCountResponse {
        FaceCountResponse { face_number, face_set_id: self.row.id.clone(), face_set_name: self.row.name.clone() }
    }
}

type SetKey = (String, String);

/// The face-library use-cases. Cheap to clone; clones share the store, the engine and the sets.
#[derive(Clone)]
pub struct FaceLibrary {
    inner: Arc<Inner>,
    /// Fetches `image_url` inputs; the default refuses every URL.
    fetcher: ImageFetcher,
}

struct Inner {
    store: Arc<Store>,
    engine: Arc<Engine>,
    limits: LibraryLimits,
    index: IndexConfig,
    sets: RwLock<HashMap<SetKey, Arc<FaceSet>>>,
    /// Serialises creating and deleting sets, so the per-project count check holds.
    catalog: Mutex<()>,
}

impl FaceLibrary {
    /// Loads every face set of the store into memory, with the default [`IndexConfig`]. Blocking:
    /// call it before serving.
    pub fn load(store: Arc<Store>, engine: Arc<Engine>, limits: LibraryLimits) -> Result<FaceLibrary, ServiceError> {
        FaceLibrary::load_with_index(store, engine, limits, IndexConfig::default())
    }

    /// Loads every face set of the store into memory; sets holding at least
    /// [`IndexConfig::exact_below`] faces make their sign codes from the loaded features. Blocking:
    /// call it before serving.
    pub fn load_with_index(
        store: Arc<Store>,
        engine: Arc<Engine>,
        limits: LibraryLimits,
        index: IndexConfig,
    ) -> Result<FaceLibrary, ServiceError> {
        let started = Instant::now();
        let mut sets = HashMap::new();
        let mut faces = 0;
        let mut with_codes = 0;
        for row in store.face_sets()? {
            let set = load_face_set(&store, row, &index)?;
            faces += set.face_number();
            with_codes += usize::from(read(&set.index).has_codes());
            sets.insert((set.row.project_id.clone(), set.row.name.clone()), Arc::new(set));
        }
        tracing::info!(
            face_sets = sets.len(),
            faces,
            with_codes,
            duration_ms = started.elapsed().as_millis() as u64,
            "face library loaded"
        );
        let inner = Arc::new(Inner { store, engine, limits, index, sets: RwLock::new(sets), catalog: Mutex::new(()) });
        Ok(FaceLibrary { inner, fetcher: ImageFetcher::default() })
    }

    /// How one face set's index stands (faces, precision, sign codes); for operators' diagnostics
    /// and tests, no authorization.
    pub fn index_status(&self, project_id: &str, name: &str) -> Result<IndexStatus, ServiceError> {
        let set = self.find(project_id, name)?;
        let index = read(&set.index);
        Ok(IndexStatus { faces: index.len(), precision: index.settings().precision.name(), codes: index.has_codes() })
    }

    /// How a search of the set with this filter (FRS syntax, `None` for none) would be answered now:
    /// by the sign codes or exactly. For diagnostics and tests, no authorization.
    pub fn search_path(&self, project_id: &str, name: &str, filter: Option<&str>) -> Result<SearchPath, ServiceError> {
        let set = self.find(project_id, name)?;
        let filter = filter.map(|f| parse_filter(f, &set.schema)).transpose()?;
        Ok(read(&set.index).search_path(filter.as_ref()))
    }

    /// The same library fetching `image_url` inputs with `fetcher`.
    pub fn with_fetcher(mut self, fetcher: ImageFetcher) -> Self {
        self.fetcher = fetcher;
        self
    }

    /// Creates an empty face set.
    pub async fn create_face_set(
        &self,
        caller: &Caller,
        project_id: &str,
        req: CreateFaceSetRequest,
    ) -> Result<FaceSetResponse, ServiceError> {
        caller.authorize(project_id, Action::CreateFaceSet)?;
        validate_face_set_name(&req.face_set_name)?;
        let capacity = self.capacity(req.face_set_capacity)?;
        let schema = match &req.external_fields {
            None => Schema::empty(),
            Some(value) => {
                Schema::parse(value).map_err(|e| ServiceError::InvalidParameter(format!("external_fields: {e}")))?
            }
        };
        let _catalog = self.inner.catalog.lock().await;
        let key = (project_id.to_owned(), req.face_set_name.clone());
        let in_project = {
            let sets = read(&self.inner.sets);
            if sets.contains_key(&key) {
                return Err(ServiceError::FaceSetExists(req.face_set_name));
            }
            sets.keys().filter(|(project, _)| project == project_id).count()
        };
        if in_project >= self.inner.limits.max_face_sets_per_project {
            return Err(ServiceError::TooManyFaceSets { limit: self.inner.limits.max_face_sets_per_project });
        }
        let row = FaceSetRow {
            project_id: project_id.to_owned(),
            name: req.face_set_name.clone(),
            id: random_id(),
            capacity,
            schema_json: schema.to_json().to_string(),
            created_at: unix_now(),
        };
        let store = Arc::clone(&self.inner.store);
        let stored = row.clone();
        blocking(self.timed(Stage::Store, move || Ok::<_, ServiceError>(store.create_face_set(&stored))))
            .await?
            .map_err(|e| match e {
                StoreError::FaceSetExists => ServiceError::FaceSetExists(req.face_set_name.clone()),
                other => other.into(),
            })?;
        let settings = self.inner.index.settings();
        let set = Arc::new(FaceSet {
            index: RwLock::new(FaceSetIndex::with_settings(schema.clone(), FEATURE_DIM, settings)),
            schema,
            row,
            writer: Mutex::new(false),
        });
        let face_set_info = set.info();
        write(&self.inner.sets).insert(key, set);
        Ok(FaceSetResponse { face_set_info })
    }

    /// Every face set of the project, by name.
    pub fn face_sets(&self, caller: &Caller, project_id: &str) -> Result<FaceSetsResponse, ServiceError> {
        caller.authorize(project_id, Action::ListFaceSets)?;
        let mut face_sets_info: Vec<FaceSetInfo> = read(&self.inner.sets)
            .iter()
            .filter(|((project, _), _)| project == project_id)
            .map(|(_, set)| set.info())
            .collect();
        face_sets_info.sort_by(|a, b| a.face_set_name.cmp(&b.face_set_name));
        Ok(FaceSetsResponse { face_sets_info })
    }

    /// One face set.
    pub fn face_set(&self, caller: &Caller, project_id: &str, name: &str) -> Result<FaceSetResponse, ServiceError> {
        caller.authorize(project_id, Action::ShowFaceSet)?;
        Ok(FaceSetResponse { face_set_info: self.find(project_id, name)?.info() })
    }

    /// Deletes a face set and all its faces.
    pub async fn delete_face_set(
        &self,
        caller: &Caller,
        project_id: &str,
        name: &str,
    ) -> Result<DeleteFaceSetResponse, ServiceError> {
        caller.authorize(project_id, Action::DeleteFaceSet)?;
        let _catalog = self.inner.catalog.lock().await;
        let set = self.find(project_id, name)?;
        let mut deleted = set.writer.lock().await;
        let store = Arc::clone(&self.inner.store);
        let id = set.row.id.clone();
        blocking(self.timed(Stage::Store, move || store.delete_face_set(&id))).await?;
        *deleted = true;
        write(&self.inner.sets).remove(&(project_id.to_owned(), name.to_owned()));
        Ok(DeleteFaceSetResponse { face_set_name: set.row.name.clone() })
    }

    /// Adds the largest face (`single`) or every face of an image.
    pub async fn add_faces(
        &self,
        caller: &Caller,
        project_id: &str,
        name: &str,
        req: AddFacesRequest,
    ) -> Result<FacesResponse, ServiceError> {
        caller.authorize(project_id, Action::AddFaces)?;
        let set = self.find(project_id, name)?;
        let external_image_id = match req.external_image_id {
            Some(id) => validate_external_image_id(id)?,
            None => random_id(),
        };
        let fields = parse_values(&set.schema, req.external_fields.as_ref())?;
        let fields_json = Value::Object(set.schema.values_to_json(&fields, None));
        let image = req.image.into_bytes("image", &self.fetcher).await?;
        let max_faces = if req.single { 1 } else { MAX_FACES_PER_IMAGE };
        let found = self.inner.engine.face_features(image, max_faces).await?;
        if found.is_empty() {
            return Err(ServiceError::NoFaceToAdd);
        }

        let deleted = set.writer.lock().await;
        if *deleted {
            return Err(ServiceError::FaceSetNotFound(name.to_owned()));
        }
        let capacity = set.row.capacity as usize;
        if set.face_number() + found.len() > capacity {
            return Err(ServiceError::CapacityExceeded { capacity: set.row.capacity });
        }
        let entries: Vec<(FaceEntry, Feature)> = {
            let index = read(&set.index);
            let mut ids = Vec::with_capacity(found.len());
            found
                .iter()
                .map(|(face, feature)| {
                    let face_id = loop {
                        let id = FaceId::random();
                        if index.get(id).is_none() && !ids.contains(&id) {
                            ids.push(id);
                            break id;
                        }
                    };
                    let entry = FaceEntry {
                        face_id,
                        external_image_id: external_image_id.as_str().into(),
                        bbox: bbox_array(face),
                        fields: fields.clone(),
                    };
                    (entry, *feature)
                })
                .collect()
        };
        let rows: Vec<FaceRow> = entries
            .iter()
            .map(|(entry, feature)| FaceRow {
                face_id: entry.face_id.to_string(),
                external_image_id: external_image_id.clone(),
                bbox: entry.bbox,
                fields_json: fields_json.to_string(),
                feature: feature.to_vec(),
            })
            .collect();
        let store = Arc::clone(&self.inner.store);
        let set_id = set.row.id.clone();
        blocking(self.timed(Stage::Store, move || store.insert_faces(&set_id, &rows))).await?;
        let faces = {
            let mut index = write(&set.index);
            let mut faces = Vec::with_capacity(entries.len());
            for (entry, feature) in entries {
                faces.push(set_face(&set.schema, &entry, None));
                index.insert(entry, &feature).map_err(|e| ServiceError::Internal(format!("index out of step: {e}")))?;
            }
            faces
        };
        drop(deleted);
        Ok(FacesResponse { face_set_id: set.row.id.clone(), face_set_name: set.row.name.clone(), faces })
    }

    /// One face by id, or a page of faces in insertion order.
    pub async fn faces(
        &self,
        caller: &Caller,
        project_id: &str,
        name: &str,
        query: FacesQuery,
    ) -> Result<FacesResponse, ServiceError> {
        caller.authorize(project_id, Action::ShowFaces)?;
        let set = self.find(project_id, name)?;
        let faces = match query {
            FacesQuery::ById(face_id) => {
                let face_id = FaceId::parse(&face_id).ok_or(ServiceError::FaceNotFound)?;
                let index = read(&set.index);
                let (entry, _) = index.get(face_id).ok_or(ServiceError::FaceNotFound)?;
                vec![set_face(&set.schema, entry, None)]
            }
            FacesQuery::Page { offset, limit } => {
                if offset < 0 {
                    return Err(ServiceError::InvalidParameter("offset must not be negative".into()));
                }
                if limit < 1 {
                    return Err(ServiceError::InvalidParameter("limit must be at least 1".into()));
                }
                if offset.saturating_add(limit) > MAX_LISTED_FACES {
                    return Err(ServiceError::InvalidParameter(format!(
                        "offset + limit must not exceed {MAX_LISTED_FACES}"
                    )));
                }
                let store = Arc::clone(&self.inner.store);
                let set_id = set.row.id.clone();
                let rows = blocking(move || store.faces_page(&set_id, offset as usize, limit as usize)).await?;
                rows.into_iter().map(face_of_row).collect::<Result<_, _>>()?
            }
        };
        Ok(FacesResponse { face_set_id: set.row.id.clone(), face_set_name: set.row.name.clone(), faces })
    }

    /// Changes the external image id and/or some custom fields of one face.
    pub async fn update_face(
        &self,
        caller: &Caller,
        project_id: &str,
        name: &str,
        req: UpdateFaceRequest,
    ) -> Result<FaceCountResponse, ServiceError> {
        caller.authorize(project_id, Action::UpdateFace)?;
        let set = self.find(project_id, name)?;
        if req.face_id.is_empty() {
            return Err(ServiceError::MissingParameter("face_id"));
        }
        if req.external_image_id.is_none() && req.external_fields.is_none() {
            return Err(ServiceError::MissingParameter("external_image_id or external_fields"));
        }
        let external_image_id = req.external_image_id.map(validate_external_image_id).transpose()?;
        let update = req.external_fields.as_ref().map(|value| parse_values(&set.schema, Some(value))).transpose()?;
        let face_id = FaceId::parse(&req.face_id).ok_or(ServiceError::FaceNotFound)?;

        let deleted = set.writer.lock().await;
        if *deleted {
            return Err(ServiceError::FaceSetNotFound(name.to_owned()));
        }
        let fields = {
            let index = read(&set.index);
            let (entry, _) = index.get(face_id).ok_or(ServiceError::FaceNotFound)?;
            update.map(|update| entry.fields.merged(&update))
        };
        let fields_json =
            fields.as_ref().map(|fields| Value::Object(set.schema.values_to_json(fields, None)).to_string());
        let store = Arc::clone(&self.inner.store);
        let set_id = set.row.id.clone();
        let stored_id = external_image_id.clone();
        let found = blocking(self.timed(Stage::Store, move || {
            store.update_face(&set_id, face_id.as_str(), stored_id.as_deref(), fields_json.as_deref())
        }))
        .await?;
        if !found {
            return Err(ServiceError::Internal(format!("face {face_id} is in the index but not in the store")));
        }
        write(&set.index).update(face_id, external_image_id.map(Into::into), fields);
        drop(deleted);
        Ok(set.counted(1))
    }

    /// Deletes the faces a [`DeleteFaces`] selects.
    pub async fn delete_faces(
        &self,
        caller: &Caller,
        project_id: &str,
        name: &str,
        which: DeleteFaces,
    ) -> Result<FaceCountResponse, ServiceError> {
        caller.authorize(project_id, Action::DeleteFaces)?;
        let set = self.find(project_id, name)?;
        let (selection, not_found) = match which {
            DeleteFaces::ByFaceId(id) if id.is_empty() => return Err(ServiceError::MissingParameter("face_id")),
            DeleteFaces::ByExternalImageId(id) if id.is_empty() => {
                return Err(ServiceError::MissingParameter("external_image_id"));
            }
            DeleteFaces::ByFilter(expression) if expression.is_empty() => {
                return Err(ServiceError::MissingParameter("filter"));
            }
            DeleteFaces::ByFaceId(id) => (Selection::FaceId(FaceId::parse(&id)), ServiceError::FaceNotFound),
            DeleteFaces::ByExternalImageId(id) => (Selection::ExternalImageId(id), ServiceError::NothingMatched),
            DeleteFaces::ByField { field, value } => {
                let filter = Filter::field_equals(&field, &value, &set.schema)
                    .map_err(|e| ServiceError::InvalidParameter(format!("{field}: {e}")))?;
                (Selection::Filter(filter), ServiceError::NothingMatched)
            }
            DeleteFaces::ByFilter(expression) => {
                (Selection::Filter(parse_filter(&expression, &set.schema)?), ServiceError::NothingMatched)
            }
        };

        let deleted = set.writer.lock().await;
        if *deleted {
            return Err(ServiceError::FaceSetNotFound(name.to_owned()));
        }
        let ids: Vec<FaceId> = {
            let index = read(&set.index);
            match &selection {
                Selection::FaceId(id) => id.filter(|&id| index.get(id).is_some()).into_iter().collect(),
                Selection::ExternalImageId(id) => index.with_external_image_id(id),
                Selection::Filter(filter) => index.select(filter),
            }
        };
        if ids.is_empty() {
            return Err(not_found);
        }
        let store = Arc::clone(&self.inner.store);
        let set_id = set.row.id.clone();
        let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
        blocking(self.timed(Stage::Store, move || {
            store.delete_faces(&set_id, &names.iter().map(String::as_str).collect::<Vec<_>>())
        }))
        .await?;
        {
            let mut index = write(&set.index);
            for id in &ids {
                index.remove(*id);
            }
        }
        drop(deleted);
        Ok(set.counted(ids.len()))
    }

    /// Searches the set for the faces most similar to the probe.
    pub async fn search(
        &self,
        caller: &Caller,
        project_id: &str,
        name: &str,
        req: SearchRequest,
    ) -> Result<SearchResponse, ServiceError> {
        caller.authorize(project_id, Action::SearchFace)?;
        let set = self.find(project_id, name)?;
        let query = Query::parse(&set.schema, &req)?;
        let feature = match req.probe {
            Probe::FaceId(face_id) => {
                let face_id = FaceId::parse(&face_id).ok_or(ServiceError::FaceNotFound)?;
                let index = read(&set.index);
                let (_, feature) = index.get(face_id).ok_or(ServiceError::FaceNotFound)?;
                feature.to_vec()
            }
            Probe::Image(image) => {
                let image = image.into_bytes("image", &self.fetcher).await?;
                let (_, feature) =
                    self.inner.engine.largest_face_feature(image).await?.ok_or(ServiceError::NoFaceToSearch)?;
                feature.to_vec()
            }
        };
        let faces =
            blocking(self.timed(Stage::Search, move || Ok::<_, ServiceError>(query.run(&set, &[feature]).remove(0))))
                .await?;
        Ok(SearchResponse { faces })
    }

    /// frs extension: searches the set for every face of the probe image (largest first, at most
    /// [`MAX_FACES_PER_IMAGE`]) in one call.
    pub async fn search_every_face(
        &self,
        caller: &Caller,
        project_id: &str,
        name: &str,
        req: SearchRequest,
    ) -> Result<MultiFaceSearchResponse, ServiceError> {
        caller.authorize(project_id, Action::SearchFace)?;
        let set = self.find(project_id, name)?;
        let query = Query::parse(&set.schema, &req)?;
        let Probe::Image(image) = req.probe else {
            return Err(ServiceError::InvalidParameter("multi-face search takes an image, not a face_id".into()));
        };
        let image = image.into_bytes("image", &self.fetcher).await?;
        let found = self.inner.engine.face_features(image, MAX_FACES_PER_IMAGE).await?;
        if found.is_empty() {
            return Err(ServiceError::NoFaceToSearch);
        }
        let features: Vec<Vec<f32>> = found.iter().map(|(_, feature)| feature.to_vec()).collect();
        let matches =
            blocking(self.timed(Stage::Search, move || Ok::<_, ServiceError>(query.run(&set, &features)))).await?;
        let results = found
            .iter()
            .zip(matches)
            .map(|((face, _), faces)| ProbeFaceMatches { bounding_box: face.bbox.into(), faces })
            .collect();
        Ok(MultiFaceSearchResponse { results })
    }

    /// Heap bytes of every set's in-memory index, by part (for benchmarks and metrics).
    pub fn heap_usage(&self) -> frs_index::HeapUsage {
        read(&self.inner.sets).values().fold(frs_index::HeapUsage::default(), |sum, set| {
            let usage = read(&set.index).heap_usage();
            frs_index::HeapUsage {
                features: sum.features + usage.features,
                codes: sum.codes + usage.codes,
                entries: sum.entries + usage.entries,
                id_map: sum.id_map + usage.id_map,
                field_values: sum.field_values + usage.field_values,
                columns: sum.columns + usage.columns,
            }
        })
    }

    /// Every face set's project, name and face count, unordered (for metrics).
    pub fn face_set_sizes(&self) -> Vec<FaceSetSize> {
        read(&self.inner.sets)
            .iter()
            .map(|((project_id, face_set_name), set)| FaceSetSize {
                project_id: project_id.clone(),
                face_set_name: face_set_name.clone(),
                faces: set.face_number(),
            })
            .collect()
    }

    /// `work` reporting its duration as `stage` to the engine's observer, for [`blocking`].
    fn timed<T>(&self, stage: Stage, work: impl FnOnce() -> T + Send + 'static) -> impl FnOnce() -> T + Send + 'static {
        let observer = Arc::clone(self.inner.engine.observer());
        move || {
            let started = Instant::now();
            let result = work();
            observer.stage(stage, started.elapsed());
            result
        }
    }

    fn find(&self, project_id: &str, name: &str) -> Result<Arc<FaceSet>, ServiceError> {
        read(&self.inner.sets)
            .get(&(project_id.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| ServiceError::FaceSetNotFound(name.to_owned()))
    }

    fn capacity(&self, requested: Option<i64>) -> Result<u32, ServiceError> {
        let max = self.inner.limits.max_face_set_capacity;
        let Some(requested) = requested else {
            return Ok(max.min(100_000));
        };
        match u32::try_from(requested) {
            Ok(capacity) if capacity > 0 && capacity % CAPACITY_STEP == 0 && capacity <= max => Ok(capacity),
            _ => Err(ServiceError::InvalidParameter(format!(
                "face_set_capacity must be a multiple of {CAPACITY_STEP} between {CAPACITY_STEP} and {max}"
            ))),
        }
    }
}

/// One face set's size, as [`FaceLibrary::face_set_sizes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceSetSize {
    pub project_id: String,
    pub face_set_name: String,
    pub faces: usize,
}

/// The faces a delete removes, resolved against the index under the set's writer lock.
enum Selection {
    /// `None` when the text is not a face id at all.
    FaceId(Option<FaceId>),
    ExternalImageId(String),
    Filter(Filter),
}

/// A validated search, ready to run on the index.
struct Query {
    top_n: usize,
    threshold: f32,
    filter: Option<Filter>,
    sort: Vec<frs_index::SortKey>,
    return_fields: Option<Vec<usize>>,
}

impl Query {
    fn parse(schema: &Schema, req: &SearchRequest) -> Result<Query, ServiceError> {
        let top_n = req.top_n.unwrap_or(10);
        if !(1..=MAX_TOP_N).contains(&top_n) {
            return Err(ServiceError::InvalidParameter(format!("top_n must be between 1 and {MAX_TOP_N}")));
        }
        let threshold = req.threshold.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(ServiceError::InvalidParameter("threshold must be between 0 and 1".into()));
        }
        let filter = req.filter.as_deref().filter(|f| !f.is_empty()).map(|f| parse_filter(f, schema)).transpose()?;
        let sort = match &req.sort {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => frs_index::parse_sort(value, schema).map_err(|e| match e {
                SortError::Unsupported(detail) => ServiceError::UnsupportedSort(detail),
                SortError::Malformed(detail) => ServiceError::InvalidParameter(format!("sort: {detail}")),
            })?,
        };
        let return_fields = match &req.return_fields {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let names = items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| {
                        ServiceError::InvalidParameter("return_fields must be an array of strings".into())
                    })?;
                Some(schema.positions(&names).map_err(|e| match e {
                    SchemaError::UnknownField(name) => ServiceError::UnknownReturnField(name),
                    other => ServiceError::InvalidParameter(format!("return_fields: {other}")),
                })?)
            }
            Some(_) => return Err(ServiceError::InvalidParameter("return_fields must be an array of strings".into())),
        };
        Ok(Query { top_n: top_n as usize, threshold: threshold as f32, filter, sort, return_fields })
    }

    /// The matches of each probe feature. Blocking (a scan of the set's features or sign codes).
    fn run(&self, set: &FaceSet, probes: &[Vec<f32>]) -> Vec<Vec<SearchFace>> {
        // The cosine bound is lowered by a rounding margin; the exact cut is made on the score.
        let params = SearchParams {
            top_n: self.top_n,
            min_cosine: frs_vision::cosine_of_score(self.threshold) - 1e-5,
            filter: self.filter.as_ref(),
            sort: &self.sort,
        };
        let index = read(&set.index);
        probes
            .iter()
            .map(|probe| {
                index
                    .search(probe, &params)
                    .into_iter()
                    .filter_map(|Hit { face_id, cosine }| {
                        let similarity = frs_vision::score_of_cosine(cosine);
                        if similarity < self.threshold {
                            return None;
                        }
                        let (entry, _) = index.get(face_id)?;
                        let face = set_face(&set.schema, entry, self.return_fields.as_deref());
                        Some(SearchFace {
                            bounding_box: face.bounding_box,
                            similarity: f64::from(similarity),
                            external_image_id: face.external_image_id,
                            face_id: face.face_id,
                            external_fields: face.external_fields,
                        })
                    })
                    .collect()
            })
            .collect()
    }
}

fn load_face_set(store: &Store, row: FaceSetRow, config: &IndexConfig) -> Result<FaceSet, ServiceError> {
    let corrupt = |what: String| ServiceError::Internal(format!("face set {} ({}): {what}", row.name, row.id));
    let schema_json: Value = serde_json::from_str(&row.schema_json).map_err(|e| corrupt(format!("schema: {e}")))?;
    let schema = Schema::parse(&schema_json).map_err(|e| corrupt(format!("schema: {e}")))?;
    let settings = config.settings();
    // The codes are made once every face is in, centred on all of them.
    let streaming = settings.ann.map(|ann| AnnSettings { exact_below: usize::MAX, ..ann });
    let mut index =
        FaceSetIndex::with_settings(schema.clone(), FEATURE_DIM, IndexSettings { ann: streaming, ..settings });
    index.reserve(store.count_faces(&row.id)?);
    let mut failure = None;
    store.for_each_face(&row.id, |face| {
        if failure.is_none()
            && let Err(e) = load_face(&schema, &mut index, face)
        {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(corrupt(e));
    }
    if let Some(ann) = settings.ann {
        let started = Instant::now();
        index.set_ann_settings(ann);
        if index.has_codes() {
            tracing::info!(
                face_set.id = %row.id,
                faces = index.len(),
                duration_ms = started.elapsed().as_millis() as u64,
                "sign codes made"
            );
        }
    }
    Ok(FaceSet { row, schema, index: RwLock::new(index), writer: Mutex::new(false) })
}

fn load_face(schema: &Schema, index: &mut FaceSetIndex, row: FaceRow) -> Result<(), String> {
    let face_id = FaceId::parse(&row.face_id).ok_or_else(|| format!("bad face id {:?}", row.face_id))?;
    let fields: Value = serde_json::from_str(&row.fields_json).map_err(|e| format!("face {face_id}: {e}"))?;
    let fields = schema.parse_values(&fields).map_err(|e| format!("face {face_id}: {e}"))?;
    let entry = FaceEntry { face_id, external_image_id: row.external_image_id.into(), bbox: row.bbox, fields };
    index.insert(entry, &row.feature).map_err(|e| format!("face {face_id}: {e}"))
}

fn face_of_row(row: FaceRow) -> Result<FaceSetFace, ServiceError> {
    let external_fields = match serde_json::from_str(&row.fields_json) {
        Ok(Value::Object(map)) => map,
        _ => return Err(ServiceError::Internal(format!("face {}: stored fields are not an object", row.face_id))),
    };
    Ok(FaceSetFace {
        bounding_box: bbox_of(row.bbox),
        external_fields,
        external_image_id: row.external_image_id,
        face_id: row.face_id,
    })
}

fn set_face(schema: &Schema, entry: &FaceEntry, only: Option<&[usize]>) -> FaceSetFace {
    FaceSetFace {
        bounding_box: bbox_of(entry.bbox),
        external_fields: schema.values_to_json(&entry.fields, only),
        external_image_id: entry.external_image_id.to_string(),
        face_id: entry.face_id.to_string(),
    }
}

fn parse_values(schema: &Schema, value: Option<&Value>) -> Result<FieldValues, ServiceError> {
    match value {
        None | Some(Value::Null) => Ok(FieldValues::default()),
        Some(value) => {
            schema.parse_values(value).map_err(|e| ServiceError::InvalidParameter(format!("external_fields: {e}")))
        }
    }
}

fn parse_filter(expression: &str, schema: &Schema) -> Result<Filter, ServiceError> {
    Filter::parse(expression, schema).map_err(|e| ServiceError::InvalidFilter(e.to_string()))
}

fn bbox_array(face: &Face) -> [i32; 4] {
    let b = BoundingBox::from(face.bbox);
    [b.top_left_x, b.top_left_y, b.width, b.height]
}

fn bbox_of([top_left_x, top_left_y, width, height]: [i32; 4]) -> BoundingBox {
    BoundingBox { top_left_x, top_left_y, width, height }
}

/// Face-set names: 1–64 characters of `[0-9A-Za-z_-]` (FRS §2.6).
fn validate_face_set_name(name: &str) -> Result<(), ServiceError> {
    if name.is_empty() {
        return Err(ServiceError::MissingParameter("face_set_name"));
    }
    if name.len() > 64 || !name.bytes().all(is_id_byte) {
        return Err(ServiceError::InvalidParameter(
            "face_set_name must be 1-64 characters of letters, digits, '-' and '_'".into(),
        ));
    }
    Ok(())
}

/// External image ids: 1–36 characters of `[0-9A-Za-z_-]` (FRS §2.10).
fn validate_external_image_id(id: String) -> Result<String, ServiceError> {
    if id.is_empty() || id.len() > 36 || !id.bytes().all(is_id_byte) {
        return Err(ServiceError::InvalidParameter(
            "external_image_id must be 1-36 characters of letters, digits, '-' and '_'".into(),
        ));
    }
    Ok(id)
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A random 8-character alphanumeric id, the shape of FRS's face and face-set ids.
fn random_id() -> String {
    FaceId::random().to_string()
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `YYYY-MM-DD hh:mm:ss` (UTC) of a unix time, the format of FRS's `create_date`.
fn format_utc(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let seconds = unix_seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// Runs blocking store or index work off the async runtime.
async fn blocking<T: Send + 'static, E: Into<ServiceError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::Internal(format!("blocking task failed: {e}")))?
        .map_err(Into::into)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dates_are_formatted_in_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1_525_916_679), "2018-05-10 01:44:39");
        assert_eq!(format_utc(951_825_600), "2000-02-29 12:00:00");
    }

    #[test]
    fn names_and_external_image_ids_follow_the_frs_rules() {
        assert!(validate_face_set_name("employees_2-a").is_ok());
        assert!(matches!(validate_face_set_name(""), Err(ServiceError::MissingParameter(_))));
        assert!(validate_face_set_name(&"a".repeat(65)).is_err());
        assert!(validate_face_set_name("has space").is_err());
        assert!(validate_external_image_id("emp-0042".into()).is_ok());
        assert!(validate_external_image_id("a".repeat(37)).is_err());
        assert!(validate_external_image_id("a/b".into()).is_err());
    }
}
