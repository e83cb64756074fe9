//! The dev chain seen as a Substrate node: its state as storage items keyed and encoded the way
//! finney's runtime does it (keys hashed with the hashers the metadata names, values in the
//! metadata's types), block hashes and headers, and runtime calls. [`NodeView`] is what
//! `connito devnet`'s JSON-RPC answers from.
//!
//! Storage is served as of the best block whatever block a client names (the dev chain keeps no
//! history), except `System.Events`, which is the named block's; a block older than the last
//! [`BLOCK_HASH_COUNT`] is unknown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use parity_scale_codec::Encode;

use super::{DevChain, State};
use crate::chain::EpochClock;
use crate::chain::dev::rpc::{Header, NodeView};
use crate::chain::dev::static_api::{RuntimeCallError, RuntimeVersion, static_call};
use crate::chain::substrate::extrinsic::ExtrinsicError;
use crate::chain::substrate::hashing::hash_key;
use crate::chain::substrate::metadata::ChainMetadata;
use crate::tensors::Hash32;

/// Blocks whose hashes are kept (`System.BlockHashCount` on finney).
pub const BLOCK_HASH_COUNT: u64 = 2400;

/// Storage as key → SCALE value.
pub type Storage = BTreeMap<Vec<u8>, Vec<u8>>;

/// The last storage snapshot, dropped whenever the state changes.
#[derive(Default)]
pub(super) struct SnapshotCache(Mutex<Option<Arc<Storage>>>);

impl SnapshotCache {
    pub(super) fn invalidate(&self) {
        *self.0.lock().expect("snapshot lock") = None;
    }
}

/// Writes one storage item: key parts are SCALE-encoded and hashed with the hashers the metadata
/// gives the item (today's: a superset of spec 365's, with the same hashers for the items both
/// have). Panics if the item does not exist (a programming error, caught by the tests that build
/// a snapshot).
fn put(s: &mut Storage, pallet: &str, item: &str, keys: &[Vec<u8>], value: Vec<u8>) {
    let m = ChainMetadata::today();
    let (storage, entry) = m
        .storage(pallet, item)
        .unwrap_or_else(|| panic!("{pallet}.{item} is not in today's metadata"));
    let mut key = crate::chain::substrate::hashing::storage_prefix(&storage.prefix, item).to_vec();
    if let frame_metadata::v14::StorageEntryType::Map { hashers, .. } = &entry.ty {
        assert_eq!(hashers.len(), keys.len(), "{pallet}.{item} key parts");
        for (h, k) in hashers.iter().zip(keys) {
            key.extend(hash_key(h, k));
        }
    }
    s.insert(key, value);
}

/// A proportion as the chain stores it in u16 (truncated).
pub(super) fn u16_proportion(x: f64) -> u16 {
    (x.clamp(0.0, 1.0) * f64::from(u16::MAX)).floor() as u16
}

/// A count the chain keeps in u16, saturated.
pub(super) fn saturating_u16(x: u64) -> u16 {
    x.min(u64::from(u16::MAX)) as u16
}

/// `pallet_commitments::Data::Raw{n}` (index n + 1, then the bytes), or `BigRaw` past 128.
fn commitment_data(data: &[u8]) -> Vec<u8> {
    if data.len() <= 128 {
        let mut out = vec![data.len() as u8 + 1];
        out.extend_from_slice(data);
        out
    } else {
        let mut out = vec![136];
        out.extend(data.to_vec().encode());
        out
    }
}

