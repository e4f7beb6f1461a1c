//! The on-disk format: file layout, connection settings, schema creation and the version check.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::{Ctx, StoreError};

/// `PRAGMA application_id` of an frs database ("FRS1"), so a foreign SQLite file is not taken for ours.
pub(crate) const APPLICATION_ID: i64 = 0x4652_5331;

/// How long a connection waits for a lock held by another connection before failing with `SQLITE_BUSY`.
/// Within one process writes are serialised by the writer mutex, so this only matters against other
/// processes (e.g. the `sqlite3` shell) and for WAL checkpoints.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL size kept on disk after a checkpoint resets it (bytes); a bulk import or a large set deletion
/// may grow the WAL beyond this, and it is truncated back at the next reset.
const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

/// Format version 1. `faces.seq` is the rowid: SQLite gives a new row max(rowid)+1, so rowid order is
/// insertion order among the live rows of a set (no AUTOINCREMENT needed, a reused rowid of a deleted
/// last row is still above every live one).
///
/// Indexes, and why no more:
/// - `face_sets.id` UNIQUE and UNIQUE(project_id, name): the two lookups, and their invariants.
/// - `faces_by_face_id` UNIQUE(set_key, face_id): `face`, `update_face`, `delete_faces`, and the
///   uniqueness of a face id within a set.
/// - `faces_by_set` (set_key): every SQLite index ends with the rowid, so this is (set_key, seq) and
///   serves `faces_page`, `for_each_face` and `count_faces` in insertion order without a sort, and the
///   set deletion (and its foreign key). The UNIQUE(set_key, face_id) index cannot: within a set it is
///   ordered by face_id, not by insertion.
const SCHEMA_V1: &str = "
CREATE TABLE face_sets (
    key         INTEGER PRIMARY KEY,
    project_id  TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    id          TEXT    NOT NULL UNIQUE,
    capacity    INTEGER NOT NULL,
    schema_json TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
CREATE TABLE faces (
    seq               INTEGER PRIMARY KEY,
    set_key           INTEGER NOT NULL REFERENCES face_sets (key) ON DELETE CASCADE,
    face_id           TEXT    NOT NULL,
    external_image_id TEXT    NOT NULL,
    bbox_x            INTEGER NOT NULL,
    bbox_y            INTEGER NOT NULL,
    bbox_w            INTEGER NOT NULL,
    bbox_h            INTEGER NOT NULL,
    fields_json       TEXT    NOT NULL,
    feature           BLOB    NOT NULL
);
CREATE UNIQUE INDEX faces_by_face_id ON faces (set_key, face_id);
CREATE INDEX faces_by_set ON faces (set_key);
";

/// Format version 2: the credentials (secrets sealed by the service, opaque here) and the audit log.
/// `audit_log.seq` is the rowid, so rowid order is insertion order; `audit_log_by_project` is
/// (project_id, seq) and serves a project's most recent records without a sort.
const MIGRATION_V2: &str = "
CREATE TABLE credentials (
    access_key    TEXT    PRIMARY KEY,
    project_id    TEXT    NOT NULL,
    policy        TEXT    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    enabled       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    description   TEXT
) WITHOUT ROWID;
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    time_ms    INTEGER NOT NULL,
    access_key TEXT    NOT NULL,
    project_id TEXT    NOT NULL,
    operation  TEXT    NOT NULL,
    target     TEXT,
    status     INTEGER NOT NULL,
    error_code TEXT,
    request_id TEXT    NOT NULL
);
CREATE INDEX audit_log_by_project ON audit_log (project_id);
";

/// Format version 3: `settings`, facts about the whole store (see `Store::bind_feature_model`).
const MIGRATION_V3: &str = "
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// `MIGRATIONS[v - 1]` takes a database from version `v` to `v + 1`. A fresh file is created as
/// version 1 and migrated like an old one, so both end with the same schema.
const MIGRATIONS: [&str; 2] = [MIGRATION_V2, MIGRATION_V3];

/// Opens the writer connection on `db`, creating and initialising a fresh file, migrating an older
/// format, and checks the format. Safe against another process opening the same file at once: the
/// version is read and changed inside one write transaction.
pub(crate) fn open_writer(db: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ctx("open database")?;
    conn.busy_timeout(BUSY_TIMEOUT).ctx("busy_timeout")?;

    // Checked before any setting changes, so a foreign or newer file is left as it was.
    if checked_version(&conn, db)? == 0 {
        // INCREMENTAL rather than FULL: FULL relocates pages at every commit that frees any (each face
        // deletion would pay for it); INCREMENTAL keeps freed pages on the freelist, where later inserts
        // reuse them, and the store returns them to the file system with `incremental_vacuum` after a
        // face set deletion, the one operation that frees much at once. It can only be chosen before
        // the first table; on a file that has tables this is a no-op.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").ctx("auto_vacuum")?;
    }
    // WAL: readers never wait for the writer and a commit is one append + fsync of the WAL.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).ctx("journal_mode")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!("journal_mode=WAL refused (got {mode})")));
    }
    // FULL: the WAL is fsynced at every commit, so a write that returned Ok survives a power cut
    // (NORMAL would only survive a process crash).
    conn.pragma_update(None, "synchronous", "FULL").ctx("synchronous")?;
    conn.pragma_update(None, "foreign_keys", true).ctx("foreign_keys")?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT).ctx("journal_size_limit")?;
    upgrade(&mut conn, db)?;
    Ok(conn)
}

