//! End-to-end: the real `connito localnet` binary, a real dev chain, real daemons on loopback.
//! Each run stops by itself (`--cycles`); a hung run is killed by the test's timeout.

use crate::common;

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
            .chain(miner(last, "hash-copier"))
        {
            assert!(
                h["incentive"].as_f64().unwrap() > bad["incentive"].as_f64().unwrap(),
                "{h} vs {bad}"
            );
        }
    }
    for bad in miner(last, "free-rider")
        .into_iter()
        .chain(miner(last, "hash-copier"))
    {
        assert_eq!(bad["incentive"].as_f64().unwrap(), 0.0, "{bad}");
    }
    assert_eq!(miner(last, "hash-copier")[0]["verdict"], "hash_mismatch");
    // A free rider resubmits the merged experts: scored 0, or a near-duplicate of the credited shard.
    let fr = miner(last, "free-rider")[0];
    assert!(fr["score"].as_f64().unwrap_or(0.0) == 0.0, "{fr}");
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

/// Every adversary of `--adversaries all` beside two honest miners: after 4 cycles none earns
/// anything (the heldout-trainer at most what an honest miner earns), the honest miners share the
/// rest, the validator set weights every cycle and no actor restarted because of miner input.
#[test]
fn adversaries_earn_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rs = reports(spawn(dir.path(), 4, &["--adversaries", "all"]), 4, false);
    let last = &rs[3];
    let honest: Vec<f64> = miner(last, "honest")
        .iter()
        .map(|m| m["incentive"].as_f64().unwrap())
        .collect();
    let best_honest = honest.iter().copied().fold(0.0, f64::max);
    assert!(best_honest > 0.0, "{last}");
    let mut others = 0.0;
    for m in last["miners"].as_array().unwrap() {
        let (role, inc) = (
            m["role"].as_str().unwrap(),
            m["incentive"].as_f64().unwrap(),
        );
        eprintln!("{role:16} verdict {:16} incentive {inc:.4}", m["verdict"]);
        match role {
            "honest" => {}
            "heldout-trainer" => {
                assert!(inc <= best_honest + 1e-9, "{m}");
                others += inc;
            }
            _ => assert_eq!(inc, 0.0, "{m}"),
        }
    }
    let total: f64 = honest.iter().sum::<f64>() + others;
    assert!(
        (total - 1.0).abs() < 1e-3,
        "honest miners share the rest: {total}"
    );
    let expected = [
        ("hash-copier", "hash_mismatch"),
        ("nan", "non_finite"),
        ("overflow", "out_of_range"),
        ("garbage-server", "malformed"),
        ("slow-server", "fetch_failed"),
        ("ssrf", "bad_location"),
        ("stale", "stale_manifest"),
    ];
    for (role, verdict) in expected {
        assert_eq!(miner(last, role)[0]["verdict"], verdict, "{role}: {last}");
    }
    // The replayer resubmits its victim's shard of the cycle before: a near-duplicate of it
    // wherever that shard was credited (scored above 0). An uncredited one is just another
    // submission, scored (and paid) like any other: nothing, as checked above.
    for w in rs.windows(2) {
        let victim = miner(&w[0], "honest")
            .into_iter()
            .find(|m| m["group"] == 0)
            .unwrap();
        if victim["score"].as_f64().unwrap_or(0.0) > 0.0 {
            let r = miner(&w[1], "replayer")[0];
            assert_eq!(
                r["verdict"], "near_duplicate",
                "cycle {}: {r}",
                w[1]["cycle"]
            );
        }
    }
    assert!(
        rs.iter()
            .any(|r| miner(r, "replayer")[0]["verdict"] == "near_duplicate"),
        "the replayer was never caught"
    );
    for r in &rs {
        let status = r["weights_status"].as_str().unwrap_or("none");
        assert!(
            ["committed", "revealed", "set"].contains(&status),
            "cycle {}: {status}",
            r["cycle"]
        );
    }
    assert_eq!(last["actor_restarts"].as_u64().unwrap(), 0, "{last}");
}

