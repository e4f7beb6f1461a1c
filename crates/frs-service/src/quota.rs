//! Per-project rate limits and call quotas, and the call counters the operator reads.
//!
//! Contracts:
//! - **Rate**: one token bucket per project, shared by all its actions, refilled at
//!   `requests_per_second` up to `burst` tokens. A call that finds it empty is refused with
//!   [`ServiceError::RateLimited`] (`FRS.0033`), which says when a token will be back.
//! - **Quota**: `max_calls` caps the *successful* calls of an action per project, over the life of
//!   the usage file (like a pay-per-use package, failed calls are not charged). A call that could
//!   pass the cap is refused with [`ServiceError::QuotaExhausted`]. Calls in flight hold their
//!   place, so concurrent calls never pass the cap; a call that fails gives its place back.
//! - **A refused call changes nothing**: it takes no token and no quota, and is counted only as
//!   refused (`rate_limited`, `quota_exhausted`).
//! - **Durability**: the counters live in memory and are saved as JSON ([`USAGE_FILE`] in the data
//!   directory) by replacing the file atomically (temporary file, fsync, rename, directory fsync),
//!   every `save_interval_secs` when they changed and at shutdown. A crash loses at most the calls
//!   of the last interval; quotas then under-count by those calls. The operator reads the file
//!   beside a running server (`frs usage`).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

use crate::{Action, ServiceError};

/// The usage file's name in the data directory.
pub const USAGE_FILE: &str = "quota-usage.json";

/// The format version written in the usage file.
const USAGE_FORMAT: u32 = 1;

/// The number of actions, the length of the per-action tables.
const ACTIONS: usize = Action::ALL.len();

/// `[quota]`: rate limits and call quotas per project. The default limits nothing; calls are
/// counted either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Sustained requests per second of one project, all actions together; 0 means no rate limit.
    #[serde(deserialize_with = "rate")]
    pub requests_per_second: f64,
    /// Requests a project may send at once after being idle (the bucket size); 0 means one
    /// second's worth (`requests_per_second` rounded up, at least 1).
    pub burst: u32,
    /// Successful calls allowed per project, by action name (`addFaces`, `searchFace`, …, as in
    /// [`Action::name`], any letter case); absent actions are unlimited, 0 refuses every call.
    #[serde(deserialize_with = "action_limits")]
    pub max_calls: BTreeMap<String, u64>,
    /// Overrides for single projects, by project id.
    pub projects: BTreeMap<String, ProjectQuota>,
    /// Seconds between two saves of changed counters (at least 1).
    pub save_interval_secs: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            requests_per_second: 0.0,
            burst: 0,
            max_calls: BTreeMap::new(),
            projects: BTreeMap::new(),
            save_interval_secs: 1,
        }
    }
}

impl QuotaConfig {
    /// The successful calls of `action` that `project_id` may make, `None` for unlimited.
    pub fn max_calls_for(&self, project_id: &str, action: Action) -> Option<u64> {
        Limits::resolve(self, self.projects.get(project_id)).max_calls[action as usize]
    }
}

/// `[quota.projects.<project_id>]`: what one project gets instead of the `[quota]` values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectQuota {
    /// Replaces `requests_per_second` (0: no rate limit for this project).
    #[serde(deserialize_with = "optional_rate", skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    /// Replaces `burst`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Replaces the `max_calls` of the actions it names; the others keep the `[quota]` value.
    #[serde(deserialize_with = "action_limits")]
    pub max_calls: BTreeMap<String, u64>,
}

/// The action named `name` ([`Action::name`]), in any letter case: environment variables reach
/// the configuration lowercased.
pub fn action_named(name: &str) -> Option<Action> {
    Action::ALL.into_iter().find(|action| action.name().eq_ignore_ascii_case(name))
}

fn rate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!("requests_per_second must be a finite number ≥ 0, not {value}")))
    }
}

fn optional_rate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    rate(deserializer).map(Some)
}

