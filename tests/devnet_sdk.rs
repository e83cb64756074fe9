//! The official `bittensor` Python SDK (pinned in `.ci/run`) against `connito devnet`: it
//! connects (runtime version, genesis, V15 metadata through `Metadata_metadata_at_version`, the
//! token-symbol key scan), reads storage items and calls the neuron and metagraph runtime APIs,
//! decoding everything with finney's own types.
//!
//! Needs `CONNITO_BT_PYTHON`: a Python with `bittensor` installed (`.ci/run` makes one). Without
//! it the test says so and passes, so `cargo test` works on a machine without Python; CI always
//! sets it.

mod common;

use std::process::Command;

#[test]
fn the_bittensor_sdk_connects_and_reads_storage() {
    let Ok(python) = std::env::var("CONNITO_BT_PYTHON") else {
        eprintln!("skipped: set CONNITO_BT_PYTHON to a Python with bittensor (see .ci/run)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let node = common::start(&dir.path().join("chain"));
    let url = format!("ws://127.0.0.1:{}", node.port);
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/connect.py"))
        .arg(&url)
        // The SDK caches metadata under HOME; a fresh one per run.
        .env("HOME", dir.path())
        .output()
        .unwrap();
    drop(node);
    assert!(
        out.status.success(),
        "sdk failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("bittensor SDK read: {v}");
    assert_eq!(v["spec_version"], 365);
    assert!(v["block"].as_u64().unwrap() >= 1);
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
