//! Wallet files: one made by `connito wallet new` is read by the `bittensor` Python package's
//! `Wallet` (same address), and one made by that package is read by `connito wallet show`.
//!
//! Needs `CONNITO_BT_PYTHON` (a Python with `bittensor`; `.ci/run` makes one); without it the
//! test says so and passes.

use std::process::Command;

fn connito(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_connito"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "connito {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn wallets_are_shared_with_the_bittensor_package() {
    let Ok(python) = std::env::var("CONNITO_BT_PYTHON") else {
        eprintln!("skipped: set CONNITO_BT_PYTHON to a Python with bittensor (see .ci/run)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let ours = connito(&[
        "wallet",
        "new",
        "--wallet.path",
        path,
        "--wallet.name",
        "c",
        "--wallet.hotkey",
        "h",
    ]);
    let script = r#"
import json, sys
import bittensor as bt
path = sys.argv[1]
ours = bt.Wallet(name="c", hotkey="h", path=path)
theirs = bt.Wallet(name="p", hotkey="h", path=path)
theirs.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
print(json.dumps({"ours": ours.hotkey.ss58_address, "theirs": theirs.hotkey.ss58_address}))
"#;
    let out = Command::new(python)
        .args(["-c", script, path])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ours"], ours.trim(), "the package reads connito's wallet");
    let shown = connito(&[
        "wallet",
        "show",
        "--json",
        "--wallet.path",
        path,
        "--wallet.name",
        "p",
        "--wallet.hotkey",
        "h",
    ]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["ss58_address"], v["theirs"],
        "connito reads the package's wallet"
    );
}
