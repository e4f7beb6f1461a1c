//! A real `frs serve` process for the integration tests (durability, official SDK).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a starting server may take to load its models.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The workspace root (assets, scripts, `frs.example.toml`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running `frs serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts `frs serve` on a free port over `data_dir` with the extra environment `env`, its
    /// stderr in `log`, and waits until `/ready` answers 200.
    pub fn start(log: PathBuf, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let stderr = File::create(&log).expect("creating the server log");
        let child = Command::new(env!("CARGO_BIN_EXE_frs"))
            .current_dir(repo_root())
            .envs(env.iter().copied())
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--models")
            .arg(repo_root().join("assets/models"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting frs serve");
        let mut server = Server { child, port, log };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait().expect("polling frs serve") {
                panic!("frs serve exited ({status}) before it was ready:\n{}", server.log_text());
            }
            if ready(port) {
                return server;
            }
            assert!(Instant::now() < deadline, "frs serve not ready after {READY_TIMEOUT:?}:\n{}", server.log_text());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /ready` answers 200.
fn ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /ready HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut response = Vec::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_end(&mut response).is_ok()
        && response.starts_with(b"HTTP/1.1 200")
}
