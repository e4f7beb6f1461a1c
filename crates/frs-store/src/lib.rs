//! Durable embedded storage of the face library: face sets and faces (features and metadata, never
//! images), and the access data (credentials, audit log), in one SQLite database, `<dir>/frs.db`.
//!
//! The store knows nothing of detection, schemas or filters: it persists the rows the service gives it.
//! The service keeps every face in memory (`frs-index`) and uses the store for durability, for listing
//! faces in insertion order, and for loading everything at start.
//!
//! # Durability
//! Every write method is one SQLite transaction in WAL mode with `synchronous=FULL`: when it returns
//! `Ok`, the transaction is fsynced and survives `kill -9` and a power cut; a crash at any other moment
//! leaves the database as it was before or after the whole transaction, never a half-written face or
//! batch. The file carries a format version (`PRAGMA user_version`) checked at open.
//!
//! # Concurrency
//! [`Store`] is `Send + Sync`, meant to be shared as `Arc<Store>`; every method blocks (call it from
//! `spawn_blocking`). Writes go through one writer connection behind a mutex; reads take a connection
//! from a small pool of read-only connections, so listing and counting never wait for a writer's fsync
//! (WAL readers see the last committed state) and several reads run at once.
//!
//! One [`Store`] per data directory: it holds an exclusive lock on `<dir>/frs.lock`, because the
//! service keeps the face data in memory. The access data is read at every use, so operator tools
//! may change it from another process while a server runs, through an [`AccessStore`] opened
//! without the lock (SQLite's WAL lets several processes share the file).

mod access;
mod schema;

use std::fs::{File, OpenOptions};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

pub use access::{AccessStore, AuditQuery, AuditRow, CredentialRow};

/// One face set. `id` is the 8-char FRS face_set_id, unique across projects; (project_id, name) is unique.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceSetRow {
    /// The owning project (tenant).
    pub project_id: String,
    /// `face_set_name`, unique within the project.
    pub name: String,
    /// `face_set_id`, unique in the store.
    pub id: String,
    /// `face_set_capacity`.
    pub capacity: u32,
    /// The custom-field schema (`external_fields` of the creation request) as JSON, stored verbatim.
    pub schema_json: String,
    /// Creation time, unix seconds, UTC.
    pub created_at: i64,
}

/// One stored face. `feature` is the L2-normalised embedding; any length is stored, as little-endian
/// f32 bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceRow {
    /// The face id, unique within its set.
    pub face_id: String,
    /// The caller's id of the source image.
    pub external_image_id: String,
    /// Bounding box in the source image: top-left x, top-left y, width, height.
    pub bbox: [i32; 4],
    /// The custom-field values as JSON, stored verbatim.
    pub fields_json: String,
    /// The embedding.
    pub feature: Vec<f32>,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// (project_id, name) already exists.
    #[error("face set already exists")]
    FaceSetExists,
    /// The data directory was written by another on-disk format version.
    #[error("the data directory has on-disk format version {found}, this build reads version {expected}")]
    UnsupportedFormat {
        /// The version found in the file (0: not an frs database).
        found: i64,
        /// [`Store::FORMAT_VERSION`].
        expected: i64,
    },
    /// The stored faces' features come from another recognizer than the configured one.
    #[error(
        "the faces in this data directory were computed by the recognizer `{stored}`, not the configured \
         `{configured}`: configure `{stored}` again, or use another data directory"
    )]
    FeatureModelMismatch { stored: String, configured: String },
    /// Anything else (I/O, SQLite, corruption); the message is for logs only.
    #[error("storage error: {0}")]
    Backend(String),
}

/// Space used by the database file, in SQLite pages (the WAL is not counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes per page.
    pub page_size: u64,
    /// Pages in the database, free ones included.
    pub page_count: u64,
    /// Free pages (reusable by later writes).
    pub freelist_count: u64,
}

impl DiskUsage {
    /// Size of the database in bytes, as it is once the WAL is checkpointed.
    pub fn bytes(&self) -> u64 {
        self.page_size * self.page_count
    }
}

/// Adds what was being done to a backend error; the result is for logs only.
pub(crate) trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, StoreError>;
}

