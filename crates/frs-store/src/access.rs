//! The access data: credentials (with their secrets sealed by the service, opaque bytes here) and
//! the audit log of mutating calls.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{OptionalExtension, Row, params};

use crate::{Ctx, Db, StoreError, to_i64};

/// One access-key credential.
#[derive(Clone, Debug, PartialEq)]
pub struct CredentialRow {
    /// The access key (AK), unique in the store.
    pub access_key: String,
    /// The only project the credential acts on.
    pub project_id: String,
    /// The policy's name (`full`, `read-only`, `search-only`), stored verbatim.
    pub policy: String,
    /// The secret key, encrypted by the service; never the plain secret.
    pub sealed_secret: Vec<u8>,
    /// A disabled credential authenticates nothing.
    pub enabled: bool,
    /// Creation time, unix seconds, UTC.
    pub created_at: i64,
    /// The operator's note.
    pub description: Option<String>,
}

/// One audited call. Never carries images, features or secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    /// When the request arrived, unix milliseconds, UTC.
    pub time_ms: i64,
    /// The authenticated (or, for a failed authentication, the claimed) access key; `-` for none.
    pub access_key: String,
    /// The project of the call.
    pub project_id: String,
    /// The operation's stable name (`addFaces`, …).
    pub operation: String,
    /// The face set the call named, if any.
    pub target: Option<String>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The FRS error code of a failed call.
    pub error_code: Option<String>,
    /// The `X-Request-Id` of the answer.
    pub request_id: String,
}

/// Which audit records to read.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery<'a> {
    /// Only this project's records.
    pub project_id: Option<&'a str>,
    /// Only records at or after this time (unix milliseconds).
    pub since_ms: Option<i64>,
    /// At most this many, the most recent ones.
    pub limit: usize,
}

/// Credentials and the audit log of one data directory. Cheap to clone; every method blocks.
///
/// Either shares the connections of a [`crate::Store`] ([`crate::Store::access`]) or is opened on
/// its own with [`AccessStore::open`], which takes no data-directory lock: an operator tool may
/// manage credentials and read the audit log while a server has the directory open.
#[derive(Clone)]
pub struct AccessStore {
    db: Arc<Db>,
}

impl std::fmt::Debug for AccessStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessStore").field("db", &self.db.path).finish_non_exhaustive()
    }
}

const CREDENTIAL_COLUMNS: &str = "access_key, project_id, policy, sealed_secret, enabled, created_at, description";
const AUDIT_COLUMNS: &str = "time_ms, access_key, project_id, operation, target, status, error_code, request_id";

fn credential_row(row: &Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok(CredentialRow {
        access_key: row.get(0)?,
        project_id: row.get(1)?,
        policy: row.get(2)?,
        sealed_secret: row.get(3)?,
        enabled: row.get(4)?,
        created_at: row.get(5)?,
        description: row.get(6)?,
    })
}

fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        time_ms: row.get(0)?,
        access_key: row.get(1)?,
        project_id: row.get(2)?,
        operation: row.get(3)?,
        target: row.get(4)?,
        status: row.get(5)?,
        error_code: row.get(6)?,
        request_id: row.get(7)?,
    })
}

impl AccessStore {
    pub(crate) fn new(db: Arc<Db>) -> AccessStore {
        AccessStore { db }
    }

    /// Opens `dir/frs.db` (creating, initialising or migrating it as [`crate::Store::open`] does)
    /// without taking the data-directory lock.
    pub fn open(dir: &Path) -> Result<AccessStore, StoreError> {
        Ok(AccessStore { db: Arc::new(Db::open(dir)?) })
    }

    /// Adds a credential; an access key already in the store is a `Backend` error.
    pub fn insert_credential(&self, row: &CredentialRow) -> Result<(), StoreError> {
        let conn = self.db.writer();
        conn.prepare_cached(&format!(
            "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ))
        .and_then(|mut s| {
            s.execute(params![
                row.access_key,
                row.project_id,
                row.policy,
                row.sealed_secret,
                row.enabled,
                row.created_at,
                row.description
            ])
        })
        .ctx("insert_credential")?;
        Ok(())
    }

    /// One credential as currently committed, or `None`.
    pub fn credential(&self, access_key: &str) -> Result<Option<CredentialRow>, StoreError> {
        let conn = self.db.reader()?;
        conn.prepare_cached(&format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE access_key = ?1"))
            .and_then(|mut s| s.query_row([access_key], credential_row).optional())
            .ctx("credential")
    }

    /// Every credential, oldest first.
    pub fn credentials(&self) -> Result<Vec<CredentialRow>, StoreError> {
        let conn = self.db.reader()?;
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, access_key"))
            .ctx("credentials")?;
        let rows = stmt.query_map([], credential_row).ctx("credentials")?;
        rows.collect::<rusqlite::Result<Vec<_>>>().ctx("credentials")
    }

    /// Enables or disables a credential; `Ok(false)` if absent.
    pub fn set_credential_enabled(&self, access_key: &str, enabled: bool) -> Result<bool, StoreError> {
        let conn = self.db.writer();
        let changed = conn
            .prepare_cached("UPDATE credentials SET enabled = ?2 WHERE access_key = ?1")
            .and_then(|mut s| s.execute(params![access_key, enabled]))
            .ctx("set_credential_enabled")?;
        Ok(changed > 0)
    }

    /// Deletes a credential; `Ok(false)` if absent. Its audit records stay.
    pub fn delete_credential(&self, access_key: &str) -> Result<bool, StoreError> {
        let conn = self.db.writer();
        let deleted = conn
            .prepare_cached("DELETE FROM credentials WHERE access_key = ?1")
            .and_then(|mut s| s.execute([access_key]))
            .ctx("delete_credential")?;
        Ok(deleted > 0)
    }

    /// Appends one record; durable (fsynced) when it returns.
    pub fn insert_audit(&self, row: &AuditRow) -> Result<(), StoreError> {
        let conn = self.db.writer();
        conn.prepare_cached(&format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))
        .and_then(|mut s| {
            s.execute(params![
                row.time_ms,
                row.access_key,
                row.project_id,
                row.operation,
                row.target,
                row.status,
                row.error_code,
                row.request_id
            ])
        })
        .ctx("insert_audit")?;
        Ok(())
    }

    /// The most recent `query.limit` records that match, oldest first.
    pub fn audit(&self, query: &AuditQuery<'_>) -> Result<Vec<AuditRow>, StoreError> {
        let conn = self.db.reader()?;
        let since = query.since_ms.unwrap_or(i64::MIN);
        let limit = to_i64(query.limit);
        let mut rows: Vec<AuditRow> = match query.project_id {
            Some(project) => conn
                .prepare_cached(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE project_id = ?1 AND time_ms >= ?2
                     ORDER BY seq DESC LIMIT ?3"
                ))
                .and_then(|mut s| s.query_map(params![project, since, limit], audit_row)?.collect()),
            None => conn
                .prepare_cached(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE time_ms >= ?1 ORDER BY seq DESC LIMIT ?2"
                ))
                .and_then(|mut s| s.query_map(params![since, limit], audit_row)?.collect()),
        }
        .ctx("audit")?;
        rows.reverse();
        Ok(rows)
    }
}
