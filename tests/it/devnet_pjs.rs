//! polkadot.js (`@polkadot/api`, pinned in `tests/pjs/package-lock.json`) against
//! `connito devnet`: `ApiPromise.create` with every method it calls at connect served, reads of
//! `System.Account` and the chain's constants, a signed `transfer_keep_alive` landed with its
//! events, and a second connection that follows new heads and unsubscribes
//! (`tests/pjs/devnet.mjs`).
//!
//! Needs node (`CONNITO_NODE`, or `node` on PATH) and `npm ci --prefix tests/pjs`. Without them
//! the test says so and passes, so `cargo test` works on a machine without node; CI (`.ci/run`)
//! installs both and sets `CONNITO_PJS=1`, which makes their absence a failure.

use crate::common;

use std::path::Path;
use std::process::Command;

/// The node binary to run, or why the test cannot run.
fn node() -> Result<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pjs/node_modules/@polkadot/api");
    if !dir.is_dir() {
        return Err(format!("{} is missing", dir.display()));
    }
    let node = std::env::var("CONNITO_NODE").unwrap_or_else(|_| "node".into());
    match Command::new(&node).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(node),
        Ok(out) => Err(format!("`{node} --version` failed: {}", out.status)),
        Err(e) => Err(format!("no `{node}`: {e}")),
    }
}

/// Runs `tests/pjs/devnet.mjs` against a fresh devnet (with `config` as its `--config`, if
/// given) and returns the JSON it prints; `None` (test skipped) without node or the npm
/// packages, unless `CONNITO_PJS` is set.
fn run_pjs(config: Option<&str>) -> Option<serde_json::Value> {
    let node = match node() {
        Ok(n) => n,
        Err(why) if std::env::var_os("CONNITO_PJS").is_some() => {
            panic!("CONNITO_PJS is set but polkadot.js cannot run: {why}")
        }
        Err(why) => {
            eprintln!("skipped ({why}): run `npm ci --prefix tests/pjs` (see .ci/run)");
            return None;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("devnet.toml");
    let mut args = vec!["--block-time-ms", "100"];
    if let Some(config) = config {
        std::fs::write(&cfg, config).unwrap();
        args.extend(["--config", cfg.to_str().unwrap()]);
    }
    let devnet = common::start_with(&dir.path().join("chain"), &args);
    let url = format!("ws://127.0.0.1:{}", devnet.port);
    let out = Command::new(node)
        .arg(format!(
            "{}/tests/pjs/devnet.mjs",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(&url)
        .output()
        .unwrap();
    drop(devnet);
    assert!(
        out.status.success(),
        "polkadot.js failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("polkadot.js: {v}");
    Some(v)
}

fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn polkadot_js_connects_reads_transfers_and_follows_heads() {
    let Some(v) = run_pjs(None) else {
        return;
    };
    check(&v);
}

/// The same against the older runtime's metadata (other signed extensions, other types).
#[test]
fn polkadot_js_works_against_the_spec_365_runtime_too() {
    let Some(v) = run_pjs(Some("[chain]\nruntime = \"spec365\"\n")) else {
        return;
    };
    assert_eq!(v["spec_version"], 365);
    check(&v);
}

/// What both runtimes must show polkadot.js.
fn check(v: &serde_json::Value) {
    // Every call answered, none with an error ("Method not found" included).
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    let connect = strings(&v["connect_methods"]);
    for m in [
        "chain_getBlockHash",
        "state_getRuntimeVersion",
        "system_chain",
        "system_properties",
        "rpc_methods",
        "state_call",
        "state_subscribeRuntimeVersion",
    ] {
        assert!(
            connect.contains(&m),
            "{m} not called at connect: {connect:?}"
        );
    }
    let called = strings(&v["methods_called"]);
    for m in [
        "state_subscribeStorage",
        "author_submitAndWatchExtrinsic",
        "chain_getBlock",
        "chain_subscribeNewHead",
        "chain_unsubscribeNewHead",
    ] {
        assert!(called.contains(&m), "{m} not called: {called:?}");
    }
    // Metadata through the runtime API (V15 or later), not state_getMetadata.
    assert!(v["runtime_calls"]["Metadata_metadata_at_version"].as_u64() >= Some(1));

    // The chain as polkadot.js sees it.
    assert_eq!(v["spec_name"], "node-subtensor");
    // The version served is the one in the metadata (`System.Version`).
    assert_eq!(v["spec_version"], v["consts"]["system_version_spec"]);
    assert_eq!(v["chain"], "Bittensor (connito devnet)");
    assert_eq!(v["ss58_format"], 42);
    assert_eq!(v["token"]["symbol"], serde_json::json!(["TAO"]));
    assert_eq!(v["token"]["decimals"], serde_json::json!([9]));
    assert_eq!(v["genesis_hash"].as_str().unwrap().len(), 66);
    assert_eq!(v["consts"]["existential_deposit"], "500");
    assert_eq!(v["consts"]["block_hash_count"], 2400);
    assert_eq!(v["consts"]["ss58_prefix"], 42);
    assert_eq!(
        v["alice"],
        "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
    );
    // A fresh devnet: //Alice and //Bob hold their endowment (1,000,000 TAO).
    let endowment = (1_000_000_u64 * 1_000_000_000).to_string();
    assert_eq!(v["alice_before"]["free"], endowment.as_str());
    assert_eq!(v["alice_before"]["nonce"], 0);
    assert_eq!(v["bob_before"], endowment.as_str());

    // The transfer landed with its events, for the exact amount, and no fee (devnet charges none).
    let t = &v["transfer"];
    let amount: u64 = t["amount"].as_str().unwrap().parse().unwrap();
    assert_eq!(amount, 1_234_567_890);
    assert_eq!(
        strings(&t["events"]),
        ["balances.Transfer", "system.ExtrinsicSuccess"]
    );
    assert_eq!(t["event"]["from"], v["alice"]);
    assert_eq!(t["event"]["to"], v["bob"]);
    assert_eq!(t["event"]["amount"], amount.to_string());
    let statuses = strings(&t["statuses"]);
    assert_eq!(statuses[0], "Ready");
    assert!(matches!(statuses.last(), Some(&"InBlock" | &"Finalized")));
    assert!(t["block"].as_u64().unwrap() > v["best_at_connect"].as_u64().unwrap());
    assert_eq!(v["bob_received"], amount.to_string());
    let bob_after = (1_000_000_u64 * 1_000_000_000 + amount).to_string();
    assert_eq!(v["bob_at_block"], bob_after.as_str());
    assert_eq!(v["bob_after"], bob_after.as_str());
    let alice_after = (1_000_000_u64 * 1_000_000_000 - amount).to_string();
    assert_eq!(v["alice_after"]["free"], alice_after.as_str());
    assert_eq!(v["alice_after"]["nonce"], 1);

    // The second connection saw three increasing heads after the transfer, and unsubscribed.
    let heads: Vec<u64> = v["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_u64().unwrap())
        .collect();
    assert_eq!(heads.len(), 3);
    assert!(heads.windows(2).all(|w| w[0] < w[1]), "{heads:?}");
    assert!(heads[0] >= t["block"].as_u64().unwrap());
    assert_eq!(v["unsubscribe"]["method"], "chain_unsubscribeNewHead");
    assert_eq!(v["unsubscribe"]["result"], true);
}
