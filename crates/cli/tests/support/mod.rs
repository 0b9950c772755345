//! Running the real `hs` binary from tests: `hs serve` on port 0 (stopped
//! when its guard drops), long-running commands with their stderr collected,
//! and one-shot commands bounded by a watchdog.

#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const HS: &str = env!("CARGO_BIN_EXE_hs");
/// The bound on every wait: generous for a loaded 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// `hs` with RUST_LOG and the HS_* variables removed, so the caller's
/// environment cannot change what a test sees.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(HS);
    command.args(args).env_remove("RUST_LOG");
    for var in ["HS_URL", "HS_USER", "HS_PASSWORD", "HS_TOKEN"] {
        command.env_remove(var);
    }
    command
}

/// Kills and reaps the child on every path out of a test.
pub(crate) struct ChildGuard {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl ChildGuard {
    /// Spawns `hs args...` with stdout piped (returned) and stderr collected.
    pub(crate) fn spawn(args: &[&str]) -> (ChildGuard, ChildStdout) {
        Self::spawn_with(args, &[], None)
    }

    /// Like [`spawn`](Self::spawn), with extra environment variables and
    /// `stdin` written to the child's standard input (then closed).
    pub(crate) fn spawn_with(
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> (ChildGuard, ChildStdout) {
        let mut command = command(args);
        command
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn hs");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).unwrap();
        }
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        (
            ChildGuard {
                child,
                stderr: lines,
            },
            stdout,
        )
    }

    pub(crate) fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `needle` (bounded).
    pub(crate) fn wait_for_stderr(&self, needle: &str) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.stderr_lines().iter().any(|l| l.contains(needle)) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for the process to exit (bounded); `None` if it did not.
    pub(crate) fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `hs serve`, stopped when dropped.
pub(crate) struct Server {
    pub(crate) guard: ChildGuard,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// The stdout lines after the first (the banner).
    pub(crate) banner: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub(crate) fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn ws(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

/// Starts `hs serve --listen 127.0.0.1:0 ARGS` and reads the bound address
/// from the first stdout line.
pub(crate) fn serve(extra: &[&str]) -> Server {
    serve_with(extra, None)
}

/// [`serve`] with `stdin` fed to the server.
pub(crate) fn serve_with(extra: &[&str], stdin: Option<&str>) -> Server {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let (guard, stdout) = ChildGuard::spawn_with(&args, &[], stdin);
    let (tx, rx) = std::sync::mpsc::channel();
    let banner = Arc::new(Mutex::new(Vec::new()));
    let sink = banner.clone();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let _ = tx.send(first);
        // Keep draining so the server never blocks on a full pipe.
        for line in reader.lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let first = rx.recv_timeout(WAIT).unwrap_or_default();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            panic!(
                "hs serve printed {first:?}, stderr {:#?}",
                guard.stderr_lines()
            )
        })
        .to_owned();
    Server {
        guard,
        addr,
        banner,
    }
}

/// Runs `hs args...` to completion (bounded by a watchdog kill).
pub(crate) fn hs(args: &[&str]) -> Output {
    hs_with(args, &[])
}

/// [`hs`] with extra environment variables.
pub(crate) fn hs_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = command(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hs");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    thread::spawn(move || {
        if rx.recv_timeout(WAIT).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let output = child.wait_with_output().expect("hs output");
    let _ = tx.send(());
    output
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The rows of the JSON grid `hs ... --format json` printed; panics with
/// stderr when the command failed.
pub(crate) fn json_rows(output: &Output) -> Vec<serde_json::Value> {
    assert!(output.status.success(), "hs failed: {}", stderr(output));
    let grid: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON grid");
    grid["rows"].as_array().cloned().unwrap_or_default()
}

/// Everything a child printed on stdout until it closed it.
pub(crate) fn read_all(stdout: ChildStdout) -> String {
    let mut text = String::new();
    BufReader::new(stdout).read_to_string(&mut text).unwrap();
    text
}

/// A TCP relay in front of a server that records what clients send, to
/// check what went over the wire. It accepts connections for [`WAIT`].
pub(crate) struct Relay {
    /// `127.0.0.1:PORT` to connect to instead of the server.
    pub(crate) addr: String,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Relay {
    pub(crate) fn start(target: &str) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = sent.clone();
        let target = target.to_owned();
        thread::spawn(move || {
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline {
                let Ok((client, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let server = std::net::TcpStream::connect(&target).unwrap();
                let (mut client_read, mut server_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut server_read, mut client_write) = (server, client);
                let record = record.clone();
                thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = client_read.read(&mut buf) {
                        if n == 0 || server_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = server_write.shutdown(std::net::Shutdown::Write);
                });
                thread::spawn(move || {
                    let _ = std::io::copy(&mut server_read, &mut client_write);
                    let _ = client_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Relay { addr, sent }
    }

    /// What clients sent so far, lower-cased (HTTP header names vary in case).
    pub(crate) fn sent_lowercase(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).to_lowercase()
    }
}

/// `GET /metrics` (the text format) over a plain socket.
pub(crate) fn scrape(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: hs\r\nAccept: text/plain\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The value of one series, 0 when absent.
pub(crate) fn series(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}
