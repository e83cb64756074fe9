//! The official `bittensor` Python SDK (pinned in `.ci/run`) against `connito devnet`: it
//! connects (runtime version, genesis, V15 metadata through `Metadata_metadata_at_version`, the
//! token-symbol key scan), reads storage items and calls the neuron and metagraph runtime APIs,
//! decoding everything with finney's own types.
//!
//! Needs `CONNITO_BT_PYTHON`: a Python with `bittensor` installed (`.ci/run` makes one). Without
//! it the test says so and passes, so `cargo test` works on a machine without Python; CI always
//! sets it.

use crate::common;

use std::process::Command;

/// Starts a devnet with `devnet_args` (and `config` as its `--config`, if given), runs
/// `tests/sdk/SCRIPT` with the devnet's URL and then `args`, and returns the JSON it prints;
/// `None` (test skipped) without `CONNITO_BT_PYTHON`.
fn run_sdk(
    script: &str,
    devnet_args: &[&str],
    config: Option<&str>,
    args: &[&str],
) -> Option<serde_json::Value> {
    let Ok(python) = std::env::var("CONNITO_BT_PYTHON") else {
        eprintln!("skipped: set CONNITO_BT_PYTHON to a Python with bittensor (see .ci/run)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("devnet.toml");
    let mut devnet_args = devnet_args.to_vec();
    if let Some(config) = config {
        std::fs::write(&cfg, config).unwrap();
        devnet_args.extend(["--config", cfg.to_str().unwrap()]);
    }
    let node = common::start_with(&dir.path().join("chain"), &devnet_args);
    let url = format!("ws://127.0.0.1:{}", node.port);
    let out = Command::new(python)
        .arg(format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg(&url)
        .args(args)
        // The SDK caches metadata under HOME; a fresh one per run.
        .env("HOME", dir.path())
        .output()
        .unwrap();
    drop(node);
    assert!(
        out.status.success(),
        "sdk {script} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("bittensor SDK {script} {args:?}: {v}");
    Some(v)
}

fn connito_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_bittensor_sdk_connects_to_the_spec_365_runtime_with_the_legacy_clock() {
    let config = "[chain]\nruntime = \"spec365\"\ntempo = 60\n";
    let Some(v) = run_sdk("connect.py", &["--block-time-ms", "100"], Some(config), &[]) else {
        return;
    };
    assert_eq!(v["spec_version"], 365);
    assert!(v.get("epoch_index").is_none());
    assert_eq!(v["metagraph"]["tempo"], 60);
}

#[test]
fn the_bittensor_sdk_connects_and_reads_storage() {
    let Some(v) = run_sdk("connect.py", &["--block-time-ms", "100"], None, &[]) else {
        return;
    };
    assert_eq!(v["spec_version"], 425);
    let block = v["block"].as_u64().unwrap();
    assert!(block >= 1);
    // The stateful clock (tempo 60 from block 0): epoch k fired at block 60k. The SDK's
    // epoch_status reads the storage items and the runtime API at one block.
    assert_eq!(v["last_epoch_block"].as_u64().unwrap() % 60, 0, "{v}");
    assert!(v["epoch_index"].as_u64().is_some(), "{v}");
    assert_eq!(v["pending_epoch_at"], 0);
    let status = &v["epoch_status"];
    let at = |k: &str| {
        status[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {status}"))
    };
    let last = at("last_epoch_block");
    assert_eq!(last, at("epoch_index") * 60, "{status}");
    assert_eq!(at("next_epoch_start_block"), last + 60, "{status}");
    assert_eq!(at("blocks_since_last_step"), at("block") - last, "{status}");
    assert!(status["pending_epoch_at"].is_null(), "{status}");
    // The beacon has stored the current quicknet round (or one before it).
    let now_round = connito::chain::drand::round_at(connito_now());
    let stored = v["drand_last_round"].as_u64().unwrap();
    assert!(
        stored + 2 >= now_round && stored <= now_round,
        "{stored} vs {now_round}"
    );
    // localnet's default chain config: tempo 60, no neurons registered on a fresh devnet.
    assert_eq!(v["tempo"], 60);
    assert_eq!(v["subnetwork_n"], 0);
    assert_eq!(v["networks_added"], true);
    // The runtime APIs: neurons (NeuronInfoRuntimeApi) and the metagraph (SubnetInfoRuntimeApi).
    assert_eq!(v["neurons"], 0);
    let mg = &v["metagraph"];
    assert_eq!(
        (mg["num_uids"].as_u64(), mg["neurons"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(mg["tempo"], 60);
    assert_eq!(mg["name"], "connito devnet");
    assert!(mg["block"].as_u64().unwrap() >= 1);
}

/// `tests/sdk/conformance.py URL MODE [ARGS]` against a devnet with 200 ms blocks and `config`.
fn conformance(mode: &str, config: &str, extra: &[&str]) -> Option<serde_json::Value> {
    let mut args = vec![mode];
    args.extend(extra);
    run_sdk(
        "conformance.py",
        &["--block-time-ms", "200"],
        Some(config),
        &args,
    )
}

const TEMPO: u64 = 15;

fn failed_with(v: &serde_json::Value, step: &str, error: &str) {
    assert_eq!(v[step]["success"], false, "{step}: {}", v[step]);
    assert_eq!(v[step]["error"], error, "{step}: {}", v[step]);
}

/// Runs `connito consensus yuma` on `input` and returns its JSON output.
fn yuma(input: &serde_json::Value) -> serde_json::Value {
    let out = common::consensus_yuma(&input.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_bittensor_sdk_registers_stakes_commits_and_reveals() {
    let config = format!(
        "[chain]\ntempo = {TEMPO}\nweights_rate_limit = 5\ncommit_reveal_enabled = true\n\
         [chain.yuma]\ntempo = {TEMPO}\n"
    );
    let Some(v) = conformance("commit-reveal", &config, &[&TEMPO.to_string()]) else {
        return;
    };
    failed_with(&v, "register_again", "HotKeyAlreadyRegisteredInSubNet");
    failed_with(&v, "commit_again", "CommittingWeightsTooFast");
    // The commitment reads back as set (storage and the metagraph's decoded view).
    assert_eq!(
        v["commitment_storage"]["info"]["fields"][0]["Raw5"],
        "0x68656c6c6f"
    );
    assert_eq!(
        v["commitment_storage"]["block"],
        v["set_commitment"]["block"]
    );
    let n = v["neurons"].as_array().unwrap();
    assert_eq!(n.len(), 2);
    let (val, miner) = (&n[0], &n[1]);
    assert_eq!(
        (val["uid"].as_u64(), miner["uid"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(val["hotkey"], v["validator"]);
    assert_eq!(miner["hotkey"], v["miner"]);
    assert_eq!(val["coldkey"], v["alice"]);
    assert_eq!(val["stake_rao"], 100_000_000_000_u64);
    assert_eq!(miner["stake_rao"], 0);
    assert_eq!(miner["commitment"], "hello");
    assert_eq!(miner["axon"], "10.0.0.1:8091");
    // `last_update`: registration, then the commit (a reveal does not touch it).
    assert_eq!(val["last_update"], v["commit_weights"]["block"]);
    assert_eq!(miner["last_update"], v["register_miner"]["block"]);
    assert_eq!(
        val["block_at_registration"],
        v["register_validator"]["block"]
    );
    // Revealed weights, max-upscaled as Subtensor stores them.
    assert_eq!(
        v["weights"],
        serde_json::json!([[[0, 6553], [1, 65535]], []])
    );
    // The metagraph was read in the epoch the revealed weights were first used in.
    let epoch = v["epoch_block"].as_u64().unwrap();
    let read_at = v["metagraph_block"].as_u64().unwrap();
    assert!(
        (epoch..epoch + TEMPO).contains(&read_at),
        "read at {read_at}"
    );
    let stake: Vec<f64> = n
        .iter()
        .map(|x| x["stake_rao"].as_f64().unwrap() / 1e9)
        .collect();
    let input = serde_json::json!({
        "stake": stake,
        "weights": v["weights"],
        "last_update": n.iter().map(|x| x["last_update"].clone()).collect::<Vec<_>>(),
        "block_at_registration": n.iter().map(|x| x["block_at_registration"].clone()).collect::<Vec<_>>(),
        "current_block": epoch,
        "validator_permit": n.iter().map(|x| x["validator_permit"].clone()).collect::<Vec<_>>(),
        "params": {"tempo": TEMPO},
    });
    let want = yuma(&input);
    for key in ["incentive", "dividends"] {
        for (uid, x) in n.iter().enumerate() {
            let (got, want) = (x[key].as_f64().unwrap(), want[key][uid].as_f64().unwrap());
            // The chain stores both as u16 proportions.
            assert!(
                (got - want).abs() <= 1.0 / 65535.0,
                "{key}[{uid}]: {got} vs {want}"
            );
        }
    }
    assert!(want["incentive"][1].as_f64().unwrap() > 0.99);
}

#[test]
fn the_bittensor_sdk_sets_weights_and_sees_subtensor_errors() {
    let config = "[chain]\ncommit_reveal_enabled = false\nweights_rate_limit = 50\n";
    let Some(v) = conformance("set-weights", config, &[]) else {
        return;
    };
    assert_eq!(v["set_weights"]["success"], true);
    failed_with(&v, "set_weights_again", "SettingWeightsTooFast");
    failed_with(&v, "commit_weights", "CommitRevealDisabled");
    assert_eq!(
        v["weights"],
        serde_json::json!([[[0, 21845], [1, 65535]], []])
    );
    let val = &v["neurons"][0];
    assert_eq!(val["last_update"], v["set_weights"]["block"]);
    assert_eq!(v["bob_received"], 1_000_000_000_u64);
}

#[test]
fn an_sn102_commitment_the_sdk_sets_is_read_by_the_subxt_client_and_parsed() {
    use connito::chain::ChainClient;
    use connito::protocol::sn102::commitment::RawCommit;
    let h = "0f".repeat(24);
    let text = format!(r#"{{"e":0,"h":"{h}","v":4200000,"r":"alice/sn102-g0","rv":"abc1234"}}"#);
    let dir = tempfile::tempdir().unwrap();
    let node = common::start_with(&dir.path().join("chain"), &["--block-time-ms", "100"]);
    let url = format!("ws://127.0.0.1:{}", node.port);
    let Ok(python) = std::env::var("CONNITO_BT_PYTHON") else {
        eprintln!("skipped: set CONNITO_BT_PYTHON to a Python with bittensor (see .ci/run)");
        return;
    };
    let out = Command::new(python)
        .arg(format!(
            "{}/tests/sdk/conformance.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([url.as_str(), "sn102-commit", text.as_str()])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (miner, _) = connito::submission::keys::ss58_decode(v["miner"].as_str().unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let records = rt.block_on(async {
        let c = connito::chain::subxt::SubxtClient::new(&url);
        let at = c.finalized_block().await.unwrap();
        c.commitments(102, &at).await.unwrap()
    });
    let r = records
        .iter()
        .find(|r| r.hotkey == miner)
        .expect("the miner's commitment");
    assert_eq!(r.block, v["set_commitment"]["block"].as_u64().unwrap());
    let parsed = RawCommit::parse(std::str::from_utf8(&r.data).unwrap()).unwrap();
    let c = parsed.hash_commit().unwrap();
    assert_eq!((c.group, c.hash.to_hex(), c.version), (0, h, 4_200_000));
    assert_eq!(
        (c.repo.as_str(), c.revision.as_str()),
        ("alice/sn102-g0", "abc1234")
    );
}
