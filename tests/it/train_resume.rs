//! `connito train` killed with SIGKILL mid-run and started again continues from its last
//! checkpoint and ends with a shard bit-identical to an uninterrupted run (CPU backend).

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

const STEPS: &str = "150";

fn train(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_connito"));
    c.args([
        "train",
        "--backend",
        "cpu",
        "--group",
        "1",
        "--steps",
        STEPS,
    ])
    .args(["--checkpoint-every", "10", "--data-dir"])
    .arg(dir)
    .env("RUST_LOG", "warn");
    c
}

fn summary(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON summary on stdout")
}

#[test]
fn a_killed_training_run_resumes_bit_identically() {
    let whole = tempfile::tempdir().unwrap();
    let a = summary(train(whole.path()).output().unwrap());
    assert_eq!(a["resumed_from"], serde_json::Value::Null);
    assert_eq!(a["steps"], 150);

    let killed = tempfile::tempdir().unwrap();
    let mut child = train(killed.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        if line.unwrap().contains("checkpoint at step 20") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the run ended before it was killed"
    );

    let b = summary(train(killed.path()).output().unwrap());
    let from = b["resumed_from"].as_u64().expect("the second run resumed");
    assert!(
        (20..150).contains(&from),
        "resumed from step {from}, not from a checkpoint taken before the kill"
    );
    assert_eq!(b["steps"], 150);
    assert_eq!(a["shard_hash"], b["shard_hash"]);
    let bytes = |d: &Path| std::fs::read(d.join("shard.safetensors")).unwrap();
    assert!(bytes(whole.path()) == bytes(killed.path()), "shards differ");
}

#[test]
fn train_refuses_a_group_the_model_does_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_connito"))
        .args(["train", "--group", "9", "--steps", "1", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--group 9 is not a group"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bench_model_prints_the_promised_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_connito"))
        .args(["bench", "model", "--preset", "tiny", "--threads", "1"])
        .args(["--steps", "1", "--batch-rows", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = [
        "preset",
        "weight_dtype",
        "backend",
        "threads",
        "train_tokens_per_s",
        "eval_tokens_per_s",
        "params",
    ];
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(v["preset"], "tiny");
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["threads"], 1);
    assert_eq!(v["params"], 233_520);
    assert!(v["train_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["eval_tokens_per_s"].as_f64().unwrap() > 0.0);
}