/// Kill -9 after cycle 1's report: the validator has committed cycle 1's weights and not yet
/// revealed them (it reveals at MinerCommit1 of the next cycle). The restarted run must continue
/// at the stored cycle, reveal that commit inside its window (incentive appears), and never commit
/// or reveal twice for one cycle.
#[test]
fn kill_9_between_commit_and_reveal_then_restart_reveals() {
    let dir = tempfile::tempdir().unwrap();
    let before = reports(spawn(dir.path(), 5, &[]), 1, true);
    let c0 = before[0]["cycle"].as_u64().unwrap();
    assert_eq!(before[0]["weights_status"], "committed", "{}", before[0]);
    let after = reports(spawn(dir.path(), 2, &[]), 2, false);
    let c1 = after[0]["cycle"].as_u64().unwrap();
    assert_eq!(c1, c0 + 1, "restart must continue at the stored cycle");
    assert!(
        after[1]["global_version"].as_u64().unwrap()
            > before[0]["global_version"].as_u64().unwrap()
    );
    // Cycle c0's commit was revealed after the restart: its incentive shows in cycle c1's report.
    for h in miner(&after[0], "honest") {
        assert!(
            h["incentive"].as_f64().unwrap() > 0.0,
            "no incentive after the reveal: {h}"
        );
    }

    // The chain's own log of the validator's extrinsics: one commit per cycle, one reveal each.
    let cfg = connito::config::LocalnetConfig::default();
    let l = cfg.phases.cycle_len();
    let store = connito::store::Store::open(&dir.path().join("chain")).unwrap();
    let chain = connito::chain::DevChain::open(cfg.chain.clone(), store, 0, 0).unwrap();
    let log = chain.extrinsics(&connito::submission::Hotkey::dev("validator").public());
    let cycles_of = |call: &str| -> Vec<u64> {
        log.iter()
            .filter(|(_, c)| c == call)
            .map(|(b, _)| b / l)
            .collect()
    };
    let commits = cycles_of("commit_weights");
    let reveals = cycles_of("reveal_weights");
    assert_eq!(
        commits,
        vec![c0, c0 + 1, c0 + 2],
        "exactly one commit per cycle: {log:?}"
    );
    assert_eq!(
        reveals,
        vec![c0 + 1, c0 + 2],
        "each commit revealed once, in the next cycle: {log:?}"
    );
    assert!(
        cycles_of("set_weights").is_empty(),
        "commit-reveal is on: {log:?}"
    );
}

/// `connito consensus yuma` as an operator runs it: JSON on stdin, JSON on stdout; bad input is
/// a non-zero exit with a message naming the problem.
#[test]
fn consensus_yuma_cli_reads_stdin_and_writes_json() {
    let run = common::consensus_yuma;
    let out = run(
        r#"{"stake":[600,400,0],"weights":[[0,0.6,1],[0,0,1],[0,0,0]],"last_update":[5990,5950,10],"block_at_registration":[0,0,0],"current_block":6000}"#,
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let inc: Vec<f64> = v["incentive"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!((inc.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!((inc[2] - 0.625 / 0.85).abs() < 1e-9);
    let bad = run(
        r#"{"stake":[1,2],"weights":[[0,1]],"last_update":[0,0],"block_at_registration":[0,0],"current_block":1}"#,
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("weights"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// `connito model init` writes a seeded model; `connito model inspect` accounts for every
/// parameter and gives the same hash for the same seed.
#[test]
fn model_init_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.safetensors");
    let bin = env!("CARGO_BIN_EXE_connito");
    let ok = Command::new(bin)
        .args(["model", "init", "--preset", "tiny", "--seed", "3", "--out"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(ok.success());
    let out = Command::new(bin)
        .args(["model", "inspect"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let parts: u64 = v["parts"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(parts, v["parameters"].as_u64().unwrap());
    assert_eq!(v["groups"].as_object().unwrap().len(), 2);
    let sd = connito::model::init_state_dict(&connito::model::ModelConfig::tiny(), 3);
    assert_eq!(
        v["hash"].as_str().unwrap(),
        hex_of(&connito::tensors::state_dict_hash(&sd))
    );
    let bad = Command::new(bin)
        .args(["model", "inspect", "/nonexistent.safetensors"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
