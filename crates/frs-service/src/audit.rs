//! The audit log: one durable record per audited call ([`crate::Action::is_audited`]), written by
//! the transport once the answer is known and read by the operator. A record holds who, what, on
//! which project and face set, and the outcome; never images, features or secrets.

use frs_store::{AccessStore, AuditQuery, AuditRow};
use serde::{Serialize, Serializer};

use crate::ServiceError;
use crate::credentials::blocking;

/// The access key of a record when authentication is disabled (or no key was presented).
pub const NO_ACCESS_KEY: &str = "-";

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When the request arrived, unix milliseconds; serialized as RFC 3339 UTC (`time`).
    #[serde(rename = "time", serialize_with = "rfc3339_millis")]
    pub time_ms: i64,
    /// The authenticated key, the claimed one when authentication failed, or [`NO_ACCESS_KEY`].
    pub access_key: String,
    pub project_id: String,
    /// [`crate::Action::name`] of the call.
    pub operation: String,
    /// The face set named by the call.
    pub target: Option<String>,
    /// HTTP status of the answer.
    pub status: u16,
    /// FRS error code of a failed call.
    pub error_code: Option<String>,
    /// `X-Request-Id` of the answer.
    pub request_id: String,
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this project's.
    pub project_id: Option<String>,
    /// Only those at or after this time (unix milliseconds).
    pub since_ms: Option<i64>,
    /// At most this many, the most recent.
    pub limit: usize,
}

/// The audit log use-case. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    store: AccessStore,
}

impl AuditLog {
    /// The audit log kept in `store`.
    pub fn new(store: AccessStore) -> AuditLog {
        AuditLog { store }
    }

    /// Appends a record; durable when it returns.
    pub async fn record(&self, record: AuditRecord) -> Result<(), ServiceError> {
        let store = self.store.clone();
        blocking(move || {
            store.insert_audit(&AuditRow {
                time_ms: record.time_ms,
                access_key: record.access_key,
                project_id: record.project_id,
                operation: record.operation,
                target: record.target,
                status: record.status,
                error_code: record.error_code,
                request_id: record.request_id,
            })
        })
        .await
    }

    /// The most recent `filter.limit` matching records, oldest first.
    pub async fn records(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, ServiceError> {
        let store = self.store.clone();
        let rows = blocking(move || {
            store.audit(&AuditQuery {
                project_id: filter.project_id.as_deref(),
                since_ms: filter.since_ms,
                limit: filter.limit,
            })
        })
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| AuditRecord {
                time_ms: row.time_ms,
                access_key: row.access_key,
                project_id: row.project_id,
                operation: row.operation,
                target: row.target,
                status: row.status,
                error_code: row.error_code,
                request_id: row.request_id,
            })
            .collect())
    }
}

fn rfc3339_millis<S: Serializer>(time_ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    let text = jiff::Timestamp::from_millisecond(*time_ms).map_or_else(|_| time_ms.to_string(), |t| t.to_string());
    serializer.serialize_str(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_round_trip_and_serialize_with_an_rfc3339_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::new(AccessStore::open(dir.path()).expect("store"));
        let record = AuditRecord {
            time_ms: 1_800_000_000_250,
            access_key: NO_ACCESS_KEY.into(),
            project_id: "p1".into(),
            operation: "createFaceSet".into(),
            target: Some("staff".into()),
            status: 200,
            error_code: None,
            request_id: "0".repeat(32),
        };
        log.record(record.clone()).await.expect("record");
        let read = log.records(AuditFilter { limit: 10, ..Default::default() }).await.expect("read");
        assert_eq!(read, std::slice::from_ref(&record));
        let json = serde_json::to_value(&record).expect("json");
        assert_eq!(json["time"], "2027-01-15T08:00:00.25Z");
        assert_eq!(json["target"], "staff");
        assert!(json["error_code"].is_null());
    }
}