fn subnet_storage(s: &mut Storage, st: &State, cfg: &super::DevChainConfig) {
    let (netuid, tempo) = (cfg.netuid, cfg.tempo);
    let sub = "SubtensorModule";
    let net = netuid.encode();
    let n = &st.neurons;
    let by_net = |s: &mut Storage, item: &str, value: Vec<u8>| {
        put(s, sub, item, std::slice::from_ref(&net), value);
    };
    let per_uid_u16 = |f: fn(&super::Neuron) -> f64| -> Vec<u8> {
        n.iter()
            .map(|x| u16_proportion(f(x)))
            .collect::<Vec<u16>>()
            .encode()
    };
    by_net(s, "NetworksAdded", true.encode());
    by_net(s, "SubnetworkN", (n.len() as u16).encode());
    by_net(s, "Tempo", saturating_u16(tempo).encode());
    by_net(
        s,
        "CommitRevealWeightsEnabled",
        cfg.commit_reveal_enabled.encode(),
    );
    by_net(s, "WeightsSetRateLimit", cfg.weights_rate_limit.encode());
    by_net(s, "WeightsVersionKey", cfg.weights_version_key.encode());
    by_net(
        s,
        "LastMechansimStepBlock",
        st.clock.last_epoch_block.encode(),
    );
    by_net(
        s,
        "BlocksSinceLastStep",
        st.clock.blocks_since_last_step.encode(),
    );
    if cfg.runtime.clock() == EpochClock::Stateful {
        by_net(s, "LastEpochBlock", st.clock.last_epoch_block.encode());
        by_net(s, "PendingEpochAt", st.clock.pending_epoch_at.encode());
        by_net(s, "SubnetEpochIndex", st.clock.epoch_index.encode());
    }
    put(
        s,
        sub,
        "RevealPeriodEpochs",
        std::slice::from_ref(&net),
        cfg.reveal_period_epochs.encode(),
    );
    by_net(s, "Incentive", per_uid_u16(|x| x.incentive));
    by_net(s, "Dividends", per_uid_u16(|x| x.dividends));
    by_net(s, "Consensus", per_uid_u16(|x| x.consensus));
    by_net(s, "ValidatorTrust", per_uid_u16(|x| x.validator_trust));
    let last: Vec<u64> = n.iter().map(|x| x.last_update).collect();
    by_net(s, "LastUpdate", last.encode());
    let permit: Vec<bool> = n.iter().map(|x| x.validator_permit).collect();
    by_net(s, "ValidatorPermit", permit.encode());
    let active: Vec<bool> = n.iter().map(|x| x.active).collect();
    by_net(s, "Active", active.encode());
    let rao = super::runtime_api::rao;
    let emission: Vec<u64> = n.iter().map(|x| rao(x.emission)).collect();
    by_net(s, "Emission", emission.encode());
    for (uid, x) in n.iter().enumerate() {
        neuron_storage(s, st, cfg, uid as u16, x);
    }
}

/// The items of one uid: keys, registration, weights, bonds, owner, stake, axon, commits.
fn neuron_storage(
    s: &mut Storage,
    st: &State,
    cfg: &super::DevChainConfig,
    uid: u16,
    x: &super::Neuron,
) {
    let sub = "SubtensorModule";
    let net = cfg.netuid.encode();
    let netuid = cfg.netuid;
    let u = uid.encode();
    let net_uid = [net.clone(), u.clone()];
    put(s, sub, "Keys", &net_uid, x.hotkey.encode());
    put(s, sub, "Uids", &[net.clone(), x.hotkey.encode()], u);
    put(
        s,
        sub,
        "BlockAtRegistration",
        &net_uid,
        x.registered_at.encode(),
    );
    put(s, sub, "Weights", &net_uid, x.weights.encode());
    put(s, sub, "Owner", &[x.hotkey.encode()], x.coldkey().encode());
    let alpha = super::runtime_api::rao(x.stake).encode();
    put(
        s,
        sub,
        "TotalHotkeyAlpha",
        &[x.hotkey.encode(), net.clone()],
        alpha,
    );
    if let Some(a) = x.axon {
        put(
            s,
            sub,
            "Axons",
            &[net.clone(), x.hotkey.encode()],
            a.encode(),
        );
    }
    let bonds: Vec<(u16, u16)> = x
        .bonds
        .iter()
        .map(|&(j, b)| (j, u16_proportion(b)))
        .collect();
    put(s, sub, "Bonds", &net_uid, bonds.encode());
    if !x.commits.is_empty() {
        let index = super::super::netuid_index(netuid, 0).encode();
        let rows = weight_commit_rows(cfg, st, &x.commits);
        put(s, sub, "WeightCommits", &[index, x.hotkey.encode()], rows);
    }
}

