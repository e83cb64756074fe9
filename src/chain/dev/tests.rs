use super::*;

pub(super) fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Plain `set_weights` (commit-reveal off).
fn cfg() -> DevChainConfig {
    DevChainConfig {
        tempo: 10,
        weights_rate_limit: 5,
        commit_reveal_enabled: false,
        ..Default::default()
    }
}

/// Commit-reveal on (the default), reveal period 1 epoch; epochs run at blocks 10, 20, ...
fn cr_cfg() -> DevChainConfig {
    DevChainConfig {
        commit_reveal_enabled: true,
        ..cfg()
    }
}

pub(super) fn advance_to(c: &DevChain, block: u64) {
    while run(c.best_block()).unwrap().number < block {
        c.produce_block().unwrap();
    }
}

/// A validator `v` (uid 0, staked) and miners `m1`, `m2` (uids 1, 2), at block 1.
pub(super) fn subnet(c: &DevChain) -> (Hotkey, Hotkey, Hotkey) {
    let v = Hotkey::dev("v");
    let (m1, m2) = (Hotkey::dev("m1"), Hotkey::dev("m2"));
    for k in [&v, &m1, &m2] {
        run(c.register(k, 102)).unwrap();
    }
    run(c.add_stake(&v, 102, 1000.0)).unwrap();
    advance_to(c, 1);
    (v, m1, m2)
}

/// The hash `k` commits for these weights.
fn hash(k: &Hotkey, uids: &[u16], values: &[u16], salt: &[u16], version_key: u64) -> [u8; 32] {
    commit_hash(&k.public(), 102, uids, values, salt, version_key)
}

const W_UIDS: [u16; 2] = [1, 2];
const W_VALUES: [u16; 2] = [65535, 21845];
const SALT: [u16; 4] = [11, 22, 33, 44];

fn commit_w(c: &DevChain, k: &Hotkey, salt: &[u16]) -> Result<(), ChainError> {
    run(c.commit_weights(k, 102, hash(k, &W_UIDS, &W_VALUES, salt, 0)))
}

fn reveal_w(c: &DevChain, k: &Hotkey, salt: &[u16]) -> Result<(), ChainError> {
    run(c.reveal_weights(k, 102, W_UIDS.to_vec(), W_VALUES.to_vec(), salt.to_vec(), 0))
}

#[test]
fn blocks_advance_and_hashes_are_stable() {
    let c = DevChain::in_memory(cfg(), 1, 100);
    let b = c.produce_block().unwrap();
    assert_eq!(b.number, 101);
    assert_eq!(run(c.block_hash(101)).unwrap(), b.hash);
    assert_ne!(run(c.block_hash(100)).unwrap(), b.hash);
    assert_eq!(run(c.block_hash(102)), Err(ChainError::UnknownBlock(102)));
}

#[test]
fn registration_gives_uids_and_rejects_twice() {
    let c = DevChain::in_memory(cfg(), 1, 0);
    assert_eq!(run(c.register(&Hotkey::dev("a"), 102)).unwrap(), 0);
    assert_eq!(run(c.register(&Hotkey::dev("b"), 102)).unwrap(), 1);
    assert_eq!(
        run(c.register(&Hotkey::dev("a"), 102)),
        Err(ChainError::HotKeyAlreadyRegisteredInSubNet)
    );
    assert_eq!(
        run(c.register(&Hotkey::dev("c"), 7)),
        Err(ChainError::SubnetworkDoesNotExist(7))
    );
}

#[test]
fn full_subnet_replaces_lowest_emission_outside_immunity() {
    let c = DevChain::in_memory(
        DevChainConfig {
            max_uids: 2,
            immunity_period: 3,
            ..cfg()
        },
        1,
        0,
    );
    run(c.register(&Hotkey::dev("a"), 102)).unwrap();
    run(c.register(&Hotkey::dev("b"), 102)).unwrap();
    assert_eq!(
        run(c.register(&Hotkey::dev("c"), 102)),
        Err(ChainError::NoNeuronIdAvailable)
    );
    for _ in 0..3 {
        c.produce_block().unwrap();
    }
    assert_eq!(run(c.register(&Hotkey::dev("c"), 102)).unwrap(), 0);
}