impl<T, E: std::fmt::Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend(format!("{what}: {e}")))
    }
}

/// Idle read connections kept open; more are opened on demand when all are busy, and closed on return.
const MAX_IDLE_READERS: usize = 4;

/// The connections to one database file: shared by a [`Store`] and the [`AccessStore`]s it hands
/// out, so that within one process every write goes through the same writer.
pub(crate) struct Db {
    dir: PathBuf,
    path: PathBuf,
    /// The one connection that writes; holding the mutex is holding the right to write.
    writer: Mutex<Connection>,
    /// Idle read-only connections.
    readers: Mutex<Vec<Connection>>,
}

impl Db {
    /// Opens (creating, initialising or migrating as needed) `dir/frs.db`, creating `dir`.
    fn open(dir: &Path) -> Result<Db, StoreError> {
        std::fs::create_dir_all(dir).ctx(&format!("create {}", dir.display()))?;
        let path = dir.join(Store::FILE_NAME);
        let writer = schema::open_writer(&path)?;
        // The database and lock files (and `dir` itself) must survive a power cut once open returns.
        schema::sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            schema::sync_dir(parent)?;
        }
        let reader = schema::open_reader(&path)?;
        Ok(Db { dir: dir.to_owned(), path, writer: Mutex::new(writer), readers: Mutex::new(vec![reader]) })
    }

    pub(crate) fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => schema::open_reader(&self.path)?,
        };
        Ok(Reader { db: self, conn: Some(conn) })
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }
}

/// The embedded store. Send + Sync; share it as `Arc<Store>`. All methods are blocking.
pub struct Store {
    db: Arc<Db>,
    /// Exclusive advisory lock on `<dir>/frs.lock`, held while the store is open: a second process
    /// on the same directory would hold a stale in-memory index.
    _lock: File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("db", &self.db.path).finish_non_exhaustive()
    }
}

/// A read connection borrowed from the pool, returned on drop.
pub(crate) struct Reader<'a> {
    db: &'a Db,
    conn: Option<Connection>,
}

impl Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // NOTE: `conn` is Some from construction until drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!("reader used after drop"))
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = lock(&self.db.readers);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

/// Locks a mutex, ignoring poisoning: a panic while holding a connection unwinds through
/// `Transaction::drop`, which rolls back, so the connection is consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Converts a count or position to SQLite's i64, saturating (no real value comes near).
fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const FACE_COLUMNS: &str = "face_id, external_image_id, bbox_x, bbox_y, bbox_w, bbox_h, fields_json, feature";
const SET_KEY: &str = "(SELECT key FROM face_sets WHERE id = ?1)";

/// Encodes a feature as little-endian f32 bytes.
fn feature_bytes(feature: &[f32]) -> Vec<u8> {
    feature.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Decodes little-endian f32 bytes; a length that is not a multiple of 4 is corruption.
fn feature_from_bytes(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!("corrupt feature: {} bytes is not a whole number of f32", bytes.len()));
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Maps a row selected with [`FACE_COLUMNS`].
fn face_row(row: &Row<'_>) -> rusqlite::Result<FaceRow> {
    let feature = feature_from_bytes(row.get_ref(7)?.as_blob()?)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Blob, e.into()))?;
    Ok(FaceRow {
        face_id: row.get(0)?,
        external_image_id: row.get(1)?,
        bbox: [row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?],
        fields_json: row.get(6)?,
        feature,
    })
}

impl Store {
    /// The on-disk format this build reads and writes (`PRAGMA user_version`). Older versions are
    /// migrated at open: version 1 has the face sets and faces, 2 adds the credentials and the
    /// audit log, 3 the settings (the recognizer of [`Store::bind_feature_model`]).
    pub const FORMAT_VERSION: i64 = 3;

    /// The database file's name inside the data directory.
    pub const FILE_NAME: &'static str = "frs.db";