/// `WeightCommits` rows `(hash, u64, u64, u64)`: `(hash, commit_epoch, commit_block, 0)` on the
/// stateful clock, `(hash, commit_block, first_reveal_block, last_reveal_block)` on the legacy.
fn weight_commit_rows(
    cfg: &super::DevChainConfig,
    st: &State,
    commits: &[crate::chain::WeightCommit],
) -> Vec<u8> {
    let rows: Vec<([u8; 32], u64, u64, u64)> = match cfg.runtime.clock() {
        EpochClock::Stateful => (commits.iter())
            .map(|c| (c.hash, c.commit_epoch, c.commit_block, 0))
            .collect(),
        EpochClock::Legacy => (commits.iter())
            .map(|c| super::client::commit_info_in(cfg, st, c))
            .map(|c| {
                let (first, last) = (c.first_reveal_block, c.last_reveal_block);
                (c.hash, c.commit_block, first, last)
            })
            .collect(),
    };
    rows.encode()
}

fn commitment_storage(s: &mut Storage, st: &State, netuid: u16) {
    for (uid, (data, block)) in &st.commitments {
        let Some(n) = st.neurons.get(usize::from(*uid)) else {
            continue;
        };
        let mut value = 0_u64.encode(); // deposit
        value.extend((*block as u32).encode());
        value.extend(parity_scale_codec::Compact(1_u32).encode());
        value.extend(commitment_data(data));
        let keys = [netuid.encode(), n.hotkey.encode()];
        put(s, "Commitments", "CommitmentOf", &keys, value);
    }
}

/// `System.Account`: `AccountInfo { nonce, consumers, providers, sufficients, data: { free,
/// reserved, frozen, flags } }`; an account with a balance has one provider.
fn account_storage(s: &mut Storage, accounts: &[([u8; 32], super::Account)]) {
    for (who, a) in accounts {
        let providers = u32::from(a.free > 0);
        let value = (
            a.nonce, 0_u32, providers, 0_u32, a.free, 0_u64, 0_u64, 0_u128,
        )
            .encode();
        put(s, "System", "Account", &[who.encode()], value);
    }
}

/// The key of `System.Events`.
fn events_key() -> &'static [u8] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    KEY.get_or_init(|| crate::chain::substrate::hashing::storage_prefix("System", "Events"))
}

impl DevChain {
    /// Block `number`'s hash (any number; only the last [`BLOCK_HASH_COUNT`] are served).
    pub fn block_hash_of(&self, number: u64) -> Hash32 {
        let salt = self.state.lock().expect("chain lock").salt();
        Self::hash_of(&salt, number)
    }

    /// The dev chain's state as finney's storage items, at the best block (built once per state
    /// change).
    pub fn storage_snapshot(&self) -> Arc<Storage> {
        // Lock order: state, then the cache (invalidated with the state locked).
        let st = self.state.lock().expect("chain lock");
        let mut cache = self.snapshot.0.lock().expect("snapshot lock");
        if let Some(s) = cache.as_ref() {
            return s.clone();
        }
        let s = Arc::new(self.build_snapshot(&st));
        *cache = Some(s.clone());
        s
    }

    fn build_snapshot(&self, st: &State) -> Storage {
        let mut s = Storage::new();
        account_storage(&mut s, &Self::accounts_of(st));
        // Lock order state, then bodies (as block production).
        s.insert(events_key().to_vec(), self.block_body(st.block).events);
        put(&mut s, "System", "Number", &[], (st.block as u32).encode());
        let first = st.block.saturating_sub(BLOCK_HASH_COUNT - 1);
        for n in std::iter::once(0).chain(first.max(1)..=st.block) {
            let h = Self::hash_of(&st.salt(), n);
            put(
                &mut s,
                "System",
                "BlockHash",
                &[(n as u32).encode()],
                h.encode(),
            );
        }
        subnet_storage(&mut s, st, &self.cfg);
        commitment_storage(&mut s, st, self.cfg.netuid);
        self.drand_storage(&mut s, st);
        s
    }

    /// `Drand.{BeaconConfig, Pulses, LastStoredRound, OldestStoredRound}`.
    fn drand_storage(&self, s: &mut Storage, st: &State) {
        let d = "Drand";
        put(
            s,
            d,
            "BeaconConfig",
            &[],
            self.beacon.configuration().encode(),
        );
        let rounds = st.drand;
        put(
            s,
            d,
            "LastStoredRound",
            &[],
            rounds.last_stored_round.encode(),
        );
        put(
            s,
            d,
            "OldestStoredRound",
            &[],
            rounds.oldest_stored_round.encode(),
        );
        for p in self.beacon.pulses(rounds.stored()) {
            put(s, d, "Pulses", &[p.round.encode()], p.encode());
        }
    }

