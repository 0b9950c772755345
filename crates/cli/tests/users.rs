//! `hs serve --users FILE|-`: SCRAM users from a file or stdin instead of the
//! command line; a file others may read is refused.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use support::{ChildGuard, hs, json_rows, serve, serve_with_stdin, stderr};

/// A users file with `mode`, in a directory of its own.
fn users_file(test: &str, text: &str, mode: u32) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hs-users-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn read_site(url: &str, user: &str, password: &str) -> std::process::Output {
    hs(&[
        "read",
        "site",
        "--url",
        url,
        "--user",
        user,
        "--password",
        password,
        "--format",
        "json",
    ])
}

#[test]
fn serve_reads_users_from_a_private_file() {
    let path = users_file(
        "file",
        "# who may log in\nada:correct horse:operator\n\nbob:battery staple:reader\n",
        0o600,
    );
    let (_server, addr) = serve(&[
        "--users",
        path.to_str().unwrap(),
        "--scram-iterations",
        "4096",
        "--event-log",
        "off",
    ]);
    for url in [format!("http://{addr}"), format!("ws://{addr}")] {
        assert_eq!(json_rows(&read_site(&url, "ada", "correct horse")).len(), 1);
        assert_eq!(
            json_rows(&read_site(&url, "bob", "battery staple")).len(),
            1
        );
        let wrong = read_site(&url, "ada", "battery staple");
        assert!(!wrong.status.success(), "{url}: {}", stderr(&wrong));
        let anonymous = hs(&["read", "site", "--url", &url]);
        assert!(!anonymous.status.success(), "{url} requires a login");
    }
    // The roles came from the file: bob (reader) may not write.
    let write = hs(&[
        "write",
        "demo-ahu1-dat-sp",
        "8",
        "60",
        "--url",
        &format!("http://{addr}"),
        "--user",
        "bob",
        "--password",
        "battery staple",
    ]);
    assert!(!write.status.success(), "{}", stderr(&write));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn serve_warns_about_a_users_file_its_group_can_read() {
    let path = users_file("group", "ada:correct horse:reader\n", 0o640);
    let (server, _addr) = serve(&[
        "--users",
        path.to_str().unwrap(),
        "--scram-iterations",
        "4096",
        "--event-log",
        "off",
    ]);
    assert!(
        server.wait_for_stderr("readable by its group (mode 640)", 1),
        "{:?}",
        server.stderr_lines()
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn serve_reads_users_from_stdin() {
    let (_server, addr) = serve_with_stdin(
        &[
            "--users",
            "-",
            "--scram-iterations",
            "4096",
            "--event-log",
            "off",
        ],
        "carol:from stdin:reader\n",
    );
    let ws = format!("ws://{addr}");
    assert_eq!(json_rows(&read_site(&ws, "carol", "from stdin")).len(), 1);
    assert!(!read_site(&ws, "carol", "wrong").status.success());
}

#[test]
fn serve_refuses_a_users_file_others_can_read_and_never_prints_a_password() {
    let path = users_file("open", "ada:hunter2:operator\n", 0o644);
    let (mut server, _stdout) = ChildGuard::spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--users",
            path.to_str().unwrap(),
        ],
        &[],
    );
    let status = server.wait_exit().expect("hs serve refuses and exits");
    assert!(!status.success());
    let log = server.stderr_lines().join("\n");
    assert!(log.contains("readable by every user"), "{log}");
    assert!(log.contains("chmod 600"), "{log}");

    // A bad line is named by number, without its content.
    let bad = users_file("bad", "ada:hunter2:operator\nbob:s3cr:xyzzy:boss\n", 0o600);
    let (mut server, _stdout) = ChildGuard::spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--users",
            bad.to_str().unwrap(),
        ],
        &[],
    );
    let status = server.wait_exit().expect("hs serve refuses and exits");
    assert!(!status.success());
    let log = server.stderr_lines().join("\n");
    assert!(log.contains(":2: unknown role"), "{log}");
    assert!(!log.contains("s3cr") && !log.contains("xyzzy"), "{log}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    let _ = std::fs::remove_dir_all(bad.parent().unwrap());
}