/// A map from action names to limits, every name checked and written as [`Action::name`] spells it.
fn action_limits<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, u64>, D::Error> {
    let raw = BTreeMap::<String, u64>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(name, limit)| match action_named(&name) {
            Some(action) => Ok((action.name().to_owned(), limit)),
            None => {
                let known: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                Err(serde::de::Error::custom(format!(
                    "max_calls: unknown action {name:?}, the actions are {}",
                    known.join(", ")
                )))
            }
        })
        .collect()
}

/// The limits one project works under.
#[derive(Debug, Clone, PartialEq)]
struct Limits {
    /// Tokens per second and bucket size, when rate-limited.
    rate: Option<(f64, f64)>,
    /// Successful calls allowed, by action (`Action as usize`).
    max_calls: [Option<u64>; ACTIONS],
}

impl Limits {
    fn resolve(config: &QuotaConfig, project: Option<&ProjectQuota>) -> Limits {
        let rps = project.and_then(|p| p.requests_per_second).unwrap_or(config.requests_per_second);
        let burst = project.and_then(|p| p.burst).unwrap_or(config.burst);
        let rate = (rps > 0.0).then(|| {
            let burst = if burst == 0 { rps.ceil().max(1.0) } else { f64::from(burst) };
            (rps, burst)
        });
        let mut max_calls = [None; ACTIONS];
        let names = config.max_calls.iter().chain(project.into_iter().flat_map(|p| p.max_calls.iter()));
        for (name, limit) in names {
            if let Some(action) = action_named(name) {
                max_calls[action as usize] = Some(*limit);
            }
        }
        Limits { rate, max_calls }
    }
}

/// What happened to the calls of one action of one project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallCounts {
    /// Admitted calls answered with success (2xx); these use the `max_calls` quota.
    pub succeeded: u64,
    /// Admitted calls that failed (any error answer, or abandoned by the client).
    pub failed: u64,
    /// Calls refused by the rate limit (`FRS.0033`).
    pub rate_limited: u64,
    /// Calls refused because `max_calls` was reached (`APIG.0308`).
    pub quota_exhausted: u64,
}

/// The counters of every project, as saved in the usage file and shown to the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Format version of the file.
    pub format: u32,
    /// When this snapshot was taken, unix milliseconds.
    pub saved_at_ms: i64,
    /// Counts by project id, then by action name.
    pub projects: BTreeMap<String, BTreeMap<String, CallCounts>>,
}

impl Usage {
    /// Reads a usage file written by [`Quotas::save`]; a missing file is no usage.
    pub fn read(path: &Path) -> std::io::Result<Usage> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Usage::default()),
            Err(e) => return Err(e),
        };
        let usage: Usage = serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
        if usage.format > USAGE_FORMAT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: usage format {} is newer than this frs ({USAGE_FORMAT})", path.display(), usage.format),
            ));
        }
        Ok(usage)
    }
}

/// One project's bucket and counters.
#[derive(Debug)]
struct ProjectState {
    limits: Arc<Limits>,
    tokens: f64,
    refilled: Instant,
    counts: [CallCounts; ACTIONS],
    in_flight: [u64; ACTIONS],
}

impl ProjectState {
    fn new(limits: Arc<Limits>, now: Instant) -> ProjectState {
        let tokens = limits.rate.map_or(0.0, |(_, burst)| burst);
        ProjectState {
            limits,
            tokens,
            refilled: now,
            counts: [CallCounts::default(); ACTIONS],
            in_flight: [0; ACTIONS],
        }
    }
}

#[derive(Debug, Default)]
struct State {
    projects: HashMap<String, ProjectState>,
    /// Incremented at every counter change; compared with the last saved value.
    changes: u64,
}

#[derive(Debug)]
struct Inner {
    config: QuotaConfig,
    /// Limits of the projects without an override.
    default_limits: Arc<Limits>,
    /// Where the counters are saved; `None` keeps them in memory only.
    path: Option<PathBuf>,
    state: Mutex<State>,
    /// Serialises saves; holds the `changes` value last saved.
    saved: Mutex<u64>,
}

/// The live limits and counters of every project. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Quotas {
    inner: Arc<Inner>,
}