    /// The number of the block with hash `h`, if it is genesis or among the last
    /// [`BLOCK_HASH_COUNT`].
    fn number_of(&self, h: &Hash32) -> Option<u64> {
        let st = self.state.lock().expect("chain lock");
        let first = st.block.saturating_sub(BLOCK_HASH_COUNT - 1);
        // Newest first: clients name recent blocks.
        (first..=st.block)
            .rev()
            .chain(std::iter::once(0))
            .find(|&n| Self::hash_of(&st.salt(), n) == *h)
    }
}

impl NodeView for DevChain {
    fn genesis_hash(&self) -> Hash32 {
        self.block_hash_of(0)
    }

    fn best(&self) -> (u64, Hash32) {
        let st = self.state.lock().expect("chain lock");
        (st.block, Self::hash_of(&st.salt(), st.block))
    }

    /// Blocks are final when sealed (a single authority).
    fn finalized(&self) -> (u64, Hash32) {
        self.best()
    }

    fn block_hash(&self, number: u64) -> Option<Hash32> {
        let (best, _) = self.best();
        let oldest = best.saturating_sub(BLOCK_HASH_COUNT - 1);
        (number <= best && (number == 0 || number >= oldest)).then(|| self.block_hash_of(number))
    }

    fn header(&self, at: Option<Hash32>) -> Option<Header> {
        let number = match at {
            None => self.best().0,
            Some(h) => self.number_of(&h)?,
        };
        let salt = self.state.lock().expect("chain lock").salt();
        let parent_hash = match number {
            0 => [0; 32],
            n => Self::hash_of(&salt, n - 1),
        };
        Some(Self::header_of(&salt, number, parent_hash))
    }

    fn storage(&self, key: &[u8], at: Option<Hash32>) -> Option<Vec<u8>> {
        self.storage_many(&[key.to_vec()], at).pop().flatten()
    }

    fn storage_many(&self, keys: &[Vec<u8>], at: Option<Hash32>) -> Vec<Option<Vec<u8>>> {
        let snapshot = self.storage_snapshot();
        let wants_events = keys.iter().any(|k| k.as_slice() == events_key());
        let at_number = at.filter(|_| wants_events).and_then(|h| self.number_of(&h));
        keys.iter()
            .map(|k| match at_number {
                Some(n) if k.as_slice() == events_key() => Some(self.block_body(n).events),
                _ => snapshot.get(k).cloned(),
            })
            .collect()
    }

    fn keys_paged(&self, prefix: &[u8], count: usize, start: Option<&[u8]>) -> Vec<Vec<u8>> {
        let snapshot = self.storage_snapshot();
        snapshot
            .range::<[u8], _>((
                start.map_or(std::ops::Bound::Included(prefix), std::ops::Bound::Excluded),
                std::ops::Bound::Unbounded,
            ))
            .map(|(k, _)| k)
            .skip_while(|k| k.as_slice() < prefix)
            .take_while(|k| k.starts_with(prefix))
            .take(count)
            .cloned()
            .collect()
    }

    fn runtime_call(
        &self,
        method: &str,
        data: &[u8],
        _at: Option<Hash32>,
    ) -> Result<Vec<u8>, RuntimeCallError> {
        match self.state_call(method, data) {
            Some(answer) => answer,
            None => static_call(self.cfg.runtime.metadata(), method, data),
        }
    }

    fn runtime_version(&self) -> RuntimeVersion {
        RuntimeVersion::from_metadata(self.cfg.runtime.metadata()).expect("the version decodes")
    }

    fn metadata_v14(&self) -> Vec<u8> {
        (self.cfg.runtime.metadata())
            .at_version(14)
            .expect("V14 is served")
            .to_vec()
    }

    fn block_extrinsics(&self, at: Hash32) -> Option<Vec<Vec<u8>>> {
        let number = self.number_of(&at)?;
        Some(self.block_body(number).extrinsics)
    }

    fn submit_extrinsic(&self, bytes: &[u8]) -> Result<Hash32, ExtrinsicError> {
        DevChain::submit_extrinsic(self, bytes)
    }

    fn account_next_index(&self, account: &[u8; 32]) -> u32 {
        self.next_index(account)
    }
}
