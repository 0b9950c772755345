//! Running the real `hs` binary from tests: a child that is always killed
//! and reaped, `hs serve` on a free port, one-shot commands under a
//! watchdog. Every wait is bounded.

#![allow(dead_code)] // each test crate uses a different part

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const HS: &str = env!("CARGO_BIN_EXE_hs");

/// The longest any step waits: generous, as `hs serve --user` derives its
/// SCRAM credentials (600,000 PBKDF2 iterations) in a debug build on a
/// shared 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(120);

/// A `hs` process that is killed and reaped on every path out of a test.
pub(crate) struct ChildGuard {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl ChildGuard {
    /// Spawns `hs args...` (RUST_LOG, HS_USER and HS_PASSWORD removed, then
    /// `env` set) with stdout piped (returned) and stderr collected by lines.
    pub(crate) fn spawn(args: &[&str], env: &[(&str, &str)]) -> (ChildGuard, ChildStdout) {
        Self::spawn_fed(args, env, None)
    }

    /// [`spawn`](Self::spawn), with `stdin` (when given) written to the
    /// child's standard input, then closed.
    fn spawn_fed(
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> (ChildGuard, ChildStdout) {
        let mut command = Command::new(HS);
        command.args(args);
        Self::spawn_command(command, env, stdin)
    }

    fn spawn_command(
        mut command: Command,
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> (ChildGuard, ChildStdout) {
        command
            .env_remove("RUST_LOG")
            .env_remove("HS_USER")
            .env_remove("HS_PASSWORD")
            .env_remove("HS_URL")
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn hs");
        if let Some(stdin) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(stdin.as_bytes()).expect("write stdin");
        }
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("stderr lines").push(line);
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
        self.stderr.lock().expect("stderr lines").clone()
    }

    /// Waits until `count` stderr lines contain `needle` (bounded by [`WAIT`]).
    pub(crate) fn wait_for_stderr(&self, needle: &str, count: usize) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let seen = self
                .stderr_lines()
                .iter()
                .filter(|line| line.contains(needle))
                .count();
            if seen >= count {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for the process to exit (bounded by [`WAIT`]) and for its
    /// stderr to be read to the end.
    pub(crate) fn wait_exit(&mut self) -> Option<ExitStatus> {
        self.wait_exit_within(WAIT)
    }

    /// [`wait_exit`](Self::wait_exit), bounded by `limit`.
    pub(crate) fn wait_exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The reader thread drains what is left in the pipe.
                let settle = Instant::now() + Duration::from_secs(5);
                while Arc::strong_count(&self.stderr) > 1 && Instant::now() < settle {
                    thread::sleep(Duration::from_millis(10));
                }
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGINT, as Ctrl-C sends: a graceful shutdown.
    pub(crate) fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// The child's process id (for signals).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the server disappears without closing anything.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hs serve --listen LISTEN ARGS` and reads the bound address from
/// the first stdout line.
pub(crate) fn serve_on(listen: &str, extra: &[&str]) -> (ChildGuard, String) {
    let mut args = vec!["serve", "--listen", listen];
    args.extend_from_slice(extra);
    let (guard, stdout) = ChildGuard::spawn(&args, &[]);
    listening(guard, stdout)
}

/// [`serve_on`] 127.0.0.1, a free port, with `env` set (e.g. `RUST_LOG`).
pub(crate) fn serve_with_env(extra: &[&str], env: &[(&str, &str)]) -> (ChildGuard, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let (guard, stdout) = ChildGuard::spawn(&args, env);
    listening(guard, stdout)
}

/// The address `hs serve` printed as its first line (the rest of stdout is
/// drained so the server never blocks on a full pipe).
fn listening(guard: ChildGuard, stdout: ChildStdout) -> (ChildGuard, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let _ = tx.send(first);
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
    });
    let first = rx.recv_timeout(WAIT).expect("hs serve printed a line");
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line {first:?}; stderr: {:?}",
                guard.stderr_lines()
            )
        })
        .to_owned();
    (guard, addr)
}

/// `hs serve` on 127.0.0.1, a free port.
pub(crate) fn serve(extra: &[&str]) -> (ChildGuard, String) {
    serve_on("127.0.0.1:0", extra)
}

/// Runs `hs args...` to completion with `env` set (killed after [`WAIT`]).
pub(crate) fn hs_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(HS)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("HS_USER")
        .env_remove("HS_PASSWORD")
        .env_remove("HS_URL")
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

/// Runs `hs args...` to completion (killed after [`WAIT`]).
pub(crate) fn hs(args: &[&str]) -> Output {
    hs_env(args, &[])
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub(crate) fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

/// A scratch directory for data files, removed on drop.
pub(crate) struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("hs-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Writes `text` to `name` in the directory; returns its path.
    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write data file");
        path.to_str().expect("utf-8 path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// Beside the helpers above: stdin for `hs serve --users -`, JSON grids,
// a recording relay and /metrics.

/// Like [`ChildGuard::spawn`], with `stdin` written to the child's standard
/// input (then closed).
pub(crate) fn spawn_with_stdin(args: &[&str], stdin: &str) -> (ChildGuard, ChildStdout) {
    ChildGuard::spawn_fed(args, &[], Some(stdin))
}

/// `hs serve --listen 127.0.0.1:0 ARGS` with `stdin` fed to it; answers the
/// bound address from the first stdout line.
pub(crate) fn serve_with_stdin(extra: &[&str], stdin: &str) -> (ChildGuard, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let (guard, stdout) = spawn_with_stdin(&args, stdin);
    listening(guard, stdout)
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
        use std::io::Write;
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
    use std::io::Write;
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

/// `hs serve --listen 127.0.0.1:0 ARGS` with at most `files` open file
/// descriptors (`ulimit -n`), as a server under attack runs out of them.
pub(crate) fn serve_with_fd_limit(files: u32, extra: &[&str]) -> (ChildGuard, String) {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
        .args([HS, "serve", "--listen", "127.0.0.1:0"])
        .args(extra);
    let (guard, stdout) = ChildGuard::spawn_command(command, &[], None);
    listening(guard, stdout)
}

/// A token issued to `user` by an HTTP login with the library client (the
/// test process installs no logger).
pub(crate) fn login_token(addr: &str, user: &str, password: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = hs_http_client::HttpClient::builder(format!("http://{addr}"))
            .credentials(user, password)
            .build()
            .unwrap();
        let token = client.login().await.unwrap().expect("SCRAM issues a token");
        token.expose().to_owned()
    })
}

/// A generated certificate authority (rcgen), for the TLS tests.
pub(crate) struct Ca {
    pub(crate) cert: rcgen::Certificate,
    pub(crate) key: rcgen::KeyPair,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA");
        Ca { cert, key }
    }

    /// The CA certificate as PEM.
    pub(crate) fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate this CA signs for `params`, and its key.
    pub(crate) fn sign(
        &self,
        params: rcgen::CertificateParams,
    ) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        (cert, key)
    }

    /// A certificate for the DNS `names`, and its key.
    pub(crate) fn leaf(&self, names: &[&str]) -> (rcgen::Certificate, rcgen::KeyPair) {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        self.sign(rcgen::CertificateParams::new(names).expect("params"))
    }
}
