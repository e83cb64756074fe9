//! The subxt client against `connito devnet` over a loopback socket: every read and submission a
//! daemon makes, the answers it gets back (inclusion block, Subtensor's error names), concurrent
//! senders of one key, and `connito chain metagraph|commitments` as an operator runs them.

use crate::common;

use std::process::Command;
use std::time::Duration;

use connito::chain::Reveal;
use connito::chain::subxt::SubxtClient;
use connito::chain::{Axon, BlockInfo, ChainClient, ChainError, commit_hash, netuid_index};
use connito::submission::Hotkey;
use connito::wallet::dev_key;

/// The devnet config, with the runtime (`spec425`: the stateful epoch clock; `spec365`: the
/// legacy one) to emulate.
fn config(runtime: &str) -> String {
    format!(
        r#"
block_time_ms = 100
[chain]
runtime = "{runtime}"
netuid = 102
tempo = 12
weights_rate_limit = 0
commit_reveal_enabled = true
reveal_period_epochs = 1
"#
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (bounded) until the finalized head passes `block`.
async fn finalized_after(c: &SubxtClient, block: u64) -> BlockInfo {
    for _ in 0..300 {
        let f = c.finalized_block().await.unwrap();
        if f.number > block {
            return f;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the chain did not pass block {block}");
}

#[test]
fn subxt_client_reads_and_submits_against_devnet() {
    reads_and_submits("spec425", 12);
}

/// The same against December 2025's runtime: the legacy epoch clock, whose `WeightCommits` rows
/// carry their reveal window and whose epochs are `tempo + 1` blocks.
#[test]
fn subxt_client_reads_and_submits_against_devnet_spec365() {
    reads_and_submits("spec365", 13);
}

/// Every read and submission against a devnet of `runtime`, whose epochs last `epoch_len`
/// blocks (the reveal window's length).
fn reads_and_submits(runtime: &str, epoch_len: u64) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("devnet.toml");
    std::fs::write(&cfg, config(runtime)).unwrap();
    let node = common::start_with(
        &dir.path().join("chain"),
        &["--config", cfg.to_str().unwrap()],
    );
    let url = format!("ws://127.0.0.1:{}", node.port);
    rt().block_on(async {
        let c = SubxtClient::new(&url);
        let alice = dev_key("//Alice").unwrap();
        let (v, m) = (Hotkey::dev("sx-validator"), Hotkey::dev("sx-miner"));
        for k in [&v, &m] {
            c.burned_register(&alice, 102, &k.public()).await.unwrap();
        }
        assert_eq!(
            c.burned_register(&alice, 102, &v.public()).await,
            Err(ChainError::HotKeyAlreadyRegisteredInSubNet)
        );
        c.add_stake(&alice, &v.public(), 102, 100_000_000_000)
            .await
            .unwrap();

        // A commitment, read back with its uid and block.
        let inc = c.set_commitment(&m, 102, b"hello".to_vec()).await.unwrap();
        let at = finalized_after(&c, inc.block).await;
        let cs = c.commitments(102, &at).await.unwrap();
        assert_eq!(cs.len(), 1, "{cs:?}");
        assert_eq!(
            (cs[0].uid, &cs[0].data[..], cs[0].block),
            (1, &b"hello"[..], inc.block)
        );

        // An axon; the metagraph shows it, the coldkey and the stake.
        let axon = Axon {
            ip: u128::from(u32::from(std::net::Ipv4Addr::new(10, 0, 0, 1))),
            port: 8091,
            ip_type: 4,
            ..Axon::default()
        };
        let inc = c.serve_axon(&m, 102, axon).await.unwrap();
        let at = finalized_after(&c, inc.block).await;
        let mg = c.metagraph(102, &at).await.unwrap();
        assert_eq!(mg.len(), 2);
        assert_eq!(mg[0].hotkey, v.public());
        assert_eq!(mg[0].coldkey, Some(alice.public()));
        assert!((mg[0].stake - 100.0).abs() < 1e-6, "{}", mg[0].stake);
        assert_eq!(mg[1].axon.map(|a| (a.ip, a.port)), Some((axon.ip, 8091)));
        assert_eq!(
            c.metagraph(7, &at).await,
            Err(ChainError::SubnetworkDoesNotExist(7))
        );
        // The storage-only reading (for runtimes without the metagraph API) agrees.
        assert_eq!(c.metagraph_from_storage(102, &at).await.unwrap(), mg);
        assert_eq!(
            c.metagraph_from_storage(7, &at).await,
            Err(ChainError::SubnetworkDoesNotExist(7))
        );

        // Hyperparameters, and commit-reveal with the chain's reveal window.
        let p = c.weights_params(102, &at).await.unwrap();
        assert!(p.commit_reveal_enabled);
        assert_eq!((p.tempo, p.reveal_period_epochs), (12, 1));
        let (uids, values, salt) = (vec![0u16, 1], vec![6553u16, 65535], vec![7u16; 8]);
        let hash = commit_hash(&v.public(), netuid_index(102, 0), &uids, &values, &salt, 0);
        assert_eq!(
            c.set_weights(&v, 102, uids.clone(), values.clone(), 0)
                .await,
            Err(ChainError::CommitRevealEnabled)
        );
        // Commit just after an epoch, so the reveal window is most of a tempo away.
        let last_epoch = p.last_epoch_block;
        loop {
            let f = c.finalized_block().await.unwrap();
            if c.weights_params(102, &f).await.unwrap().last_epoch_block > last_epoch {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let inc = c.commit_weights(&v, 102, hash).await.unwrap();
        let at = finalized_after(&c, inc.block).await;
        let commits = c.weight_commits(102, &v.public(), &at).await.unwrap();
        assert_eq!(commits.len(), 1);
        assert_eq!(
            (commits[0].hash, commits[0].commit_block),
            (hash, inc.block)
        );
        let window = (commits[0].first_reveal_block, commits[0].last_reveal_block);
        assert!(window.0 > inc.block && window.1 >= window.0, "{window:?}");
        assert_eq!(window.1 - window.0 + 1, epoch_len, "{window:?}");
        let reveal = Reveal {
            uids,
            values,
            salt,
            version_key: 0,
        };
        assert!(
            at.number + 4 < window.0,
            "at {} window {window:?}",
            at.number
        );
        assert_eq!(
            c.reveal_weights(&v, 102, reveal.clone()).await,
            Err(ChainError::RevealTooEarly)
        );
        finalized_after(&c, window.0).await;
        let inc = c.reveal_weights(&v, 102, reveal).await.unwrap();
        assert!((window.0..=window.1).contains(&inc.block));
        let at = finalized_after(&c, inc.block).await;
        assert!(
            c.weight_commits(102, &v.public(), &at)
                .await
                .unwrap()
                .is_empty()
        );
        // The revealed weights are stored (LastUpdate stays at the commit, as Subtensor does
        // with commit-reveal on).
        assert_eq!(
            c.weights(102, 0, &at).await.unwrap(),
            vec![(0, 6553), (1, 65535)]
        );

        // Concurrent senders of one key get distinct nonces.
        let bob = connito::chain::DEV_ACCOUNTS[1].1;
        let sends = (0..4).map(|_| c.transfer(&alice, &bob, 1_000_000_000));
        for r in subxt::ext::futures::future::join_all(sends).await {
            r.unwrap();
        }
    });

    // The operator's view, through the CLI.
    let run = |what: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_connito"))
            .args(["chain", what, "--chain-endpoint", &url, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let mg = run("metagraph");
    assert_eq!(
        mg["neurons"][0]["hotkey"],
        Hotkey::dev("sx-validator").address()
    );
    assert_eq!(mg["neurons"][1]["axon"], "10.0.0.1:8091");
    assert_eq!(
        mg["neurons"][0]["coldkey"],
        dev_key("//Alice").unwrap().address()
    );
    let cs = run("commitments");
    assert_eq!(cs["commitments"][0]["data"], "hello");
    drop(node);
}
