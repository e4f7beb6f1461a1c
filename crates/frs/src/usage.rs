//! `frs usage`: the calls counted per project and operation, with what is left of each quota, read
//! from the usage file the server saves (`[quota] save_interval_secs`), so it works beside a
//! running server and shows its counts as of the last save.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use frs_service::{USAGE_FILE, Usage, action_named, format_rfc3339};
use serde::Serialize;

use crate::config::Config;

#[derive(Args)]
pub struct UsageArgs {
    /// Only this project's counters.
    #[arg(long)]
    project: Option<String>,
}

/// One line of `frs usage`.
#[derive(Debug, PartialEq, Serialize)]
struct UsageLine<'a> {
    project_id: &'a str,
    operation: &'a str,
    succeeded: u64,
    failed: u64,
    rate_limited: u64,
    quota_exhausted: u64,
    /// `[quota] max_calls` of this project and operation; `null` when unlimited.
    max_calls: Option<u64>,
    /// Successful calls left; `null` when unlimited.
    remaining: Option<u64>,
    /// When the server saved these counts (RFC 3339).
    saved_at: &'a str,
}

/// Prints one JSON object per project and operation, sorted by project then operation.
pub fn run(config: &Config, args: UsageArgs) -> anyhow::Result<()> {
    let path = config.storage.data_dir.join(USAGE_FILE);
    let usage = Usage::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    for line in lines(config, &usage, args.project.as_deref())? {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn lines(config: &Config, usage: &Usage, project: Option<&str>) -> anyhow::Result<Vec<String>> {
    let saved_at = format_rfc3339(usage.saved_at_ms.div_euclid(1000));
    let mut lines = Vec::new();
    for (project_id, actions) in usage.projects.iter().filter(|(id, _)| project.is_none_or(|p| p == id.as_str())) {
        for (operation, counts) in actions {
            let max_calls = action_named(operation).and_then(|action| config.quota.max_calls_for(project_id, action));
            let line = UsageLine {
                project_id,
                operation,
                succeeded: counts.succeeded,
                failed: counts.failed,
                rate_limited: counts.rate_limited,
                quota_exhausted: counts.quota_exhausted,
                max_calls,
                remaining: max_calls.map(|limit| limit.saturating_sub(counts.succeeded)),
                saved_at: &saved_at,
            };
            lines.push(serde_json::to_string(&line)?);
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use frs_service::CallCounts;

    use super::*;

    #[test]
    fn lines_show_the_counts_and_what_is_left_of_each_quota() {
        let mut config = Config::default();
        config.quota.max_calls.insert("addFaces".into(), 10);
        let counts = CallCounts { succeeded: 4, failed: 1, rate_limited: 2, quota_exhausted: 0 };
        let actions = BTreeMap::from([("addFaces".to_owned(), counts), ("searchFace".to_owned(), counts)]);
        let usage = Usage {
            format: 1,
            saved_at_ms: 1_764_000_000_000,
            projects: BTreeMap::from([("p1".to_owned(), actions.clone()), ("p2".to_owned(), actions)]),
        };
        let lines = lines(&config, &usage, Some("p1")).expect("lines");
        assert_eq!(lines.len(), 2);
        let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(
            first,
            serde_json::json!({"project_id": "p1", "operation": "addFaces", "succeeded": 4, "failed": 1,
                "rate_limited": 2, "quota_exhausted": 0, "max_calls": 10, "remaining": 6,
                "saved_at": "2025-11-24T16:00:00Z"})
        );
        let second: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
        assert_eq!((second["max_calls"].is_null(), second["remaining"].is_null()), (true, true));
        assert_eq!(super::lines(&config, &usage, None).expect("lines").len(), 4);
    }
}