#[test]
fn commitments_are_bounded_and_need_registration() {
    let c = DevChain::in_memory(cfg(), 1, 0);
    let k = Hotkey::dev("m");
    assert_eq!(
        run(c.set_commitment(&k, 102, vec![1])),
        Err(ChainError::HotKeyNotRegisteredInSubNet)
    );
    run(c.register(&k, 102)).unwrap();
    assert!(matches!(
        run(c.set_commitment(&k, 102, vec![0; 129])),
        Err(ChainError::CommitmentTooLarge { .. })
    ));
    c.produce_block().unwrap();
    run(c.set_commitment(&k, 102, b"x".to_vec())).unwrap();
    let cs = run(c.commitments(102)).unwrap();
    assert_eq!((cs[0].data.clone(), cs[0].block), (b"x".to_vec(), 1));
}

#[test]
fn weights_rules_and_epoch_incentive() {
    let c = DevChain::in_memory(cfg(), 1, 0);
    let v = Hotkey::dev("v");
    let (m1, m2) = (Hotkey::dev("m1"), Hotkey::dev("m2"));
    for k in [&v, &m1, &m2] {
        run(c.register(k, 102)).unwrap();
    }
    run(c.add_stake(&v, 102, 1000.0)).unwrap();
    assert_eq!(
        run(c.set_weights(&v, 102, vec![1, 1], vec![1, 2], 0)),
        Err(ChainError::DuplicateUids)
    );
    assert_eq!(
        run(c.set_weights(&v, 102, vec![9], vec![1], 0)),
        Err(ChainError::UidVecContainInvalidOne)
    );
    assert_eq!(
        run(c.set_weights(&v, 102, vec![1], vec![1, 2], 0)),
        Err(ChainError::WeightVecNotEqualSize)
    );
    assert_eq!(
        run(c.set_weights(&m1, 102, vec![2], vec![1], 0)),
        Err(ChainError::NeuronNoValidatorPermit)
    );
    c.produce_block().unwrap();
    run(c.set_weights(&v, 102, vec![1, 2], vec![65535, 21845], 0)).unwrap();
    assert!(matches!(
        run(c.set_weights(&v, 102, vec![1], vec![1], 0)),
        Err(ChainError::SettingWeightsTooFast { .. })
    ));
    for _ in 0..10 {
        c.produce_block().unwrap();
    }
    let mg = run(c.metagraph(102)).unwrap();
    assert!((mg[1].incentive - 0.75).abs() < 1e-6, "{:?}", mg[1]);
    assert!((mg[2].incentive - 0.25).abs() < 1e-6);
    assert!(mg[0].dividends > 0.99);
    assert!(mg[1].emission > mg[2].emission && mg[2].emission > 0.0);
}

#[test]
fn version_key_is_enforced() {
    let c = DevChain::in_memory(
        DevChainConfig {
            weights_version_key: 5,
            ..cfg()
        },
        1,
        0,
    );
    let v = Hotkey::dev("v");
    run(c.register(&v, 102)).unwrap();
    run(c.register(&Hotkey::dev("m"), 102)).unwrap();
    run(c.add_stake(&v, 102, 1.0)).unwrap();
    assert_eq!(
        run(c.set_weights(&v, 102, vec![1], vec![1], 4)),
        Err(ChainError::IncorrectWeightVersionKey { chain: 5, given: 4 })
    );
    run(c.set_weights(&v, 102, vec![1], vec![1], 5)).unwrap();
}

#[test]
fn restarted_chain_continues_at_the_same_block() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = Store::open(dir.path()).unwrap();
        let c = DevChain::open(cfg(), store.clone(), 9, 50).unwrap();
        run(c.register(&Hotkey::dev("a"), 102)).unwrap();
        c.produce_block().unwrap();
        let head = c.produce_block().unwrap();
        store.flush().unwrap();
        (head.hash, c.block_hash_of(51), c.block_hash_of(0))
    };
    let c = DevChain::open(cfg(), reopen(dir.path()), 123, 0).unwrap();
    let b = run(c.best_block()).unwrap();
    assert_eq!(b.number, 52);
    let after = (b.hash, c.block_hash_of(51), c.block_hash_of(0));
    assert_eq!(after, before, "the salt, and so every hash, is kept");
    assert_eq!(run(c.metagraph(102)).unwrap().len(), 1);
}

