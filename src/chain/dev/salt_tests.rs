//! Block hashes derive from a random salt kept with the chain's state.

use super::tests::run;
use super::*;

fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn two_fresh_chains_with_the_same_config_have_different_hashes() {
    let cfg = DevChainConfig::default;
    let (a, b) = (
        DevChain::in_memory(cfg(), 1, 0),
        DevChain::in_memory(cfg(), 1, 0),
    );
    assert_ne!(
        a.produce_block().unwrap().hash,
        b.produce_block().unwrap().hash
    );
    assert_ne!(a.block_hash_of(0), b.block_hash_of(0));
    let ((_d1, s1), (_d2, s2)) = (fresh_store(), fresh_store());
    let (a, b) = (
        DevChain::open(cfg(), s1, 1, 0).unwrap(),
        DevChain::open(cfg(), s2, 1, 0).unwrap(),
    );
    assert_ne!(
        a.produce_block().unwrap().hash,
        b.produce_block().unwrap().hash
    );
}

#[test]
fn a_block_hash_is_blake2_of_its_scale_header_whose_roots_hold_the_salt() {
    use crate::chain::dev::rpc::NodeView;
    let c = DevChain::in_memory(DevChainConfig::default(), 1, 0);
    let head = c.produce_block().unwrap();
    let header = c.header(Some(head.hash)).unwrap();
    assert_eq!(header.hash(), head.hash);
    assert_eq!(header.parent_hash, c.block_hash_of(0));
    let other = Salt([7; 32]);
    let elsewhere = DevChain::header_of(&other, 1, header.parent_hash);
    assert_ne!(elsewhere.state_root, header.state_root);
    assert_ne!(elsewhere.extrinsics_root, header.extrinsics_root);
}

#[test]
fn the_salt_is_never_printed() {
    assert_eq!(format!("{:?}", Salt([7; 32])), "Salt(..)");
}

#[test]
fn a_state_stored_before_salts_loads_and_keeps_the_salt_it_gets() {
    let (_dir, store) = fresh_store();
    {
        let c = DevChain::open(DevChainConfig::default(), store.clone(), 1, 0).unwrap();
        run(c.register(&Hotkey::dev("a"), 102)).unwrap();
        c.produce_block().unwrap();
    }
    let mut old = store
        .get(&DEV_CHAIN.as_json(), &DEV_STATE_KEY)
        .unwrap()
        .unwrap();
    old.as_object_mut().unwrap().remove("salt").unwrap();
    store
        .put_durable(&DEV_CHAIN.as_json(), &DEV_STATE_KEY, &old)
        .unwrap();

    let c = DevChain::open(DevChainConfig::default(), store.clone(), 1, 0).unwrap();
    let head = run(c.best_block()).unwrap();
    assert_eq!(head.number, 1);
    assert_eq!(run(c.metagraph(102)).unwrap().len(), 1);
    drop(c);
    let again = DevChain::open(DevChainConfig::default(), store, 1, 0).unwrap();
    assert_eq!(
        run(again.best_block()).unwrap().hash,
        head.hash,
        "the salt given at open was persisted"
    );
}