    /// Opens (creating if needed) `dir/frs.db`, creating `dir`. Migrates a file of an older format
    /// version, refuses any other with [`StoreError::UnsupportedFormat`]; a fresh file gets the
    /// current version. Fails with `Backend` if another [`Store`] (in any process) has the directory
    /// open; [`AccessStore::open`] does not count.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).ctx(&format!("create {}", dir.display()))?;
        let lock_path = dir.join("frs.lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ctx(&format!("open {}", lock_path.display()))?;
        lock_file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => {
                StoreError::Backend(format!("data directory {} is in use by another store", dir.display()))
            }
            std::fs::TryLockError::Error(e) => StoreError::Backend(format!("lock {}: {e}", lock_path.display())),
        })?;
        Ok(Store { db: Arc::new(Db::open(dir)?), _lock: lock_file })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.db.dir
    }

    /// The credentials and audit log of this store, sharing its connections.
    pub fn access(&self) -> AccessStore {
        AccessStore::new(Arc::clone(&self.db))
    }

    fn reader(&self) -> Result<Reader<'_>, StoreError> {
        self.db.reader()
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.db.writer()
    }

    /// Records `model` as the recognizer that computes the stored features, unless the store holds
    /// faces and records another recognizer: [`StoreError::FeatureModelMismatch`], and nothing
    /// changes. Features of two recognizers are not comparable, so a face library keeps its
    /// recognizer; a store without faces, or without a record (format < 3), takes `model`.
    pub fn bind_feature_model(&self, model: &str) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin")?;
        let stored: Option<String> = tx
            .query_row("SELECT value FROM settings WHERE key = 'feature_model'", [], |r| r.get(0))
            .optional()
            .ctx("read feature_model")?;
        if stored.as_deref() == Some(model) {
            return Ok(());
        }
        let has_faces: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM faces)", [], |r| r.get(0)).ctx("faces")?;
        if let Some(stored) = stored.filter(|_| has_faces) {
            return Err(StoreError::FeatureModelMismatch { stored, configured: model.to_owned() });
        }
        tx.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('feature_model', ?1)", [model])
            .ctx("write feature_model")?;
        tx.commit().ctx("commit")
    }

    /// Creates a face set; [`StoreError::FaceSetExists`] if (project_id, name) exists. An `id` already
    /// used by another set is a `Backend` error (ids are random; the caller may retry with a new one).
    pub fn create_face_set(&self, row: &FaceSetRow) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin")?;
        let exists = tx
            .prepare_cached("SELECT 1 FROM face_sets WHERE project_id = ?1 AND name = ?2")
            .and_then(|mut s| s.exists(params![row.project_id, row.name]))
            .ctx("create_face_set")?;
        if exists {
            return Err(StoreError::FaceSetExists);
        }
        tx.prepare_cached(
            "INSERT INTO face_sets (project_id, name, id, capacity, schema_json, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![row.project_id, row.name, row.id, row.capacity, row.schema_json, row.created_at])
        })
        .ctx("create_face_set")?;
        tx.commit().ctx("create_face_set commit")
    }

    /// Every face set of every project (loaded at start), ordered by project then creation.
    pub fn face_sets(&self) -> Result<Vec<FaceSetRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT project_id, name, id, capacity, schema_json, created_at FROM face_sets
                 ORDER BY project_id, key",
            )
            .ctx("face_sets")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(FaceSetRow {
                    project_id: r.get(0)?,
                    name: r.get(1)?,
                    id: r.get(2)?,
                    capacity: r.get(3)?,
                    schema_json: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })
            .ctx("face_sets")?;
        rows.collect::<rusqlite::Result<Vec<_>>>().ctx("face_sets")
    }

    /// Deletes the set and all its faces in one transaction; `Ok(false)` if absent.
    ///
    /// The freed pages are given back to the file system in the same transaction
    /// (`auto_vacuum=INCREMENTAL` + `incremental_vacuum`), and a passive checkpoint then shrinks the
    /// database file unless a reader still needs the old pages (the next checkpoint does it then).
    pub fn delete_face_set(&self, set_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin")?;
        let Some(key) = tx
            .prepare_cached("SELECT key FROM face_sets WHERE id = ?1")
            .and_then(|mut s| s.query_row([set_id], |r| r.get::<_, i64>(0)).optional())
            .ctx("delete_face_set")?
        else {
            return Ok(false);
        };
        // Explicit rather than through the cascade alone, so it does not depend on `foreign_keys`.
        tx.prepare_cached("DELETE FROM faces WHERE set_key = ?1")
            .and_then(|mut s| s.execute([key]))
            .ctx("delete_face_set faces")?;
        tx.prepare_cached("DELETE FROM face_sets WHERE key = ?1")
            .and_then(|mut s| s.execute([key]))
            .ctx("delete_face_set")?;
        // NOTE: incremental_vacuum frees one page per result row; it must be stepped to the end.
        tx.prepare_cached("PRAGMA incremental_vacuum")
            .and_then(|mut s| s.query([])?.mapped(|_| Ok(())).collect::<rusqlite::Result<()>>())
            .ctx("incremental_vacuum")?;
        tx.commit().ctx("delete_face_set commit")?;
        // Best effort: the space is already free inside the file; this only hands it back sooner.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        Ok(true)
    }

    /// Inserts all rows in one transaction (all or nothing), after the faces already in the set.
    /// A face_id already in the set (or twice in `faces`) or an unknown `set_id` is a `Backend` error
    /// and nothing is inserted. An empty `faces` is a no-op.
    pub fn insert_faces(&self, set_id: &str, faces: &[FaceRow]) -> Result<(), StoreError> {
        if faces.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin")?;
        let key = tx
            .prepare_cached("SELECT key FROM face_sets WHERE id = ?1")
            .and_then(|mut s| s.query_row([set_id], |r| r.get::<_, i64>(0)).optional())
            .ctx("insert_faces")?
            .ok_or_else(|| StoreError::Backend(format!("insert_faces: no face set {set_id}")))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO faces (set_key, face_id, external_image_id, bbox_x, bbox_y, bbox_w, bbox_h,
                                        fields_json, feature)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .ctx("insert_faces")?;
            for f in faces {
                let [x, y, w, h] = f.bbox;
                insert
                    .execute(params![
                        key,
                        f.face_id,
                        f.external_image_id,
                        x,
                        y,
                        w,
                        h,
                        f.fields_json,
                        feature_bytes(&f.feature)
                    ])
                    .ctx(&format!("insert_faces {}", f.face_id))?;
            }
        }
        tx.commit().ctx("insert_faces commit")
    }

    /// Deletes the listed faces in one transaction; returns how many existed (an id listed twice
    /// counts once). Unknown set: `Ok(0)`.
    pub fn delete_faces(&self, set_id: &str, face_ids: &[&str]) -> Result<usize, StoreError> {
        if face_ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin")?;
        let mut deleted = 0;
        {
            let mut delete = tx
                .prepare_cached(&format!("DELETE FROM faces WHERE set_key = {SET_KEY} AND face_id = ?2"))
                .ctx("delete_faces")?;
            for id in face_ids {
                deleted += delete.execute(params![set_id, id]).ctx("delete_faces")?;
            }
        }
        if deleted > 0 {
            tx.commit().ctx("delete_faces commit")?;
        }
        Ok(deleted)
    }

    /// Replaces external_image_id and/or fields_json of one face (a `None` keeps the value);
    /// `Ok(false)` if absent.
    pub fn update_face(
        &self,
        set_id: &str,
        face_id: &str,
        external_image_id: Option<&str>,
        fields_json: Option<&str>,
    ) -> Result<bool, StoreError> {
        let conn = self.writer();
        let changed = conn
            .prepare_cached(&format!(
                "UPDATE faces SET external_image_id = coalesce(?3, external_image_id),
                                  fields_json = coalesce(?4, fields_json)
                 WHERE set_key = {SET_KEY} AND face_id = ?2"
            ))
            .and_then(|mut s| s.execute(params![set_id, face_id, external_image_id, fields_json]))
            .ctx("update_face")?;
        Ok(changed > 0)
    }

    /// Faces in insertion order, skipping `offset`, at most `limit`. Unknown set: empty.
    pub fn faces_page(&self, set_id: &str, offset: usize, limit: usize) -> Result<Vec<FaceRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {FACE_COLUMNS} FROM faces WHERE set_key = {SET_KEY} ORDER BY seq LIMIT ?2 OFFSET ?3"
            ))
            .ctx("faces_page")?;
        let rows = stmt.query_map(params![set_id, to_i64(limit), to_i64(offset)], face_row).ctx("faces_page")?;
        rows.collect::<rusqlite::Result<Vec<_>>>().ctx("faces_page")
    }

    /// One face, or `None` if the set or the face does not exist.
    pub fn face(&self, set_id: &str, face_id: &str) -> Result<Option<FaceRow>, StoreError> {
        let conn = self.reader()?;
        conn.prepare_cached(&format!("SELECT {FACE_COLUMNS} FROM faces WHERE set_key = {SET_KEY} AND face_id = ?2"))
            .and_then(|mut s| s.query_row(params![set_id, face_id], face_row).optional())
            .ctx("face")
    }

    /// Number of faces in the set (0 for an unknown set).
    pub fn count_faces(&self, set_id: &str) -> Result<usize, StoreError> {
        let conn = self.reader()?;
        let n: i64 = conn
            .prepare_cached(&format!("SELECT count(*) FROM faces WHERE set_key = {SET_KEY}"))
            .and_then(|mut s| s.query_row([set_id], |r| r.get(0)))
            .ctx("count_faces")?;
        usize::try_from(n).ctx("count_faces")
    }

    /// Streams every face of a set in insertion order, one row at a time, from one consistent
    /// snapshot (writes committed meanwhile, even by `f`, are not seen). `f` may call other methods of
    /// the store. Stops at the first error (e.g. a corrupt row).
    pub fn for_each_face(&self, set_id: &str, mut f: impl FnMut(FaceRow)) -> Result<(), StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {FACE_COLUMNS} FROM faces WHERE set_key = {SET_KEY} ORDER BY seq"))
            .ctx("for_each_face")?;
        let mut rows = stmt.query([set_id]).ctx("for_each_face")?;
        while let Some(row) = rows.next().ctx("for_each_face")? {
            f(face_row(row).ctx("for_each_face")?);
        }
        Ok(())
    }

    /// Pages used and free in the database file.
    pub fn disk_usage(&self) -> Result<DiskUsage, StoreError> {
        let conn = self.reader()?;
        let get = |name: &str| -> Result<u64, StoreError> {
            let v: i64 = conn.pragma_query_value(None, name, |r| r.get(0)).ctx(name)?;
            u64::try_from(v).ctx(name)
        };
        Ok(DiskUsage {
            page_size: get("page_size")?,
            page_count: get("page_count")?,
            freelist_count: get("freelist_count")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_bytes_round_trip() {
        let f = vec![0.0, -1.5, f32::MIN_POSITIVE, 1e-30, 3.25];
        let b = feature_bytes(&f);
        assert_eq!(b.len(), 20);
        assert_eq!(&b[4..8], &(-1.5f32).to_le_bytes());
        assert_eq!(feature_from_bytes(&b), Ok(f));
        assert_eq!(feature_from_bytes(&[]), Ok(vec![]));
    }

    #[test]
    fn ragged_feature_is_an_error() {
        assert!(feature_from_bytes(&[0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }

    /// The listing queries walk `faces_by_set` in rowid order: no sort, no table scan.
    #[test]
    fn listing_uses_the_set_index_without_sorting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let conn = store.reader().expect("reader");
        for sql in [
            format!("SELECT {FACE_COLUMNS} FROM faces WHERE set_key = {SET_KEY} ORDER BY seq LIMIT ?2 OFFSET ?3"),
            format!("SELECT {FACE_COLUMNS} FROM faces WHERE set_key = {SET_KEY} AND face_id = ?2"),
            format!("SELECT count(*) FROM faces WHERE set_key = {SET_KEY}"),
        ] {
            let mut plan = String::new();
            conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .and_then(|mut s| {
                    let mut rows = s.raw_query();
                    while let Some(r) = rows.next()? {
                        plan.push_str(&r.get::<_, String>(3)?);
                        plan.push('\n');
                    }
                    Ok(())
                })
                .expect("plan");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n{plan}");
            assert!(!plan.contains("SCAN faces"), "{sql}\n{plan}");
            assert!(plan.contains("USING"), "{sql}\n{plan}");
        }
    }
}
