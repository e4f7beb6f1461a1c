//! The official Huawei Cloud Python SDK (`huaweicloudsdkfrs` 3.1.219, unmodified) against the real
//! `frs serve`: `tests/sdk/frs_sdk_e2e.py` calls every operation of the SDK's `FrsClient` that frs
//! serves and the error paths, and checks what the SDK parses.
//!
//! The script's pinned venv (`.cache/sdk-venv`, from PyPI) is created on the first run and reused
//! after; the test fails (never skips) when PyPI cannot provide it, or without the models and
//! sample photos of `scripts/setup.sh`.
//!
//! When the binary has the `credentials` subcommand, the server runs with authentication on: the
//! test creates a full-access and a read-only credential for the project and a full-access one for
//! another project in the data directory first, and the script signs with them and also checks
//! the refusals (wrong secret, unknown key, other project, read-only key, tampered requests,
//! tokens). Without it, authentication is off (`FRS__AUTH__ENABLED=false` where that key exists)
//! and any AK/SK is accepted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Server, repo_root};

mod common;

const PROJECT: &str = "sdk-e2e";
const OTHER_PROJECT: &str = "sdk-e2e-other";
const SCRIPT: &str = "tests/sdk/frs_sdk_e2e.py";
const VENV_PYTHON: &str = ".cache/sdk-venv/bin/python";
/// Longest the script may take (it needs ~10 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn official_python_sdk_runs_every_operation() {
    let started = Instant::now();
    check_assets();
    install_venv();
    let venv_ready = started.elapsed();

    let scratch = Scratch::new();
    let data_dir = scratch.path.join("data");
    let auth = has_credentials_command();
    let mut env: Vec<(&str, String)> = Vec::new();
    let mut server_env: Vec<(&str, &str)> = Vec::new();
    if auth {
        let full = create_credential(&data_dir, PROJECT, "full");
        let other = create_credential(&data_dir, OTHER_PROJECT, "full");
        let reader = create_credential(&data_dir, PROJECT, "read-only");
        env.extend([
            ("FRS_AUTH", "1".to_owned()),
            ("FRS_AK", field(&full, "access_key")),
            ("FRS_SK", field(&full, "secret_key")),
            ("FRS_OTHER_PROJECT_ID", field(&other, "project_id")),
            ("FRS_OTHER_AK", field(&other, "access_key")),
            ("FRS_OTHER_SK", field(&other, "secret_key")),
            ("FRS_READONLY_AK", field(&reader, "access_key")),
            ("FRS_READONLY_SK", field(&reader, "secret_key")),
        ]);
    } else {
        env.extend([("FRS_AK", "sdk-e2e-ak".to_owned()), ("FRS_SK", "sdk-e2e-sk".to_owned())]);
        if auth_config_key_exists() {
            server_env.push(("FRS__AUTH__ENABLED", "false"));
        }
    }

    let server = Server::start(scratch.path.join("server.log"), &data_dir, &server_env);
    env.extend([
        ("FRS_ENDPOINT", format!("http://127.0.0.1:{}", server.port)),
        ("FRS_PROJECT_ID", PROJECT.to_owned()),
        ("FRS_IMAGES", repo_root().join("assets/images").display().to_string()),
    ]);
    let script_started = Instant::now();
    let (success, output) = run_script(&scratch, &env);
    print!("{output}");
    assert!(success, "{SCRIPT} failed against frs serve:\n{output}\nserver log:\n{}", server.log_text());
    assert!(output.contains("every check passed"), "{SCRIPT} exited 0 without its closing line:\n{output}");
    println!(
        "SDK end-to-end test ({}) took {:.1?}: venv {venv_ready:.1?}, script {:.1?}",
        if auth { "authentication on" } else { "authentication off" },
        started.elapsed(),
        script_started.elapsed()
    );
}

fn check_assets() {
    let root = repo_root();
    let mut needed: Vec<PathBuf> =
        ["face_detection_yunet_2023mar.onnx", "face_recognition_sface_2021dec.onnx", "libonnxruntime.so"]
            .iter()
            .map(|name| root.join("assets/models").join(name))
            .collect();
    needed.extend((1..=6).map(|i| root.join(format!("assets/images/sample{i}.jpg"))));
    for path in needed {
        assert!(path.is_file(), "{} is missing: run scripts/setup.sh", path.display());
    }
}

/// Creates (first run) or checks the script's pinned venv. Fails with the script's message when
/// PyPI cannot provide the packages.
fn install_venv() {
    let root = repo_root();
    let venv_python = root.join(VENV_PYTHON);
    // The venv's own python re-checks the pins at once; a system python3 creates the venv first.
    let python = if venv_python.is_file() { venv_python } else { PathBuf::from("python3") };
    let output = Command::new(&python)
        .current_dir(&root)
        .arg(SCRIPT)
        .arg("--install-only")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("running {} {SCRIPT}: {e} (is python3 installed? scripts/setup.sh)", python.display())
        });
    assert!(
        output.status.success(),
        "creating the SDK venv failed ({}): is PyPI reachable?\n{}",
        output.status,
        text(&output)
    );
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn frs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frs"))
        .current_dir(repo_root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running frs {}: {e}", args.join(" ")))
}

/// Whether this frs authenticates requests (it then has `frs credentials`).
fn has_credentials_command() -> bool {
    let help = frs(&["--help"]);
    assert!(help.status.success(), "frs --help failed: {}", text(&help));
    String::from_utf8_lossy(&help.stdout).lines().any(|line| line.trim_start().starts_with("credentials"))
}

/// Whether the configuration has an `[auth]` section (the reference config lists every key).
fn auth_config_key_exists() -> bool {
    std::fs::read_to_string(repo_root().join("frs.example.toml")).is_ok_and(|toml| toml.contains("[auth]"))
}

/// `frs credentials create`: the printed `{"access_key","secret_key","project_id","policy"}`.
fn create_credential(data_dir: &Path, project: &str, policy: &str) -> Value {
    let data_dir = data_dir.to_str().expect("a UTF-8 temporary path");
    let output = frs(&["credentials", "create", "--project", project, "--policy", policy, "--data-dir", data_dir]);
    assert!(output.status.success(), "frs credentials create --project {project} --policy {policy}: {}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let credential: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("frs credentials create printed {stdout:?}, not one JSON object: {e}"));
    assert_eq!(credential["project_id"], project, "credential project: {credential}");
    assert_eq!(credential["policy"], policy, "credential policy: {credential}");
    credential
}

fn field(credential: &Value, name: &str) -> String {
    credential[name].as_str().unwrap_or_else(|| panic!("credential without {name}: {credential}")).to_owned()
}

/// Runs the script with the venv's python; its combined output, cut off after `SCRIPT_TIMEOUT`.
fn run_script(scratch: &Scratch, env: &[(&str, String)]) -> (bool, String) {
    let log = scratch.path.join("script.log");
    let out = File::create(&log).expect("creating the script log");
    let err = out.try_clone().expect("cloning the script log handle");
    let mut child = Command::new(repo_root().join(VENV_PYTHON))
        .current_dir(repo_root())
        .arg(SCRIPT)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("starting the SDK script");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling the SDK script") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let mut output = std::fs::read_to_string(&log).unwrap_or_default();
    if status.is_none() {
        output.push_str(&format!("\n(killed: still running after {SCRIPT_TIMEOUT:?})\n"));
    }
    (status.is_some_and(|s| s.success()), output)
}

/// The test's temporary directory (data directory, logs); kept when the test fails.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let path = tempfile::Builder::new().prefix("frs-sdk-").tempdir().expect("a temporary directory").keep();
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("kept {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