#[test]
fn default_config_has_commit_reveal_on_with_period_one() {
    let d = DevChainConfig::default();
    assert!(d.commit_reveal_enabled);
    assert_eq!(d.reveal_period_epochs, 1);
    // Configs written before these fields existed still load.
    let old: DevChainConfig = serde_json::from_str(r#"{"tempo": 7}"#).unwrap();
    assert!(old.commit_reveal_enabled && old.tempo == 7);
}

#[test]
fn weights_params_report_the_path_and_the_epoch() {
    let c = DevChain::in_memory(cr_cfg(), 1, 0);
    advance_to(&c, 12);
    assert_eq!(
        run(c.weights_params(102)).unwrap(),
        WeightsParams {
            commit_reveal_enabled: true,
            reveal_period_epochs: 1,
            tempo: 10,
            weights_rate_limit: 5,
            version_key: 0,
            epoch_index: 1,
            last_epoch_block: 10,
        }
    );
    assert_eq!(
        run(c.weights_params(7)),
        Err(ChainError::SubnetworkDoesNotExist(7))
    );
}

#[test]
fn set_weights_is_refused_while_commit_reveal_is_on() {
    let c = DevChain::in_memory(cr_cfg(), 1, 0);
    let (v, ..) = subnet(&c);
    assert_eq!(
        run(c.set_weights(&v, 102, W_UIDS.to_vec(), W_VALUES.to_vec(), 0)),
        Err(ChainError::CommitRevealEnabled)
    );
    assert!(c.extrinsics(&v.public()).is_empty());
}

#[test]
fn commit_and_reveal_are_refused_while_commit_reveal_is_off() {
    let c = DevChain::in_memory(cfg(), 1, 0);
    let (v, ..) = subnet(&c);
    assert_eq!(
        commit_w(&c, &v, &SALT),
        Err(ChainError::CommitRevealDisabled)
    );
    assert_eq!(
        reveal_w(&c, &v, &SALT),
        Err(ChainError::CommitRevealDisabled)
    );
}

#[test]
fn commit_then_reveal_in_the_next_epoch_sets_weights_and_pays_incentive() {
    let c = DevChain::in_memory(cr_cfg(), 1, 0);
    let (v, ..) = subnet(&c);
    assert_eq!(
        run(c.commit_weights(&Hotkey::dev("stranger"), 102, [0; 32])),
        Err(ChainError::HotKeyNotRegisteredInSubNet)
    );
    commit_w(&c, &v, &SALT).unwrap();
    let h = hash(&v, &W_UIDS, &W_VALUES, &SALT, 0);
    assert_eq!(
        run(c.weight_commits(102, &v.public())).unwrap(),
        vec![WeightCommit {
            hash: h,
            commit_block: 1,
            commit_epoch: 0
        }]
    );
    // The commit counts as the weights call: LastUpdate is the commit block.
    assert_eq!(run(c.metagraph(102)).unwrap()[0].last_update, 1);

    advance_to(&c, 10); // epoch 1 runs at block 10: the reveal epoch.
    assert_eq!(run(c.weights_params(102)).unwrap().epoch_index, 1);
    reveal_w(&c, &v, &SALT).unwrap();
    assert!(run(c.weight_commits(102, &v.public())).unwrap().is_empty());
    // As on chain, the reveal leaves LastUpdate at the commit block.
    assert_eq!(run(c.metagraph(102)).unwrap()[0].last_update, 1);
    // The commit is consumed: revealing again finds nothing.
    assert_eq!(
        reveal_w(&c, &v, &SALT),
        Err(ChainError::NoWeightsCommitFound)
    );

    advance_to(&c, 20);
    let mg = run(c.metagraph(102)).unwrap();
    assert!((mg[1].incentive - 0.75).abs() < 1e-6, "{:?}", mg[1]);
    assert!((mg[2].incentive - 0.25).abs() < 1e-6, "{:?}", mg[2]);
    assert!(mg[0].dividends > 0.99);
    assert!(mg[1].emission > mg[2].emission && mg[2].emission > 0.0);
    assert_eq!(
        c.extrinsics(&v.public()),
        vec![
            (1, "commit_weights".to_string()),
            (10, "reveal_weights".to_string())
        ]
    );
}

#[test]
fn reveal_before_the_reveal_epoch_is_too_early_and_keeps_the_commit() {
    let c = DevChain::in_memory(cr_cfg(), 1, 0);
    let (v, ..) = subnet(&c);
    commit_w(&c, &v, &SALT).unwrap();
    advance_to(&c, 9); // still epoch 0
    assert_eq!(reveal_w(&c, &v, &SALT), Err(ChainError::RevealTooEarly));
    assert_eq!(run(c.weight_commits(102, &v.public())).unwrap().len(), 1);
    advance_to(&c, 10);
    reveal_w(&c, &v, &SALT).unwrap();
}

#[test]
fn a_longer_reveal_period_moves_the_window() {
    let c = DevChain::in_memory(
        DevChainConfig {
            reveal_period_epochs: 2,
            ..cr_cfg()
        },
        1,
        0,
    );
    let (v, ..) = subnet(&c);
    commit_w(&c, &v, &SALT).unwrap();
    advance_to(&c, 10);
    assert_eq!(reveal_w(&c, &v, &SALT), Err(ChainError::RevealTooEarly));
    advance_to(&c, 20);
    reveal_w(&c, &v, &SALT).unwrap();
}

#[test]
fn reveal_after_the_reveal_epoch_is_expired_and_the_commit_is_purged() {
    let c = DevChain::in_memory(cr_cfg(), 1, 0);
    let (v, ..) = subnet(&c);
    commit_w(&c, &v, &SALT).unwrap();
    advance_to(&c, 20); // epoch 2: the window (epoch 1) has passed
    assert_eq!(
        reveal_w(&c, &v, &SALT),
        Err(ChainError::ExpiredWeightCommit)
    );
    // Different data against only an expired commit: nothing to reveal.
    assert_eq!(
        reveal_w(&c, &v, &[1]),
        Err(ChainError::NoWeightsCommitFound)
    );
    advance_to(&c, 30); // the next epoch purges it
    assert!(run(c.weight_commits(102, &v.public())).unwrap().is_empty());
    assert_eq!(
        reveal_w(&c, &v, &SALT),
        Err(ChainError::NoWeightsCommitFound)
    );
}

#[test]
fn reveal_with_other_data_than_committed_does_not_match() {
    let c = DevChain::in_memory(cr_cfg(), 1, 0);
    let (v, m1, _) = subnet(&c);
    commit_w(&c, &v, &SALT).unwrap();
    advance_to(&c, 10);
    assert_eq!(
        reveal_w(&c, &v, &[11, 22, 33, 45]),
        Err(ChainError::InvalidRevealCommitHashNotMatch)
    );
    assert_eq!(
        run(c.reveal_weights(&v, 102, vec![1, 2], vec![65535, 21844], SALT.to_vec(), 0)),
        Err(ChainError::InvalidRevealCommitHashNotMatch)
    );
    assert_eq!(
        run(c.reveal_weights(
            &v,
            102,
            W_UIDS.to_vec(),
            W_VALUES.to_vec(),
            SALT.to_vec(),
            1
        )),
        Err(ChainError::InvalidRevealCommitHashNotMatch)
    );
    // The hash binds the signer: another hotkey cannot reveal it.
    run(c.add_stake(&m1, 102, 1.0)).unwrap();
    assert_eq!(
        reveal_w(&c, &m1, &SALT),
        Err(ChainError::NoWeightsCommitFound)
    );
    reveal_w(&c, &v, &SALT).unwrap();
}

#[test]
fn reveal_without_any_commit_is_not_found() {
    let c = DevChain::in_memory(cr_cfg(), 1, 0);
    let (v, ..) = subnet(&c);
    assert_eq!(
        reveal_w(&c, &v, &SALT),
        Err(ChainError::NoWeightsCommitFound)
    );
    assert_eq!(
        reveal_w(&c, &Hotkey::dev("stranger"), &SALT),
        Err(ChainError::HotKeyNotRegisteredInSubNet)
    );
}

#[test]
fn eleventh_unrevealed_commit_is_rejected_until_some_expire() {
    let c = DevChain::in_memory(
        DevChainConfig {
            weights_rate_limit: 0,
            ..cr_cfg()
        },
        1,
        0,
    );
    let (v, ..) = subnet(&c);
    for i in 0..10u16 {
        commit_w(&c, &v, &[i]).unwrap();
    }
    assert_eq!(
        commit_w(&c, &v, &[10]),
        Err(ChainError::TooManyUnrevealedCommits)
    );
    assert_eq!(run(c.weight_commits(102, &v.public())).unwrap().len(), 10);
    // Expired commits do not count, and a new commit clears them out.
    advance_to(&c, 20);
    commit_w(&c, &v, &[10]).unwrap();
    let left = run(c.weight_commits(102, &v.public())).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].commit_epoch, 2);
}

