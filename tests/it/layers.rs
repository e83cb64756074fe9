//! The layout's import rules (issue 22), checked on the source: no import runs from a lower
//! layer to a higher one. `src/` cannot import `actors/` at all (the library is a dependency of
//! the binary, never the reverse), so the rules here are the ones the compiler does not enforce.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

/// The lines of the files under `dir` that mention any of `forbidden`.
fn offending(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let mut bad = vec![];
    for (path, text) in sources(&root().join(dir)) {
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if let Some(f) = forbidden.iter().find(|f| line.contains(*f)) {
                bad.push(format!("{}:{}: {f}: {line}", path.display(), i + 1));
            }
        }
    }
    bad
}

#[test]
fn the_runtime_never_imports_a_daemon_or_the_command_line() {
    let up = [
        "crate::validator",
        "crate::miner",
        "crate::cli",
        "crate::daemon",
        "crate::devnet",
    ];
    assert_eq!(offending("actors/node", &up), Vec::<String>::new());
}

#[test]
fn a_daemon_never_imports_the_other_daemon_the_builder_or_the_command_line() {
    let base = ["crate::cli", "crate::daemon", "crate::devnet"];
    let v: Vec<&str> = base.iter().copied().chain(["crate::miner"]).collect();
    let m: Vec<&str> = base.iter().copied().chain(["crate::validator"]).collect();
    assert_eq!(offending("actors/validator", &v), Vec::<String>::new());
    assert_eq!(offending("actors/miner", &m), Vec::<String>::new());
}

#[test]
fn the_dev_chain_and_the_subxt_client_never_import_each_other() {
    assert_eq!(
        offending("src/chain/dev", &["chain::subxt"]),
        Vec::<String>::new()
    );
    assert_eq!(
        offending("src/chain/subxt", &["chain::dev"]),
        Vec::<String>::new()
    );
    assert_eq!(
        offending("src/chain/substrate", &["chain::dev", "chain::subxt"]),
        Vec::<String>::new()
    );
}

#[test]
fn sled_trees_are_named_only_in_the_table_list() {
    let mut bad = vec![];
    for dir in ["src", "actors", "tests"] {
        for (path, text) in sources(&root().join(dir)) {
            let listed = [
                "src/store/tables.rs",
                "src/store/mod.rs",
                "tests/it/layers.rs",
            ]
            .iter()
            .any(|f| path.ends_with(f));
            if !listed && (text.contains("Table::new(\"") || text.contains("open_tree(")) {
                bad.push(path.display().to_string());
            }
        }
    }
    assert_eq!(bad, Vec::<String>::new());
}

#[test]
fn no_actor_message_has_a_crash_variant() {
    assert_eq!(
        offending("actors", &["Crash,", "Crash =>", "crash requested"]),
        Vec::<String>::new()
    );
}
