//! Shared by the process-level tests: a `connito devnet` on a free loopback port, and
//! `connito consensus yuma` run as an operator runs it. Each test binary uses part of it.
#![allow(dead_code)]

use std::io::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// A running devnet, killed when dropped.
pub struct Devnet {
    pub child: Child,
    pub port: u16,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts devnet on a free port (100 ms blocks) and reads the port from its first line on
/// stderr.
pub fn start(dir: &Path) -> Devnet {
    start_with(dir, &["--block-time-ms", "100"])
}

/// Starts devnet with extra arguments (block time, config).
pub fn start_with(dir: &Path, args: &[&str]) -> Devnet {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connito"))
        .args(["devnet", "--port", "0"])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("ws://127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Devnet { child, port }
}

/// `connito consensus yuma` with `input` on stdin.
pub fn consensus_yuma(input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connito"))
        .args(["consensus", "yuma"])
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