#[test]
fn commits_are_rate_limited_like_set_weights() {
    let c = DevChain::in_memory(cr_cfg(), 1, 0);
    let (v, ..) = subnet(&c);
    commit_w(&c, &v, &[1]).unwrap();
    advance_to(&c, 4);
    assert_eq!(
        commit_w(&c, &v, &[2]),
        Err(ChainError::CommittingWeightsTooFast { blocks_left: 2 })
    );
    advance_to(&c, 6);
    commit_w(&c, &v, &[2]).unwrap();
}

#[test]
fn reveal_takes_out_the_revealed_commit_and_older_ones_only() {
    let c = DevChain::in_memory(cr_cfg(), 1, 0);
    let (v, ..) = subnet(&c);
    commit_w(&c, &v, &[1]).unwrap(); // epoch 0, block 1
    advance_to(&c, 10);
    commit_w(&c, &v, &[2]).unwrap(); // epoch 1, block 10
    assert_eq!(reveal_w(&c, &v, &[2]), Err(ChainError::RevealTooEarly));
    reveal_w(&c, &v, &[1]).unwrap();
    let left = run(c.weight_commits(102, &v.public())).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].commit_block, left[0].commit_epoch), (10, 1));
    advance_to(&c, 20);
    reveal_w(&c, &v, &[2]).unwrap();

    // Revealing a newer commit drops the older ones queued before it, as on chain.
    let c = DevChain::in_memory(
        DevChainConfig {
            weights_rate_limit: 0,
            ..cr_cfg()
        },
        1,
        0,
    );
    let (v, ..) = subnet(&c);
    commit_w(&c, &v, &[1]).unwrap();
    commit_w(&c, &v, &[2]).unwrap();
    advance_to(&c, 10);
    reveal_w(&c, &v, &[2]).unwrap();
    assert!(run(c.weight_commits(102, &v.public())).unwrap().is_empty());
}

