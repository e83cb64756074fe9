use parity_scale_codec::{Compact, Encode};

use super::super::super::DevChainConfig;
use super::super::tests::{reopen, run};
use super::*;
use crate::chain::dev::rpc::NodeView;
use crate::chain::substrate::extrinsic::{Era, sign};
use crate::submission::Hotkey;

fn chain(commit_reveal: bool) -> DevChain {
    let cfg = DevChainConfig {
        tempo: 10,
        weights_rate_limit: 5,
        commit_reveal_enabled: commit_reveal,
        ..Default::default()
    };
    DevChain::in_memory(cfg, 7, 0)
}

fn call(pallet: &str, name: &str, args: impl Encode) -> Vec<u8> {
    crate::chain::dev::calls::encode_call(pallet, name, args).unwrap()
}

/// An immortal extrinsic of `key` with `nonce`.
fn xt(c: &DevChain, key: &Hotkey, nonce: u32, call: &[u8]) -> Vec<u8> {
    let ctx = c.signing_context();
    sign(key, call, Era::Immortal, nonce, &ctx, &ctx.genesis)
}

fn transfer(to: &Hotkey, value: u64) -> Vec<u8> {
    call(
        "Balances",
        "transfer_keep_alive",
        (0u8, to.public(), Compact(value)),
    )
}

/// The encoded dispatch error of each extrinsic in a block, `None` for a success.
fn outcomes(c: &DevChain, block: u64) -> Vec<Option<Vec<u8>>> {
    let ev = c.block_body(block).events;
    let out = crate::chain::substrate::dispatch::outcomes(&ev).expect("an events blob");
    out.into_iter().map(Result::err).collect()
}

fn module_error(name: &str) -> Option<Vec<u8>> {
    let (p, e) = ChainMetadata::finney()
        .error_index("SubtensorModule", name)
        .unwrap();
    Some(vec![3, p, e, 0, 0, 0])
}

#[test]
fn transfer_goes_into_the_next_block_with_events() {
    let c = chain(false);
    let (a, b) = (Hotkey::dev("a"), Hotkey::dev("b"));
    c.endow(&a.public(), 10_000_000_000).unwrap();
    let bytes = xt(&c, &a, 0, &transfer(&b, 3_000_000_000));
    let hash = c.submit_extrinsic(&bytes).unwrap();
    assert_eq!(hash, extrinsic::extrinsic_hash(&bytes));
    assert_eq!(c.next_index(&a.public()), 1);
    let head = c.produce_block().unwrap();
    let body = c.block_body(head.number);
    assert_eq!(body.extrinsics, vec![bytes]);
    assert_eq!(outcomes(&c, head.number), vec![None]);
    // Balances.Transfer, then System.ExtrinsicSuccess (polkadot.js looks for both).
    let transfer = crate::chain::substrate::dispatch::Event::Transfer {
        from: a.public(),
        to: b.public(),
        amount: 3_000_000_000,
    };
    assert_eq!(
        body.events,
        crate::chain::substrate::dispatch::encode_block_events(&[(Ok(()), vec![transfer])])
    );
    let st = c.state.lock().unwrap();
    assert_eq!(DevChain::account(&st, &a.public()).free, 7_000_000_000);
    assert_eq!(DevChain::account(&st, &a.public()).nonce, 1);
    assert_eq!(DevChain::account(&st, &b.public()).free, 3_000_000_000);
}

