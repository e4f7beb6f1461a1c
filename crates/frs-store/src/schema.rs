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

/// Opens the writer connection on `db`, creating and initialising a fresh file, and checks the format.
pub(crate) fn open_writer(db: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ctx("open database")?;
    conn.busy_timeout(BUSY_TIMEOUT).ctx("busy_timeout")?;

    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).ctx("read user_version")?;
    let objects: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).ctx("read sqlite_schema")?;
    match version {
        0 if objects == 0 => initialise(&mut conn)?,
        crate::Store::FORMAT_VERSION => {
            let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).ctx("read application_id")?;
            if app != APPLICATION_ID {
                return Err(StoreError::Backend(format!(
                    "{} is an SQLite database of another application (application_id {app:#x})",
                    db.display()
                )));
            }
        }
        found => return Err(StoreError::UnsupportedFormat { found, expected: crate::Store::FORMAT_VERSION }),
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
    Ok(conn)
}

/// Opens one read-only connection (`query_only`) on an initialised database.
pub(crate) fn open_reader(db: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .ctx("open reader")?;
    conn.busy_timeout(BUSY_TIMEOUT).ctx("busy_timeout")?;
    conn.pragma_update(None, "query_only", true).ctx("query_only")?;
    Ok(conn)
}

/// Gives a fresh, empty file the current format: page layout settings first (auto_vacuum can only be
/// chosen before the first table), then the schema and the version in one transaction, so a crash
/// leaves either an empty file (initialised again at next open) or a complete version-1 database.
fn initialise(conn: &mut Connection) -> Result<(), StoreError> {
    // INCREMENTAL rather than FULL: FULL relocates pages at every commit that frees any (each face
    // deletion would pay for it); INCREMENTAL keeps freed pages on the freelist, where later inserts
    // reuse them, and the store returns them to the file system with `incremental_vacuum` after a
    // face set deletion, the one operation that frees much at once.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").ctx("auto_vacuum")?;
    conn.pragma_update(None, "journal_mode", "WAL").ctx("journal_mode")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin")?;
    tx.execute_batch(SCHEMA_V1).ctx("create schema")?;
    tx.pragma_update(None, "application_id", APPLICATION_ID).ctx("application_id")?;
    tx.pragma_update(None, "user_version", crate::Store::FORMAT_VERSION).ctx("user_version")?;
    tx.commit().ctx("commit schema")
}

/// Fsyncs a directory so that file creations in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::Backend(format!("fsync {}: {e}", dir.display())))
}