#[test]
fn reveal_applies_the_set_weights_checks_and_keeps_the_commit_on_failure() {
    let c = DevChain::in_memory(
        DevChainConfig {
            weights_rate_limit: 0,
            weights_version_key: 5,
            ..cr_cfg()
        },
        1,
        0,
    );
    let (v, m1, _) = subnet(&c);
    // (signer, uids, values, version key, the rejection of the reveal)
    type Case = (Hotkey, Vec<u16>, Vec<u16>, u64, ChainError);
    let cases: Vec<Case> = vec![
        (
            v.clone(),
            vec![1, 1],
            vec![1, 2],
            5,
            ChainError::DuplicateUids,
        ),
        (
            v.clone(),
            vec![9],
            vec![1],
            5,
            ChainError::UidVecContainInvalidOne,
        ),
        (
            v.clone(),
            vec![1],
            vec![1, 2],
            5,
            ChainError::WeightVecNotEqualSize,
        ),
        (
            v.clone(),
            vec![1],
            vec![1],
            4,
            ChainError::IncorrectWeightVersionKey { chain: 5, given: 4 },
        ),
        (
            m1.clone(),
            vec![2],
            vec![1],
            5,
            ChainError::NeuronNoValidatorPermit,
        ),
    ];
    for (k, uids, values, vk, _) in &cases {
        run(c.commit_weights(k, 102, hash(k, uids, values, &SALT, *vk))).unwrap();
    }
    advance_to(&c, 10);
    for (k, uids, values, vk, err) in cases {
        assert_eq!(
            run(c.reveal_weights(&k, 102, uids, values, SALT.to_vec(), vk)),
            Err(err)
        );
    }
    assert_eq!(run(c.weight_commits(102, &v.public())).unwrap().len(), 4);
    assert_eq!(run(c.weight_commits(102, &m1.public())).unwrap().len(), 1);
    assert!(
        c.extrinsics(&v.public())
            .iter()
            .all(|(_, call)| call == "commit_weights")
    );
}

