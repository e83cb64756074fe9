//! End-to-end: the real `connito localnet` binary, a real dev chain, real daemons on loopback.
//! Each run stops by itself (`--cycles`); a hung run is killed by the test's timeout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn spawn(data_dir: &Path, cycles: u64, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_connito"))
        .args([
            "localnet",
            "--report",
            "json",
            "--cycles",
            &cycles.to_string(),
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("connito binary starts")
}

/// Reads report lines until `n` arrived; then `kill` decides whether to kill -9 or wait.
fn reports(mut child: Child, n: usize, kill: bool) -> Vec<Value> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut got = vec![];
    while got.len() < n {
        match rx.recv_timeout(RUN_TIMEOUT) {
            Ok(line) => got.push(
                serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|e| panic!("bad report {line}: {e}")),
            ),
            Err(_) => {
                let _ = child.kill();
                panic!("localnet produced {} of {n} reports in time", got.len());
            }
        }
    }
    if kill {
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    } else {
        let status = child.wait().unwrap();
        assert!(status.success(), "localnet exited with {status}");
    }
    got
}

fn miner<'a>(r: &'a Value, role: &str) -> Vec<&'a Value> {
    r["miners"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == role)
        .collect()
}

fn heldout(r: &Value, g: u64) -> f64 {
    r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["group"] == g)
        .unwrap()["heldout_loss"]
        .as_f64()
        .unwrap()
}

#[test]
fn three_cycles_reward_honest_miners_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let rs = reports(
        spawn(dir.path(), 3, &["--crash-at", "2:validator/evaluator"]),
        3,
        false,
    );
    let (first, last) = (&rs[0], &rs[2]);
    assert_eq!(
        last["cycle"].as_u64().unwrap(),
        first["cycle"].as_u64().unwrap() + 2
    );
    for h in miner(last, "honest") {
        assert_eq!(h["verdict"], "accepted", "{h}");
        for bad in miner(last, "free-rider")
            .into_iter()
            .chain(miner(last, "copier"))
        {
            assert!(
                h["incentive"].as_f64().unwrap() > bad["incentive"].as_f64().unwrap(),
                "{h} vs {bad}"
            );
        }
    }
    for bad in miner(last, "free-rider")
        .into_iter()
        .chain(miner(last, "copier"))
    {
        assert_eq!(bad["incentive"].as_f64().unwrap(), 0.0, "{bad}");
    }
    assert_eq!(miner(last, "copier")[0]["verdict"], "hash_mismatch");
    assert_eq!(miner(last, "free-rider")[0]["score"].as_f64().unwrap(), 0.0);
    for g in [0, 1] {
        assert!(
            heldout(last, g) < heldout(first, g),
            "group {g}: {} !< {}",
            heldout(last, g),
            heldout(first, g)
        );
    }
    assert!(
        last["actor_restarts"].as_u64().unwrap() >= 1,
        "the injected crash was restarted"
    );
    assert!(last["global_version"].as_u64().unwrap() > first["global_version"].as_u64().unwrap());
}

#[test]
fn kill_9_and_restart_continues_from_the_stored_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let before = reports(spawn(dir.path(), 5, &[]), 1, true);
    let after = reports(spawn(dir.path(), 2, &[]), 2, false);
    let c0 = before[0]["cycle"].as_u64().unwrap();
    let c1 = after[0]["cycle"].as_u64().unwrap();
    assert!(c1 > c0, "restart went back to cycle {c1} after {c0}");
    assert!(
        after[1]["global_version"].as_u64().unwrap()
            >= before[0]["global_version"].as_u64().unwrap()
    );
    for r in &after {
        let status = r["weights_status"].as_str().unwrap_or("none");
        assert!(
            !status.starts_with("rejected"),
            "weights were set twice or too fast: {status}"
        );
    }
    // The cycle that was running at the kill was scored once: its report exists and, where the
    // validator got that far, has scores.
    assert!(after.iter().any(|r| {
        r["miners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["verdict"] == "accepted")
    }));
}