#[test]
fn development_accounts_are_funded_at_genesis() {
    let c = chain(false);
    let accounts = c.accounts();
    assert_eq!(accounts.len(), DEV_ACCOUNTS.len());
    assert!(accounts.iter().all(|(_, a)| a.free == DEV_ENDOWMENT));
    // The public keys are //Alice ... //Ferdie's: Alice's SS58 address is the well-known one.
    let alice = crate::submission::keys::ss58(&DEV_ACCOUNTS[0].1, 42);
    assert_eq!(alice, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
}

#[test]
fn nonce_rules_at_submission() {
    let c = chain(false);
    let (a, b) = (Hotkey::dev("a"), Hotkey::dev("b"));
    c.endow(&a.public(), 10_000_000_000).unwrap();
    let first = xt(&c, &a, 0, &transfer(&b, 1_000_000));
    c.submit_extrinsic(&first).unwrap();
    let table: Vec<(&str, Vec<u8>, ExtrinsicError)> = vec![
        (
            "same bytes again",
            first.clone(),
            ExtrinsicError::AlreadyImported,
        ),
        (
            "same nonce, other call",
            xt(&c, &a, 0, &transfer(&b, 2_000_000)),
            ExtrinsicError::TooLowPriority,
        ),
        (
            "a gap",
            xt(&c, &a, 5, &transfer(&b, 1_000_000)),
            ExtrinsicError::Invalid(InvalidTransaction::Future),
        ),
    ];
    for (name, bytes, want) in table {
        assert_eq!(c.submit_extrinsic(&bytes), Err(want), "{name}");
    }
    c.submit_extrinsic(&xt(&c, &a, 1, &transfer(&b, 1_000_000)))
        .unwrap();
    c.produce_block().unwrap();
    assert_eq!(
        c.submit_extrinsic(&xt(&c, &a, 1, &transfer(&b, 7_000_000))),
        Err(ExtrinsicError::Invalid(InvalidTransaction::Stale))
    );
    assert_eq!(c.next_index(&a.public()), 2);
}

#[test]
fn signature_and_era_checks() {
    let c = chain(false);
    for _ in 0..10 {
        c.produce_block().unwrap();
    }
    let (a, b) = (Hotkey::dev("a"), Hotkey::dev("b"));
    let ctx = c.signing_context();
    let t = transfer(&b, 1);
    let mut other_genesis = ctx;
    other_genesis.genesis = [1; 32];
    let birth9 = c.block_hash_of(9);
    let table: Vec<(&str, Vec<u8>, ExtrinsicError)> = vec![
        (
            "signed for another chain",
            sign(
                &a,
                &t,
                Era::Immortal,
                0,
                &other_genesis,
                &other_genesis.genesis,
            ),
            ExtrinsicError::Invalid(InvalidTransaction::BadProof),
        ),
        (
            "birth block in the future",
            sign(&a, &t, Era::mortal(64, 50), 0, &ctx, &birth9),
            ExtrinsicError::Invalid(InvalidTransaction::AncientBirthBlock),
        ),
        (
            // Born at block 0 for 4 blocks: from block 11 the era names block 8.
            "expired era",
            sign(&a, &t, Era::mortal(4, 0), 0, &ctx, &c.block_hash_of(0)),
            ExtrinsicError::Invalid(InvalidTransaction::BadProof),
        ),
    ];
    for (name, bytes, want) in table {
        assert_eq!(c.submit_extrinsic(&bytes), Err(want), "{name}");
    }
    // Mortal, born at the best block, as the SDK signs.
    let ok = sign(&a, &t, Era::mortal(128, 9), 0, &ctx, &birth9);
    c.submit_extrinsic(&ok).unwrap();
}

#[test]
fn unsigned_and_unsupported_calls_are_refused() {
    let c = chain(false);
    let mut body = vec![0x04];
    body.extend(transfer(&Hotkey::dev("b"), 1));
    let mut unsigned = Compact(body.len() as u32).encode();
    unsigned.extend(body);
    assert_eq!(c.submit_extrinsic(&unsigned).unwrap_err().code(), 1011);
    let remark = xt(
        &c,
        &Hotkey::dev("a"),
        0,
        &call("System", "remark", vec![1u8]),
    );
    assert_eq!(
        c.submit_extrinsic(&remark),
        Err(ExtrinsicError::Invalid(InvalidTransaction::Call))
    );
}

#[test]
fn subnet_flow_by_extrinsics() {
    let c = chain(false);
    let (cold, hot, miner) = (Hotkey::dev("cold"), Hotkey::dev("hot"), Hotkey::dev("m"));
    c.endow(&cold.public(), 100_000_000_000).unwrap();
    let txs = [
        call("SubtensorModule", "burned_register", (102u16, hot.public())),
        call(
            "SubtensorModule",
            "burned_register",
            (102u16, miner.public()),
        ),
        call(
            "SubtensorModule",
            "add_stake",
            (hot.public(), 102u16, 5_000_000_000u64),
        ),
        call("SubtensorModule", "burned_register", (9u16, hot.public())),
        call(
            "SubtensorModule",
            "add_stake",
            (hot.public(), 102u16, u64::MAX),
        ),
    ];
    for (nonce, t) in txs.iter().enumerate() {
        c.submit_extrinsic(&xt(&c, &cold, nonce as u32, t)).unwrap();
    }
    let b1 = c.produce_block().unwrap().number;
    assert_eq!(
        outcomes(&c, b1),
        vec![
            None,
            None,
            None,
            module_error("SubnetNotExists"),
            module_error("NotEnoughBalanceToStake"),
        ]
    );
    let axon = (102u16, 1u32, 0x0a00_0001u128, 8091u16, 4u8, 0u8, 0u8, 0u8);
    let set = (102u16, vec![0u16, 1], vec![1u16, 3], 0u64);
    let hot_txs = [
        call("SubtensorModule", "serve_axon", axon),
        call("SubtensorModule", "set_weights", set),
        call(
            "SubtensorModule",
            "set_weights",
            (102u16, vec![1u16], vec![1u16], 0u64),
        ),
    ];
    for (nonce, t) in hot_txs.iter().enumerate() {
        c.submit_extrinsic(&xt(&c, &hot, nonce as u32, t)).unwrap();
    }
    let b2 = c.produce_block().unwrap().number;
    assert_eq!(
        outcomes(&c, b2),
        vec![None, None, module_error("SettingWeightsTooFast")]
    );
    let m = run(c.metagraph(102)).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!((m[0].stake, m[0].last_update), (5.0, b2));
    let st = c.state.lock().unwrap();
    let n = &st.neurons[0];
    assert_eq!(n.coldkey, Some(cold.public()));
    assert_eq!(n.weights, vec![(0, 21845), (1, 65535)]);
    assert_eq!(
        n.axon.map(|a| (a.ip, a.port, a.block)),
        Some((0x0a00_0001, 8091, b2))
    );
    let burn = DevChainConfig::default().burn;
    let left = 100_000_000_000 - 2 * burn - 5_000_000_000;
    assert_eq!(DevChain::account(&st, &cold.public()).free, left);
}

#[test]
fn ip_validity_table() {
    for (ty, ip, ok) in [
        (4, 0x0a00_0001, true),
        (4, 0x7f00_0001, false),
        (4, 0, false),
        (4, u128::from(u32::MAX), false),
        (6, 2, true),
        (6, 1, false),
        (5, 1, false),
    ] {
        assert_eq!(valid_ip(ty, ip), ok, "type {ty} ip {ip:#x}");
    }
}

#[test]
fn bodies_survive_a_restart_and_age_out() {
    let dir = tempfile::tempdir().unwrap();
    let a = Hotkey::dev("a");
    let open = || {
        let store = Store::open(dir.path()).unwrap();
        DevChain::open(DevChainConfig::default(), store, 1, 0).unwrap()
    };
    let bytes;
    {
        let c = open();
        c.endow(&a.public(), 10_000_000_000).unwrap();
        bytes = xt(&c, &a, 0, &transfer(&Hotkey::dev("b"), 1_000_000_000));
        c.submit_extrinsic(&bytes).unwrap();
        c.produce_block().unwrap();
    }
    let c = open();
    assert_eq!(c.block_body(1).extrinsics, vec![bytes]);
    assert_eq!(c.next_index(&a.public()), 1);
}

#[test]
fn bodies_age_out_with_their_block_hashes() {
    let c = chain(false);
    let a = Hotkey::dev("a");
    c.endow(&a.public(), 10_000_000_000).unwrap();
    c.submit_extrinsic(&xt(&c, &a, 0, &transfer(&Hotkey::dev("b"), 1_000_000_000)))
        .unwrap();
    c.produce_block().unwrap();
    assert_eq!(c.block_body(1).extrinsics.len(), 1);
    while c.best().0 < BLOCK_HASH_COUNT + 1 {
        c.produce_block().unwrap();
    }
    assert!(c.block_body(1).extrinsics.is_empty());
    assert_eq!(c.block_body(1).events, vec![0]);
}

#[test]
fn a_body_past_the_best_block_is_dropped_at_open() {
    // A crash between writing block 2's body and the state that seals block 2.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let c = DevChain::open(DevChainConfig::default(), store.clone(), 1, 0).unwrap();
        c.produce_block().unwrap();
        let ghost = BlockBody {
            extrinsics: vec![vec![1, 2, 3]],
            events: vec![0],
        };
        store.put(&BODIES, &2, &ghost).unwrap();
    }
    let store = reopen(dir.path());
    let c = DevChain::open(DevChainConfig::default(), store, 1, 0).unwrap();
    assert_eq!(c.best().0, 1);
    c.produce_block().unwrap();
    assert!(c.block_body(2).extrinsics.is_empty());
}

#[test]
fn zero_transfers_move_nothing() {
    let c = chain(false);
    let (a, b) = (Hotkey::dev("a"), Hotkey::dev("b"));
    c.submit_extrinsic(&xt(&c, &a, 0, &transfer(&b, 0)))
        .unwrap();
    let head = c.produce_block().unwrap().number;
    assert_eq!(outcomes(&c, head), vec![None]);
}

#[test]
fn the_storage_snapshot_is_rebuilt_only_when_the_state_changes() {
    let c = chain(false);
    let first = c.storage_snapshot();
    assert!(std::sync::Arc::ptr_eq(&first, &c.storage_snapshot()));
    run(c.register(&Hotkey::dev("a"), 102)).unwrap();
    let registered = c.storage_snapshot();
    assert!(registered.len() > first.len());
    c.produce_block().unwrap();
    assert!(!std::sync::Arc::ptr_eq(&registered, &c.storage_snapshot()));
}