#[test]
fn pending_commits_and_the_extrinsic_log_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let v = {
        let store = Store::open(dir.path()).unwrap();
        let c = DevChain::open(cr_cfg(), store.clone(), 9, 0).unwrap();
        let (v, ..) = subnet(&c);
        run(c.set_commitment(&v, 102, b"hi".to_vec())).unwrap();
        commit_w(&c, &v, &SALT).unwrap();
        advance_to(&c, 8);
        store.flush().unwrap();
        v
    };
    let c = DevChain::open(cr_cfg(), reopen(dir.path()), 1, 0).unwrap();
    assert_eq!(run(c.best_block()).unwrap().number, 8);
    assert_eq!(
        run(c.weight_commits(102, &v.public())).unwrap(),
        vec![WeightCommit {
            hash: hash(&v, &W_UIDS, &W_VALUES, &SALT, 0),
            commit_block: 1,
            commit_epoch: 0
        }]
    );
    assert_eq!(
        c.extrinsics(&v.public()),
        vec![
            (1, "set_commitment".to_string()),
            (1, "commit_weights".to_string())
        ]
    );
    assert_eq!(reveal_w(&c, &v, &SALT), Err(ChainError::RevealTooEarly));
    advance_to(&c, 10);
    reveal_w(&c, &v, &SALT).unwrap();
    advance_to(&c, 20);
    assert!(run(c.metagraph(102)).unwrap()[1].incentive > 0.7);
}