impl Default for Quotas {
    /// No limits, counters in memory only.
    fn default() -> Self {
        Quotas::in_memory(QuotaConfig::default())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Quotas {
    /// Limits of `config` with counters in memory only (tests, one-shot tools).
    pub fn in_memory(config: QuotaConfig) -> Quotas {
        Quotas::with_usage(config, None, Usage::default())
    }

    /// Limits of `config` with the counters saved in `path`, starting from what it holds.
    pub fn open(config: QuotaConfig, path: PathBuf) -> std::io::Result<Quotas> {
        let usage = Usage::read(&path)?;
        Ok(Quotas::with_usage(config, Some(path), usage))
    }

    fn with_usage(config: QuotaConfig, path: Option<PathBuf>, usage: Usage) -> Quotas {
        let default_limits = Arc::new(Limits::resolve(&config, None));
        let now = Instant::now();
        let mut state = State::default();
        for (project, actions) in usage.projects {
            let mut project_state = ProjectState::new(limits_of(&config, &default_limits, &project), now);
            for (name, counts) in actions {
                match action_named(&name) {
                    Some(action) => project_state.counts[action as usize] = counts,
                    None => tracing::warn!(quota.action = %name, "the usage file counts an unknown action; ignored"),
                }
            }
            state.projects.insert(project, project_state);
        }
        Quotas {
            inner: Arc::new(Inner { config, default_limits, path, state: Mutex::new(state), saved: Mutex::new(0) }),
        }
    }

    /// The configuration these quotas enforce.
    pub fn config(&self) -> &QuotaConfig {
        &self.inner.config
    }

    /// Admits one call of `action` by `project_id`, or refuses it (counted as refused, nothing
    /// else changes). The call holds its place in the quota until [`Permit::finish`].
    pub fn admit(&self, project_id: &str, action: Action) -> Result<Permit, ServiceError> {
        self.admit_at(project_id, action, Instant::now())
    }

    fn admit_at(&self, project_id: &str, action: Action, now: Instant) -> Result<Permit, ServiceError> {
        let slot = action as usize;
        let mut guard = lock(&self.inner.state);
        let state = &mut *guard;
        state.changes += 1;
        if !state.projects.contains_key(project_id) {
            let limits = limits_of(&self.inner.config, &self.inner.default_limits, project_id);
            state.projects.insert(project_id.to_owned(), ProjectState::new(limits, now));
        }
        let project = state
            .projects
            .get_mut(project_id)
            .ok_or_else(|| ServiceError::Internal("a project's quota state vanished".into()))?;
        if let Some(limit) = project.limits.max_calls[slot]
            && project.counts[slot].succeeded + project.in_flight[slot] >= limit
        {
            project.counts[slot].quota_exhausted += 1;
            return Err(ServiceError::QuotaExhausted { action: action.name(), limit });
        }
        if let Some((rps, burst)) = project.limits.rate {
            let elapsed = now.saturating_duration_since(project.refilled).as_secs_f64();
            project.tokens = (project.tokens + elapsed * rps).min(burst);
            project.refilled = now;
            if project.tokens < 1.0 {
                project.counts[slot].rate_limited += 1;
                let retry_after_secs = ((1.0 - project.tokens) / rps).ceil().max(1.0) as u64;
                return Err(ServiceError::RateLimited { retry_after_secs });
            }
            project.tokens -= 1.0;
        }
        project.in_flight[slot] += 1;
        Ok(Permit { quotas: self.clone(), project_id: project_id.to_owned(), action, finished: false })
    }

    fn finish(&self, project_id: &str, action: Action, succeeded: bool) {
        let slot = action as usize;
        let mut state = lock(&self.inner.state);
        state.changes += 1;
        if let Some(project) = state.projects.get_mut(project_id) {
            project.in_flight[slot] = project.in_flight[slot].saturating_sub(1);
            let counts = &mut project.counts[slot];
            if succeeded {
                counts.succeeded += 1;
            } else {
                counts.failed += 1;
            }
        }
    }

    /// A snapshot of every counter (calls in flight are not in it yet).
    pub fn usage(&self) -> Usage {
        self.snapshot().1
    }

    fn snapshot(&self) -> (u64, Usage) {
        let state = lock(&self.inner.state);
        let projects = state
            .projects
            .iter()
            .map(|(project, project_state)| {
                let actions = Action::ALL
                    .into_iter()
                    .zip(project_state.counts)
                    .filter(|(_, counts)| *counts != CallCounts::default())
                    .map(|(action, counts)| (action.name().to_owned(), counts))
                    .collect();
                (project.clone(), actions)
            })
            .filter(|(_, actions): &(String, BTreeMap<String, CallCounts>)| !actions.is_empty())
            .collect();
        let usage = Usage { format: USAGE_FORMAT, saved_at_ms: unix_ms(SystemTime::now()), projects };
        (state.changes, usage)
    }

    /// Writes the counters to the usage file if they changed since the last save (blocking: a
    /// file write and two fsyncs). Without a file, does nothing.
    pub fn save_blocking(&self) -> std::io::Result<()> {
        let Some(path) = &self.inner.path else {
            return Ok(());
        };
        let mut saved = lock(&self.inner.saved);
        if lock(&self.inner.state).changes == *saved && path.exists() {
            return Ok(());
        }
        let (changes, usage) = self.snapshot();
        let json = serde_json::to_vec_pretty(&usage).map_err(std::io::Error::other)?;
        let temporary = path.with_extension("json.tmp");
        {
            let mut file = std::fs::File::create(&temporary)?;
            std::io::Write::write_all(&mut file, &json)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary, path)?;
        #[cfg(unix)]
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        *saved = changes;
        Ok(())
    }

    /// [`Quotas::save_blocking`] off the async runtime.
    pub async fn save(&self) -> std::io::Result<()> {
        let quotas = self.clone();
        tokio::task::spawn_blocking(move || quotas.save_blocking()).await.map_err(std::io::Error::other)?
    }

    /// Saves changed counters every `save_interval_secs`, forever; failures are logged and retried
    /// at the next interval. Spawn it beside the server and call [`Quotas::save`] at shutdown.
    pub async fn save_periodically(self) {
        let interval = Duration::from_secs(self.inner.config.save_interval_secs.max(1));
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.save().await {
                tracing::error!(error.detail = %e, "saving the quota usage counters failed");
            }
        }
    }
}

fn limits_of(config: &QuotaConfig, default_limits: &Arc<Limits>, project_id: &str) -> Arc<Limits> {
    match config.projects.get(project_id) {
        Some(project) => Arc::new(Limits::resolve(config, Some(project))),
        None => Arc::clone(default_limits),
    }
}

/// An admitted call. [`Permit::finish`] records its outcome; dropped unfinished (the request was
/// abandoned), it counts as failed and gives its place in the quota back.
#[derive(Debug)]
#[must_use = "an admitted call must be finished with its outcome"]
pub struct Permit {
    quotas: Quotas,
    project_id: String,
    action: Action,
    finished: bool,
}

impl Permit {
    /// Records the call's outcome: a success uses one call of the quota, a failure gives the place
    /// back.
    pub fn finish(mut self, succeeded: bool) {
        self.finished = true;
        self.quotas.finish(&self.project_id, self.action, succeeded);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.finished {
            self.quotas.finish(&self.project_id, self.action, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rps: f64, burst: u32, max_calls: &[(&str, u64)]) -> QuotaConfig {
        let max_calls = max_calls.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        QuotaConfig { requests_per_second: rps, burst, max_calls, ..QuotaConfig::default() }
    }

    fn admitted(quotas: &Quotas, project: &str, action: Action, now: Instant) -> bool {
        match quotas.admit_at(project, action, now) {
            Ok(permit) => {
                permit.finish(true);
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn actions_index_their_tables_in_declaration_order() {
        for (i, action) in Action::ALL.into_iter().enumerate() {
            assert_eq!(action as usize, i);
            assert_eq!(action_named(&action.name().to_uppercase()), Some(action));
        }
        assert_eq!(action_named("search"), None);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate_and_says_when_to_retry() {
        let quotas = Quotas::in_memory(config(2.0, 3, &[]));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(admitted(&quotas, "p", Action::SearchFace, t0));
        }
        assert!(matches!(
            quotas.admit_at("p", Action::SearchFace, t0),
            Err(ServiceError::RateLimited { retry_after_secs: 1 })
        ));
        assert!(admitted(&quotas, "other", Action::SearchFace, t0), "projects have their own buckets");
        let t1 = t0 + Duration::from_millis(500);
        assert!(admitted(&quotas, "p", Action::DetectFace, t1), "half a second refills one token");
        assert!(!admitted(&quotas, "p", Action::DetectFace, t1));
        let usage = quotas.usage();
        assert_eq!(
            usage.projects["p"]["searchFace"],
            CallCounts { succeeded: 3, rate_limited: 1, ..Default::default() }
        );
        assert_eq!(
            usage.projects["p"]["detectFace"],
            CallCounts { succeeded: 1, rate_limited: 1, ..Default::default() }
        );
        let slow = Quotas::in_memory(config(0.1, 1, &[]));
        assert!(admitted(&slow, "p", Action::SearchFace, t0));
        assert!(matches!(
            slow.admit_at("p", Action::SearchFace, t0),
            Err(ServiceError::RateLimited { retry_after_secs: 10 })
        ));
    }

    #[test]
    fn the_default_burst_is_one_second_of_the_rate() {
        let quotas = Quotas::in_memory(config(2.5, 0, &[]));
        let t0 = Instant::now();
        let admitted = (0..10).filter(|_| admitted(&quotas, "p", Action::DetectFace, t0)).count();
        assert_eq!(admitted, 3);
        let unlimited = Quotas::default();
        assert!((0..1000).all(|_| super::tests::admitted(&unlimited, "p", Action::DetectFace, t0)));
    }

    #[test]
    fn quotas_count_successes_hold_places_in_flight_and_refusals_take_nothing() {
        let quotas = Quotas::in_memory(config(0.0, 0, &[("addFaces", 2)]));
        let first = quotas.admit("p", Action::AddFaces).expect("admitted");
        let second = quotas.admit("p", Action::AddFaces).expect("admitted");
        assert!(
            matches!(
                quotas.admit("p", Action::AddFaces),
                Err(ServiceError::QuotaExhausted { action: "addFaces", limit: 2 })
            ),
            "two calls in flight hold both places"
        );
        first.finish(false);
        drop(second);
        let third = quotas.admit("p", Action::AddFaces).expect("failed calls gave their places back");
        third.finish(true);
        quotas.admit("p", Action::AddFaces).expect("one place left").finish(true);
        assert!(matches!(quotas.admit("p", Action::AddFaces), Err(ServiceError::QuotaExhausted { .. })));
        assert!(quotas.admit("p", Action::SearchFace).is_ok(), "other actions are not limited");
        assert!(quotas.admit("q", Action::AddFaces).is_ok(), "other projects have their own quota");
        let counts = quotas.usage().projects["p"]["addFaces"];
        assert_eq!(counts, CallCounts { succeeded: 2, failed: 2, rate_limited: 0, quota_exhausted: 2 });
    }

    #[test]
    fn an_exhausted_quota_takes_no_token() {
        let quotas = Quotas::in_memory(config(1.0, 1, &[("addFaces", 0)]));
        let t0 = Instant::now();
        assert!(!admitted(&quotas, "p", Action::AddFaces, t0));
        assert!(admitted(&quotas, "p", Action::SearchFace, t0), "the token is still there");
    }

    #[test]
    fn project_overrides_replace_what_they_name() {
        let mut config = config(1.0, 1, &[("addFaces", 1), ("searchFace", 1)]);
        config.projects.insert(
            "big".into(),
            ProjectQuota {
                requests_per_second: Some(0.0),
                burst: None,
                max_calls: BTreeMap::from([("addFaces".to_owned(), 3)]),
            },
        );
        assert_eq!(config.max_calls_for("big", Action::AddFaces), Some(3));
        assert_eq!(config.max_calls_for("big", Action::SearchFace), Some(1));
        assert_eq!(config.max_calls_for("small", Action::AddFaces), Some(1));
        assert_eq!(config.max_calls_for("small", Action::DetectFace), None);
        let quotas = Quotas::in_memory(config);
        let t0 = Instant::now();
        assert_eq!((0..5).filter(|_| admitted(&quotas, "big", Action::AddFaces, t0)).count(), 3);
        assert_eq!((0..5).filter(|_| admitted(&quotas, "big", Action::SearchFace, t0)).count(), 1);
        assert_eq!((0..5).filter(|_| admitted(&quotas, "small", Action::DetectFace, t0)).count(), 1, "rate 1/s");
    }

    #[test]
    fn counters_survive_a_save_and_a_restart() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(USAGE_FILE);
        assert_eq!(Usage::read(&path).expect("missing is empty"), Usage::default());
        let limits = config(0.0, 0, &[("searchFace", 3)]);
        let quotas = Quotas::open(limits.clone(), path.clone()).expect("opens");
        for _ in 0..2 {
            quotas.admit("p", Action::SearchFace).expect("admitted").finish(true);
        }
        quotas.admit("p", Action::SearchFace).expect("admitted").finish(false);
        quotas.save_blocking().expect("saved");
        assert!(!path.with_extension("json.tmp").exists());
        let saved = Usage::read(&path).expect("reads");
        assert_eq!(saved.format, USAGE_FORMAT);
        assert_eq!(saved.projects["p"]["searchFace"], CallCounts { succeeded: 2, failed: 1, ..Default::default() });
        let restarted = Quotas::open(limits, path.clone()).expect("reopens");
        restarted.admit("p", Action::SearchFace).expect("one call left").finish(true);
        assert!(matches!(restarted.admit("p", Action::SearchFace), Err(ServiceError::QuotaExhausted { .. })));
        restarted.save_blocking().expect("saved");
        let counts = Usage::read(&path).expect("reads").projects["p"]["searchFace"];
        assert_eq!(counts, CallCounts { succeeded: 3, failed: 1, rate_limited: 0, quota_exhausted: 1 });
        std::fs::write(&path, "{not json").expect("write");
        assert!(Quotas::open(QuotaConfig::default(), path).is_err(), "a damaged file is not silently reset");
    }

    #[test]
    fn the_file_is_written_only_when_something_changed() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(USAGE_FILE);
        let quotas = Quotas::open(QuotaConfig::default(), path.clone()).expect("opens");
        quotas.admit("p", Action::DetectFace).expect("admitted").finish(true);
        quotas.save_blocking().expect("saved");
        let marker = Usage { format: USAGE_FORMAT, ..Usage::default() };
        std::fs::write(&path, serde_json::to_vec(&marker).expect("json")).expect("write");
        quotas.save_blocking().expect("nothing to save");
        assert_eq!(Usage::read(&path).expect("reads"), marker, "an unchanged state is not written again");
        quotas.admit("p", Action::DetectFace).expect("admitted").finish(false);
        quotas.save_blocking().expect("saved");
        let counts = Usage::read(&path).expect("reads").projects["p"]["detectFace"];
        assert_eq!(counts, CallCounts { succeeded: 1, failed: 1, ..Default::default() });
    }

    #[test]
    fn the_configuration_rejects_unknown_actions_and_bad_rates() {
        let parsed: QuotaConfig = serde_json::from_str(r#"{"max_calls": {"ADDFACES": 5}, "requests_per_second": 2}"#)
            .expect("case-insensitive names, integer rates");
        assert_eq!(parsed.max_calls, BTreeMap::from([("addFaces".to_owned(), 5)]));
        assert_eq!(parsed.requests_per_second, 2.0);
        let error = serde_json::from_str::<QuotaConfig>(r#"{"max_calls": {"search": 1}}"#).expect_err("unknown");
        assert!(error.to_string().contains("searchFace"), "{error}");
        let error = serde_json::from_str::<QuotaConfig>(r#"{"projects": {"p": {"max_calls": {"x": 1}}}}"#);
        assert!(error.is_err());
        assert!(serde_json::from_str::<QuotaConfig>(r#"{"requests_per_second": -1}"#).is_err());
        assert!(serde_json::from_str::<QuotaConfig>(r#"{"rps": 1}"#).is_err());
        assert_eq!(serde_json::from_str::<QuotaConfig>("{}").expect("empty"), QuotaConfig::default());
    }
}