/// The file's format version, 0 for an empty file; an error for a foreign or unsupported file.
fn checked_version(conn: &Connection, db: &Path) -> Result<i64, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).ctx("read user_version")?;
    let objects: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).ctx("read sqlite_schema")?;
    match version {
        0 if objects == 0 => Ok(0),
        1..=crate::Store::FORMAT_VERSION => {
            let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).ctx("read application_id")?;
            if app != APPLICATION_ID {
                return Err(StoreError::Backend(format!(
                    "{} is an SQLite database of another application (application_id {app:#x})",
                    db.display()
                )));
            }
            Ok(version)
        }
        found => Err(StoreError::UnsupportedFormat { found, expected: crate::Store::FORMAT_VERSION }),
    }
}

/// Brings the file to [`crate::Store::FORMAT_VERSION`] in one transaction, so a crash leaves it
/// either as it was (done again at next open) or complete at the current version.
fn upgrade(conn: &mut Connection, db: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin")?;
    let from = match checked_version(&tx, db)? {
        0 => {
            tx.execute_batch(SCHEMA_V1).ctx("create schema")?;
            tx.pragma_update(None, "application_id", APPLICATION_ID).ctx("application_id")?;
            1
        }
        version => version,
    };
    if from == crate::Store::FORMAT_VERSION {
        return Ok(());
    }
    for (version, migration) in (from..).zip(&MIGRATIONS[usize::try_from(from - 1).ctx("version")?..]) {
        tx.execute_batch(migration).ctx(&format!("migrate from format {version}"))?;
    }
    tx.pragma_update(None, "user_version", crate::Store::FORMAT_VERSION).ctx("user_version")?;
    tx.commit().ctx("commit schema")
}

/// Opens one read-only connection (`query_only`) on an initialised database.
pub(crate) fn open_reader(db: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .ctx("open reader")?;
    conn.busy_timeout(BUSY_TIMEOUT).ctx("busy_timeout")?;
    conn.pragma_update(None, "query_only", true).ctx("query_only")?;
    Ok(conn)
}

/// Fsyncs a directory so that file creations in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::Backend(format!("fsync {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccessStore, CredentialRow, FaceRow, Store};

    /// `(type, name, sql)` of every schema object, sorted.
    fn schema_of(db: &Path) -> Vec<(String, String, Option<String>)> {
        let conn = Connection::open(db).expect("open");
        let mut stmt = conn.prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name").expect("prepare");
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query");
        rows.collect::<rusqlite::Result<_>>().expect("rows")
    }

    /// A data directory as a version-1 build left it, with one face set and one face.
    fn version_1_directory() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join(Store::FILE_NAME)).expect("open");
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").expect("auto_vacuum");
        conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
        conn.execute_batch(SCHEMA_V1).expect("v1 schema");
        conn.pragma_update(None, "application_id", APPLICATION_ID).expect("application_id");
        conn.pragma_update(None, "user_version", 1).expect("user_version");
        conn.execute_batch(
            "INSERT INTO face_sets VALUES (1, 'p', 'staff', 'SET00001', 100000, '{}', 1700000000);
             INSERT INTO faces VALUES (1, 1, 'f0000001', 'img', 1, 2, 3, 4, '{\"dept\":7}', x'0000803f00000040');",
        )
        .expect("v1 rows");
        dir
    }

    #[test]
    fn version_1_is_migrated_to_the_fresh_schema_with_its_faces_untouched() {
        let dir = version_1_directory();
        let db = dir.path().join(Store::FILE_NAME);
        let before = schema_of(&db);
        let store = Store::open(dir.path()).expect("a version-1 directory opens");
        let sets = store.face_sets().expect("sets");
        assert_eq!((sets.len(), sets[0].name.as_str(), sets[0].id.as_str()), (1, "staff", "SET00001"));
        let mut faces = Vec::new();
        store.for_each_face("SET00001", |f| faces.push(f)).expect("faces");
        let face = FaceRow {
            face_id: "f0000001".into(),
            external_image_id: "img".into(),
            bbox: [1, 2, 3, 4],
            fields_json: r#"{"dept":7}"#.into(),
            feature: vec![1.0, 2.0],
        };
        assert_eq!(faces, [face]);
        store
            .access()
            .insert_credential(&CredentialRow {
                access_key: "AK".into(),
                project_id: "p".into(),
                policy: "full".into(),
                sealed_secret: vec![0],
                enabled: true,
                created_at: 0,
                description: None,
            })
            .expect("the new tables exist");
        drop(store);

        let after = schema_of(&db);
        assert!(before.iter().all(|object| after.contains(object)), "version-1 objects are unchanged");
        let fresh = tempfile::tempdir().expect("tempdir");
        drop(AccessStore::open(fresh.path()).expect("fresh"));
        assert_eq!(after, schema_of(&fresh.path().join(Store::FILE_NAME)), "migrated = fresh");
        let conn = Connection::open(&db).expect("open");
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(version, Store::FORMAT_VERSION);
        drop(Store::open(dir.path()).expect("a migrated directory opens again"));
    }
}