#[test]
fn state_saved_before_commit_reveal_still_loads() {
    let c = DevChain::in_memory(cfg(), 1, 0);
    let (v, ..) = subnet(&c);
    run(c.set_weights(&v, 102, W_UIDS.to_vec(), W_VALUES.to_vec(), 0)).unwrap();
    let mut json = serde_json::to_value(&*c.state.lock().unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("extrinsics");
    // Before the epoch clock: `last_epoch_block` and `epochs` only; before the beacon: no drand.
    let o = json.as_object_mut().unwrap();
    o.remove("epoch_index").unwrap();
    // An index that is not the default, so a lost alias shows.
    let index = serde_json::json!(7);
    o.insert("epochs".into(), index.clone());
    for gone in [
        "pending_epoch_at",
        "blocks_since_last_step",
        "drand",
        "yuma_epochs",
        "runtime",
    ] {
        o.remove(gone).unwrap();
    }
    for n in json["neurons"].as_array_mut().unwrap() {
        let n = n.as_object_mut().unwrap();
        n.remove("commits").unwrap();
        n.remove("weights_called").unwrap();
    }
    let st: State = serde_json::from_value(json).unwrap();
    assert!(st.extrinsics.is_empty() && st.neurons[0].commits.is_empty());
    assert_eq!(serde_json::json!(st.clock.epoch_index), index);
    assert_eq!(st.drand, Default::default());
    // Weights on record still put the uid under the rate limit.
    let c = DevChain {
        cfg: cfg(),
        beacon: super::beacon::DevBeacon::of_salt(&[0; 32]),
        state: Mutex::new(st),
        store: None,
        pool: Mutex::default(),
        bodies: Mutex::default(),
        snapshot: Default::default(),
    };
    assert!(matches!(
        run(c.set_weights(&v, 102, vec![1], vec![1], 0)),
        Err(ChainError::SettingWeightsTooFast { .. })
    ));
}

/// Opens a store just closed in this process: sled's background flusher can hold the file
/// lock for a moment after the last handle is dropped, so retry (bounded) on that alone.
pub(crate) fn reopen(dir: &std::path::Path) -> Store {
    for _ in 0..100 {
        match Store::open(dir) {
            Ok(s) => return s,
            Err(e) if format!("{e:?}").contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the store's lock was not released within 5 s")
}

#[test]
fn commits_reveal_in_the_next_epoch_of_each_runtimes_clock_from_any_start_block() {
    use crate::chain::epoch_clock::Subnet;
    // (runtime, start block): a commit is revealed in its epoch + 1 by the runtime's clock;
    // before that it is too early, after it expired.
    for runtime in [DevRuntime::Spec425, DevRuntime::Spec365] {
        for start in [0, 1000, 4321] {
            let what = format!("{runtime:?} from block {start}");
            let c = DevChain::in_memory(
                DevChainConfig {
                    runtime,
                    ..cr_cfg()
                },
                1,
                start,
            );
            let (v, ..) = subnet(&c);
            advance_to(&c, start + 1);
            commit_w(&c, &v, &SALT).unwrap();
            let p = run(c.weights_params(102)).unwrap();
            let info = c.commit_info(&run(c.weight_commits(102, &v.public())).unwrap()[0]);
            // The reveal window is the epoch after the commit's, as the clock places it.
            let (clock, sub) = (
                runtime.clock(),
                Subnet {
                    netuid: 102,
                    tempo: 10,
                },
            );
            let st = c.state.lock().unwrap().clock;
            let block = run(c.best_block()).unwrap().number;
            let window = clock
                .epoch_blocks(&st, sub, block, p.epoch_index + 1)
                .unwrap();
            assert_eq!(
                (info.first_reveal_block, info.last_reveal_block),
                window,
                "{what}"
            );
            advance_to(&c, window.0 - 1);
            assert_eq!(
                reveal_w(&c, &v, &SALT),
                Err(ChainError::RevealTooEarly),
                "{what}"
            );
            c.produce_block().unwrap();
            reveal_w(&c, &v, &SALT).unwrap_or_else(|e| panic!("{what}: {e}"));
            // A second commit, left past its window, is expired.
            advance_to(&c, run(c.best_block()).unwrap().number + 10);
            commit_w(&c, &v, &[9]).unwrap();
            let late = c.commit_info(&run(c.weight_commits(102, &v.public())).unwrap()[0]);
            advance_to(&c, late.last_reveal_block + 1);
            assert_eq!(
                reveal_w(&c, &v, &[9]),
                Err(ChainError::ExpiredWeightCommit),
                "{what}"
            );
            // The window is a whole epoch: tempo blocks, or tempo + 1 on the legacy clock.
            let len = info.last_reveal_block - info.first_reveal_block + 1;
            assert_eq!(
                len,
                if runtime == DevRuntime::Spec365 {
                    11
                } else {
                    10
                },
                "{what}"
            );
        }
    }
}

#[test]
fn a_data_dir_is_refused_under_another_runtime_than_it_was_made_with() {
    let dir = tempfile::tempdir().unwrap();
    let at = |runtime| DevChainConfig { runtime, ..cfg() };
    drop(
        DevChain::open(
            at(DevRuntime::Spec365),
            Store::open(dir.path()).unwrap(),
            1,
            0,
        )
        .unwrap(),
    );
    let e = DevChain::open(at(DevRuntime::Spec425), reopen(dir.path()), 1, 0)
        .err()
        .unwrap();
    assert!(e.to_string().contains("Spec365 chain"), "{e}");
    DevChain::open(at(DevRuntime::Spec365), reopen(dir.path()), 1, 0).unwrap();
}
