//! The embedded dev chain (localnet, tests, `connito devnet`): one subnet's worth of Subtensor
//! state, one block at a time, its calls and extrinsics, its runtime APIs and its JSON-RPC.
//!
//! Block production is driven by the caller ([`DevChain::produce_block`]), so tests step it and
//! localnet runs it from a timer. State is written to sled after every block.
//!
//! Block hashes derive from a random [`Salt`] made when the chain is created and kept with its
//! state: no one can compute a future block's hash, so a round seed taken from one (the
//! evaluation rows of Proof-of-Loss) is unknown until that block exists.
//!
//! Weights follow Subtensor's commit-reveal (v2) rules when `commit_reveal_enabled` is set (the
//! default, as on SN102): `set_weights` is refused; `commit_weights` stores a hash tagged with the
//! current epoch index (the count of epochs run) and sets `LastUpdate`; `reveal_weights` must land
//! in epoch `commit_epoch + reveal_period_epochs` exactly and then sets the weights with the same
//! checks as `set_weights` (but, as on chain, without the rate limit and without touching
//! `LastUpdate`). Every call is atomic: a rejected call changes nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{
    Axon, BlockInfo, ChainError, CommitmentRecord, NeuronInfo, WeightCommit, WeightsParams,
    commit_hash, netuid_index,
};
use crate::chain::epoch_clock::{EpochClock, EpochState, Subnet};
use crate::chain::substrate::metadata::ChainMetadata;
use crate::consensus::{
    EpochInput, YumaParams, bonds_from_u16, bonds_to_u16, chain_max_upscale, epoch, split_emission,
};
use crate::store::Store;
use crate::store::tables::{DEV_CHAIN, DEV_STATE_KEY};
use crate::submission::Hotkey;
use crate::tensors::{Hash32, blake2b_256};

/// Dev chain parameters (Subtensor hyperparameters of the one subnet it hosts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevChainConfig {
    pub netuid: u16,
    /// The Subtensor runtime devnet emulates: its epoch clock, metadata and spec version.
    pub runtime: DevRuntime,
    /// Blocks between Yuma epochs (`Tempo`).
    pub tempo: u64,
    pub max_uids: u16,
    pub immunity_period: u64,
    /// `WeightsSetRateLimit`: blocks between two weight settings of one uid.
    pub weights_rate_limit: u64,
    /// `WeightsVersionKey`: 0 accepts any.
    pub weights_version_key: u64,
    /// Emission per block (alpha), distributed at each epoch.
    pub emission_per_block: f64,
    /// Fraction of emission kept by the subnet owner.
    pub owner_cut: f64,
    pub max_commitment_bytes: usize,
    /// Bytes of commitments one hotkey may set per epoch (Commitments' `MaxSpace`).
    pub commitment_space_per_epoch: usize,
    /// `MinAllowedWeights`: a weight vector (other than a lone self-weight) needs this many uids.
    pub min_allowed_weights: u16,
    /// `CommitRevealWeightsEnabled`: weights go through `commit_weights`/`reveal_weights` and
    /// `set_weights` is refused. On by default, as on SN102.
    pub commit_reveal_enabled: bool,
    /// `RevealPeriodEpochs`: a commit of epoch `e` is revealed in epoch `e + period`.
    pub reveal_period_epochs: u64,
    /// `Burn`: rao a `burned_register` extrinsic takes from the coldkey (devnet).
    pub burn: u64,
    pub yuma: YumaParams,
}

/// The Subtensor runtime the dev chain emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevRuntime {
    /// Today's (spec 425, June 2026): the stateful epoch clock, `CheckShieldedTxValidity`.
    #[default]
    Spec425,
    /// December 2025's (spec 365): the legacy epoch clock, finney's metadata of then.
    Spec365,
}

impl DevRuntime {
    pub fn clock(self) -> EpochClock {
        match self {
            Self::Spec425 => EpochClock::Stateful,
            Self::Spec365 => EpochClock::Legacy,
        }
    }

    /// The metadata served (and extrinsics are decoded with).
    pub fn metadata(self) -> &'static ChainMetadata {
        match self {
            Self::Spec425 => ChainMetadata::today(),
            Self::Spec365 => ChainMetadata::finney(),
        }
    }
}

/// Unrevealed commits one hotkey may hold (Subtensor's constant).
pub const MAX_UNREVEALED_COMMITS: usize = 10;
/// Extrinsic log entries kept per hotkey (oldest dropped first).
const MAX_LOGGED_EXTRINSICS: usize = 1024;

impl Default for DevChainConfig {
    fn default() -> Self {
        Self {
            netuid: super::DEFAULT_NETUID,
            runtime: DevRuntime::default(),
            tempo: 360,
            max_uids: 256,
            immunity_period: 5000,
            weights_rate_limit: 100,
            weights_version_key: 0,
            emission_per_block: 1.0,
            owner_cut: 0.18,
            max_commitment_bytes: 128,
            commitment_space_per_epoch: 3100,
            min_allowed_weights: 1,
            commit_reveal_enabled: true,
            reveal_period_epochs: 1,
            burn: 1_000_000_000,
            yuma: YumaParams::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Neuron {
    hotkey: [u8; 32],
    stake: f64,
    registered_at: u64,
    last_update: u64,
    weights: Vec<(u16, u16)>,
    bonds: Vec<(u16, f64)>,
    validator_permit: bool,
    active: bool,
    consensus: f64,
    incentive: f64,
    dividends: f64,
    validator_trust: f64,
    emission: f64,
    total_emission: f64,
    /// Unrevealed weight commits, oldest first.
    #[serde(default)]
    commits: Vec<WeightCommit>,
    /// Has set or committed weights, so the rate limit applies from `last_update` (the dev
    /// chain lets a freshly registered uid set weights at once).
    #[serde(default)]
    weights_called: bool,
    /// The coldkey that registered it (`None`: registered in-process, by hotkey).
    #[serde(default)]
    coldkey: Option<[u8; 32]>,
    #[serde(default)]
    axon: Option<Axon>,
}

impl Neuron {
    /// The registering coldkey, or the hotkey where none is known.
    fn coldkey(&self) -> [u8; 32] {
        self.coldkey.unwrap_or(self.hotkey)
    }

    fn new(hotkey: [u8; 32], coldkey: Option<[u8; 32]>, block: u64) -> Self {
        Self {
            hotkey,
            stake: 0.0,
            registered_at: block,
            last_update: block,
            weights: vec![],
            bonds: vec![],
            validator_permit: false,
            active: true,
            consensus: 0.0,
            incentive: 0.0,
            dividends: 0.0,
            validator_trust: 0.0,
            emission: 0.0,
            total_emission: 0.0,
            commits: vec![],
            weights_called: false,
            coldkey,
            axon: None,
        }
    }
}

/// The secret a dev chain's block hashes derive from: 32 bytes from the OS random source.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) struct Salt([u8; 32]);

impl Salt {
    /// 32 fresh bytes from the OS random source (`/dev/urandom`).
    fn random() -> std::io::Result<Self> {
        use std::io::Read;
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(Self(bytes))
    }
}

/// Never printed: anyone who knows the salt can compute every future block hash.
impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(..)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    /// The seed the chain was created with (kept for the record: hashes derive from `salt`).
    seed: u64,
    /// `None` only in a state stored before salts existed, until [`DevChain::open`] gives it one.
    #[serde(default)]
    salt: Option<Salt>,
    block: u64,
    /// The epoch clock's storage (`LastEpochBlock`, `SubnetEpochIndex`, ...); states stored
    /// before it existed have `last_epoch_block` and `epochs`, read into it.
    #[serde(flatten)]
    clock: EpochState,
    /// Yuma epochs run (on the legacy clock the epoch index is a function of the block).
    #[serde(default)]
    yuma_epochs: u64,
    pending_emission: f64,
    owner_emission: f64,
    neurons: Vec<Neuron>,
    commitments: BTreeMap<u16, (Vec<u8>, u64)>,
    /// Commitment bytes used per uid: `(epoch index, bytes)`.
    #[serde(default)]
    used_space: BTreeMap<u16, (u64, usize)>,
    /// Successful weight/commitment calls per hotkey (hex): `(block, call name)`.
    #[serde(default)]
    extrinsics: BTreeMap<String, Vec<(u64, String)>>,
    /// Accounts that signed or received anything (hex key); the others are at genesis.
    #[serde(default)]
    accounts: BTreeMap<String, Account>,
    /// The drand rounds stored (`Drand.LastStoredRound`, `OldestStoredRound`).
    #[serde(default)]
    drand: beacon::DrandRounds,
    /// The runtime the chain was made with (`None`: made before runtimes were selectable,
    /// whose clock was the stateful one's).
    #[serde(default)]
    runtime: Option<DevRuntime>,
}

/// The dev chain. Cheap to share behind an `Arc`.
pub struct DevChain {
    cfg: DevChainConfig,
    state: Mutex<State>,
    store: Option<Store>,
    /// Extrinsics accepted for the next block, and recent block bodies. Lock order: `pool`,
    /// then `state`.
    pool: Mutex<extrinsics::Pool>,
    bodies: Mutex<BTreeMap<u64, extrinsics::BlockBody>>,
    /// The state as storage items, built once per state change (`persist`), not per read.
    snapshot: node::SnapshotCache,
    /// The drand beacon (its key derives from the salt).
    beacon: beacon::DevBeacon,
}

/// Chains whose recent block hashes [`DevChain::hash_of`] keeps (a process runs one, tests many).
const MEMO_CHAINS: usize = 64;

impl DevChain {
    /// A fresh in-memory chain starting at `start_block` (tests), with a fresh random salt.
    /// Panics if the OS random source cannot be read.
    pub fn in_memory(cfg: DevChainConfig, seed: u64, start_block: u64) -> Self {
        let mut st = State::genesis(seed, start_block);
        st.runtime = Some(cfg.runtime);
        st.ensure_salt()
            .expect("the OS random source (/dev/urandom)");
        Self {
            cfg,
            beacon: beacon::DevBeacon::of_salt(&st.salt().0),
            state: Mutex::new(st),
            store: None,
            pool: Mutex::default(),
            bodies: Mutex::default(),
            snapshot: Default::default(),
        }
    }

    /// Opens the chain persisted in `store`, or creates it at `start_block` with `seed`. A new
    /// chain, or one stored before salts existed, gets a fresh random salt, persisted at once.
    pub fn open(
        cfg: DevChainConfig,
        store: Store,
        seed: u64,
        start_block: u64,
    ) -> Result<Self, ChainError> {
        let mut st = store
            .get(&DEV_CHAIN, &DEV_STATE_KEY)
            .map_err(|e| ChainError::Storage(e.to_string()))?
            .unwrap_or_else(|| State {
                runtime: Some(cfg.runtime),
                ..State::genesis(seed, start_block)
            });
        st.ensure_salt()
            .map_err(|e| ChainError::Storage(format!("dev chain salt from /dev/urandom: {e}")))?;
        st.check_runtime(cfg.runtime)?;
        let bodies = extrinsics::load_bodies(&store, st.block)?;
        let chain = Self {
            cfg,
            beacon: beacon::DevBeacon::of_salt(&st.salt().0),
            state: Mutex::new(st),
            store: Some(store),
            pool: Mutex::default(),
            bodies: Mutex::new(bodies),
            snapshot: Default::default(),
        };
        chain.persist(&chain.state.lock().expect("chain lock"))?;
        Ok(chain)
    }

    /// The public key of the chain's drand beacon (compressed G2; also in `Drand.BeaconConfig`).
    pub fn drand_public_key(&self) -> [u8; 96] {
        self.beacon.public_key()
    }

    pub fn config(&self) -> &DevChainConfig {
        &self.cfg
    }

    /// Writes the state and waits for the disk: a block or extrinsic the chain answered is
    /// final, as on a real chain, even across a kill -9 of the localnet.
    fn persist(&self, st: &State) -> Result<(), ChainError> {
        // Every state change passes here, with the state locked.
        self.snapshot.invalidate();
        if let Some(store) = &self.store {
            store
                .put_durable(&DEV_CHAIN, &DEV_STATE_KEY, st)
                .map_err(|e| ChainError::Storage(e.to_string()))?;
        }
        Ok(())
    }

    /// Block `number`'s hash: blake2-256 of its header ([`Self::header_of`]), whose parent hash
    /// is block `number - 1`'s. Memoized per salt, for the last [`MEMO_CHAINS`] chains.
    fn hash_of(salt: &Salt, number: u64) -> Hash32 {
        use std::collections::HashMap;
        use std::sync::OnceLock;
        static MEMO: OnceLock<Mutex<HashMap<Salt, BTreeMap<u64, Hash32>>>> = OnceLock::new();
        let mut memo = MEMO
            .get_or_init(Default::default)
            .lock()
            .expect("hash memo");
        if !memo.contains_key(salt) && memo.len() >= MEMO_CHAINS {
            let other = *memo.keys().next().expect("a memoized chain");
            memo.remove(&other);
        }
        Self::hash_forward(salt, memo.entry(*salt).or_default(), number)
    }

    /// Block `number`'s hash, computed forward from the nearest block in `known` below it (or
    /// from genesis); keeps genesis and the recent hashes in `known`.
    fn hash_forward(salt: &Salt, known: &mut BTreeMap<u64, Hash32>, number: u64) -> Hash32 {
        if let Some(h) = known.get(&number) {
            return *h;
        }
        let (mut n, mut parent) = match known.range(..number).next_back() {
            Some((n, h)) => (*n + 1, *h),
            None => (0, [0; 32]),
        };
        while n <= number {
            parent = Self::header_of(salt, n, parent).hash();
            n += 1;
        }
        known.insert(number, parent);
        let keep_from = number.saturating_sub(2 * BLOCK_HASH_COUNT);
        if known.len() as u64 > 4 * BLOCK_HASH_COUNT {
            known.retain(|k, _| *k == 0 || *k >= keep_from);
        }
        parent
    }

    /// Block `number`'s header given its parent's hash; the roots are functions of the salt and
    /// the number (the dev chain has no state trie), so the hash, blake2-256 of the SCALE header
    /// as every client computes it, is unpredictable without the salt.
    pub(super) fn header_of(
        salt: &Salt,
        number: u64,
        parent_hash: Hash32,
    ) -> crate::chain::dev::rpc::Header {
        let root = |tag: &[u8]| blake2b_256(&[tag, &salt.0, &number.to_le_bytes()].concat());
        crate::chain::dev::rpc::Header {
            parent_hash,
            number,
            state_root: root(b"state"),
            extrinsics_root: root(b"extrinsics"),
        }
    }

    /// Seals the next block without a clock: no drand round is stored ([`Self::produce_block_at`]).
    pub fn produce_block(&self) -> Result<BlockInfo, ChainError> {
        self.seal(None)
    }

    /// Seals the next block at wall-clock time `unix_secs`: stores the drand rounds whose time
    /// has come, runs the epoch when the clock says (as Subtensor's `on_initialize`), then
    /// applies the extrinsics in the pool. Returns the new head.
    pub fn produce_block_at(&self, unix_secs: u64) -> Result<BlockInfo, ChainError> {
        self.seal(Some(unix_secs))
    }

    fn seal(&self, unix_secs: Option<u64>) -> Result<BlockInfo, ChainError> {
        let mut pool = self.pool.lock().expect("pool lock");
        let mut st = self.state.lock().expect("chain lock");
        st.block += 1;
        if let Some(now) = unix_secs {
            let due = st.drand.due(crate::chain::drand::round_at(now));
            st.drand.store(due);
        }
        st.pending_emission += self.cfg.emission_per_block;
        let last_step = st.clock.last_epoch_block;
        let block = st.block;
        if self
            .clock()
            .on_initialize(&mut st.clock, self.subnet(), block)
        {
            self.run_epoch(&mut st, last_step)?;
        }
        let body = self.apply_pool(&mut st, &mut pool);
        // The body first: the flush that makes the block durable covers it.
        self.keep_body(st.block, body)?;
        self.persist(&st)?;
        Ok(BlockInfo {
            number: st.block,
            hash: Self::hash_of(&st.salt(), st.block),
        })
    }

    /// The clock and the subnet it runs for.
    fn clock(&self) -> EpochClock {
        self.cfg.runtime.clock()
    }

    fn subnet(&self) -> Subnet {
        Subnet {
            netuid: self.cfg.netuid,
            tempo: self.cfg.tempo,
        }
    }

    /// The epoch a transaction in the current block is in: what a commit is tagged with.
    fn epoch_now(&self, st: &State) -> u64 {
        self.clock().epoch_index(&st.clock, self.subnet(), st.block)
    }

    /// Yuma for the epoch that fired at `st.block`; `last_step` is the block of the one before.
    fn run_epoch(&self, st: &mut State, last_step: u64) -> Result<(), ChainError> {
        let input = EpochInput {
            stake: st.neurons.iter().map(|n| n.stake).collect(),
            weights: st.neurons.iter().map(|n| n.weights.clone()).collect(),
            bonds: st.neurons.iter().map(|n| n.bonds.clone()).collect(),
            last_update: st.neurons.iter().map(|n| n.last_update).collect(),
            block_at_registration: st.neurons.iter().map(|n| n.registered_at).collect(),
            current_block: st.block,
            params: self.cfg.yuma.clone(),
            owner_uid: None,
            // The chain masks with the permits of the previous epoch; before the first epoch
            // there are none, so this epoch's are used.
            prev_validator_permit: (st.yuma_epochs > 0)
                .then(|| st.neurons.iter().map(|n| n.validator_permit).collect()),
            last_step_block: last_step,
        };
        let out = epoch(&input).map_err(|e| ChainError::Storage(format!("epoch: {e}")))?;
        let (emission, owner) = split_emission(
            &out.incentive,
            &out.dividends,
            st.pending_emission,
            self.cfg.owner_cut,
        );
        // Bonds go through the chain's u16 storage (`Bonds`), as they do between its epochs.
        let bonds = bonds_from_u16(&bonds_to_u16(&out.bonds, self.cfg.yuma.yuma3));
        for (i, (n, b)) in st.neurons.iter_mut().zip(bonds).enumerate() {
            n.active = out.active[i];
            n.validator_permit = out.validator_permit[i];
            n.consensus = out.consensus[i];
            n.incentive = out.incentive[i];
            n.dividends = out.dividends[i];
            n.validator_trust = out.validator_trust[i];
            n.bonds = b;
            n.emission = emission[i];
            n.total_emission += emission[i];
        }
        st.owner_emission += owner;
        st.pending_emission = 0.0;
        st.yuma_epochs += 1;
        // Purge expired commits. One that expired with this very epoch is kept until the next,
        // so a late reveal is told `ExpiredWeightCommit` rather than `NoWeightsCommitFound`.
        let (epochs, period) = (self.epoch_now(st), self.cfg.reveal_period_epochs);
        for n in st.neurons.iter_mut() {
            n.commits
                .retain(|c| epochs <= c.commit_epoch.saturating_add(period).saturating_add(1));
        }
        Ok(())
    }

    fn is_expired(&self, st: &State, c: &WeightCommit) -> bool {
        self.epoch_now(st) > c.commit_epoch.saturating_add(self.cfg.reveal_period_epochs)
    }

    /// Blocks still to wait under `WeightsSetRateLimit`, if any.
    fn rate_limited(&self, n: &Neuron, block: u64) -> Option<u64> {
        // Old states have no `weights_called`; weights on record mean they were set.
        if !n.weights_called && n.weights.is_empty() {
            return None;
        }
        let since = block.saturating_sub(n.last_update);
        (since < self.cfg.weights_rate_limit).then(|| self.cfg.weights_rate_limit - since)
    }

    /// The checks `set_weights` makes, in Subtensor's order: lengths, version key, rate limit
    /// (only where `rate_limit`: a reveal is exempt), permit, duplicates, valid uids.
    fn check_weights(
        &self,
        st: &State,
        uid: usize,
        uids: &[u16],
        values: &[u16],
        version_key: u64,
        rate_limit: bool,
    ) -> Result<(), ChainError> {
        if uids.len() != values.len() {
            return Err(ChainError::WeightVecNotEqualSize);
        }
        let chain_key = self.cfg.weights_version_key;
        if chain_key != 0 && version_key < chain_key {
            return Err(ChainError::IncorrectWeightVersionKey {
                chain: chain_key,
                given: version_key,
            });
        }
        if rate_limit && let Some(blocks_left) = self.rate_limited(&st.neurons[uid], st.block) {
            return Err(ChainError::SettingWeightsTooFast { blocks_left });
        }
        if st.neurons[uid].stake <= 0.0 && uids.iter().any(|u| *u as usize != uid) {
            return Err(ChainError::NeuronNoValidatorPermit);
        }
        let mut seen = std::collections::BTreeSet::new();
        if !uids.iter().all(|u| seen.insert(*u)) {
            return Err(ChainError::DuplicateUids);
        }
        if uids.iter().any(|u| *u as usize >= st.neurons.len()) {
            return Err(ChainError::UidVecContainInvalidOne);
        }
        let self_only = uids.len() == 1 && uids[0] as usize == uid;
        let min = (self.cfg.min_allowed_weights as usize).min(st.neurons.len());
        if !self_only && uids.len() < min {
            return Err(ChainError::WeightVecLengthIsLow {
                len: uids.len(),
                min,
            });
        }
        Ok(())
    }

    /// Stores weights as the chain does: every `(uid, value)` pair that was sent is an entry,
    /// zeros included, values max-upscaled with Subtensor's own fixed-point rounding
    /// ([`chain_max_upscale`]).
    fn store_weights(n: &mut Neuron, uids: Vec<u16>, values: Vec<u16>) {
        n.weights = uids.into_iter().zip(chain_max_upscale(&values)).collect();
    }

    fn log_extrinsic(st: &mut State, hotkey: &[u8; 32], call: &str) {
        let block = st.block;
        let log = st.extrinsics.entry(hex::encode(hotkey)).or_default();
        log.push((block, call.to_string()));
        if log.len() > MAX_LOGGED_EXTRINSICS {
            let excess = log.len() - MAX_LOGGED_EXTRINSICS;
            log.drain(..excess);
        }
    }

    /// The successful `set_weights`, `commit_weights`, `reveal_weights` and `set_commitment`
    /// calls of `hotkey`, oldest first, as `(block, call name)` (the last 1024 are kept).
    pub fn extrinsics(&self, hotkey: &[u8; 32]) -> Vec<(u64, String)> {
        let st = self.state.lock().expect("chain lock");
        st.extrinsics
            .get(&hex::encode(hotkey))
            .cloned()
            .unwrap_or_default()
    }

    fn uid_of(st: &State, hotkey: &[u8; 32]) -> Result<u16, ChainError> {
        st.neurons
            .iter()
            .position(|n| &n.hotkey == hotkey)
            .map(|u| u as u16)
            .ok_or(ChainError::HotKeyNotRegisteredInSubNet)
    }

    fn check_netuid(&self, netuid: u16) -> Result<(), ChainError> {
        if netuid != self.cfg.netuid {
            return Err(ChainError::SubnetworkDoesNotExist(netuid));
        }
        Ok(())
    }

    /// Total emission a uid has received since genesis.
    pub fn total_emission(&self, uid: u16) -> f64 {
        let st = self.state.lock().expect("chain lock");
        st.neurons
            .get(uid as usize)
            .map(|n| n.total_emission)
            .unwrap_or(0.0)
    }
}

impl State {
    /// A new chain's state, without its salt yet (the caller gives it one).
    fn genesis(seed: u64, start_block: u64) -> Self {
        Self {
            seed,
            salt: None,
            block: start_block,
            clock: EpochState {
                last_epoch_block: start_block,
                ..EpochState::default()
            },
            yuma_epochs: 0,
            pending_emission: 0.0,
            owner_emission: 0.0,
            neurons: vec![],
            commitments: BTreeMap::new(),
            used_space: BTreeMap::new(),
            extrinsics: BTreeMap::new(),
            accounts: BTreeMap::new(),
            drand: Default::default(),
            runtime: None,
        }
    }

    /// Refuses to open a chain with another runtime than it was made with: its commits' epochs
    /// and its clock storage mean different things under the other clock.
    fn check_runtime(&mut self, runtime: DevRuntime) -> Result<(), ChainError> {
        let made = *self.runtime.get_or_insert(DevRuntime::Spec425);
        if made != runtime {
            return Err(ChainError::Storage(format!(
                "this data dir holds a {made:?} chain and the config says runtime {runtime:?}: \
                 use another data dir, or the runtime it was made with"
            )));
        }
        Ok(())
    }

    /// Gives the state a fresh random salt if it has none (a new chain, or one stored before
    /// salts existed).
    fn ensure_salt(&mut self) -> std::io::Result<()> {
        if self.salt.is_none() {
            self.salt = Some(Salt::random()?);
        }
        Ok(())
    }

    /// The salt of the block hashes: every chain gets one when created or opened.
    fn salt(&self) -> Salt {
        self.salt
            .expect("a dev chain's state gets its salt when created or opened")
    }
}

/// The dev chain's own API (in-process callers and tests). Daemons see it through
/// [`super::ChainClient`] (`dev_client.rs`); registration and staking stay here, off the daemon trait.
impl DevChain {
    pub async fn best_block(&self) -> Result<BlockInfo, ChainError> {
        let st = self.state.lock().expect("chain lock");
        Ok(BlockInfo {
            number: st.block,
            hash: Self::hash_of(&st.salt(), st.block),
        })
    }

    pub async fn block_hash(&self, number: u64) -> Result<Hash32, ChainError> {
        let st = self.state.lock().expect("chain lock");
        if number > st.block {
            return Err(ChainError::UnknownBlock(number));
        }
        Ok(Self::hash_of(&st.salt(), number))
    }

    pub async fn metagraph(&self, netuid: u16) -> Result<Vec<NeuronInfo>, ChainError> {
        self.check_netuid(netuid)?;
        let st = self.state.lock().expect("chain lock");
        Ok(st
            .neurons
            .iter()
            .enumerate()
            .map(|(uid, n)| NeuronInfo {
                uid: uid as u16,
                hotkey: n.hotkey,
                stake: n.stake,
                registered_at: n.registered_at,
                last_update: n.last_update,
                validator_permit: n.validator_permit,
                active: n.active,
                consensus: n.consensus,
                incentive: n.incentive,
                dividends: n.dividends,
                validator_trust: n.validator_trust,
                emission: n.emission,
                coldkey: n.coldkey,
                axon: n.axon,
            })
            .collect())
    }

    pub async fn commitments(&self, netuid: u16) -> Result<Vec<CommitmentRecord>, ChainError> {
        self.check_netuid(netuid)?;
        let st = self.state.lock().expect("chain lock");
        Ok(st
            .commitments
            .iter()
            .map(|(uid, (data, block))| CommitmentRecord {
                uid: *uid,
                hotkey: st.neurons[*uid as usize].hotkey,
                data: data.clone(),
                block: *block,
            })
            .collect())
    }

    /// Registration by hotkey, without a burn (in-process callers have no coldkey).
    pub async fn register(&self, signer: &Hotkey, netuid: u16) -> Result<u16, ChainError> {
        self.with_state(|st| self.register_in(st, signer.public(), None, netuid))
    }

    pub async fn add_stake(
        &self,
        signer: &Hotkey,
        netuid: u16,
        amount: f64,
    ) -> Result<(), ChainError> {
        self.with_state(|st| {
            self.check_netuid(netuid)?;
            let uid = Self::uid_of(st, &signer.public())?;
            st.neurons[uid as usize].stake += amount.max(0.0);
            Ok(())
        })
    }

    pub async fn set_commitment(
        &self,
        signer: &Hotkey,
        netuid: u16,
        data: Vec<u8>,
    ) -> Result<(), ChainError> {
        self.with_state(|st| self.set_commitment_in(st, signer.public(), netuid, data))
    }

    pub async fn set_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        version_key: u64,
    ) -> Result<(), ChainError> {
        self.with_state(|st| {
            self.set_weights_in(st, signer.public(), netuid, uids, values, version_key)
        })
    }

    pub async fn commit_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        commit_hash: [u8; 32],
    ) -> Result<(), ChainError> {
        self.with_state(|st| self.commit_weights_in(st, signer.public(), netuid, commit_hash))
    }

    pub async fn reveal_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        salt: Vec<u16>,
        version_key: u64,
    ) -> Result<(), ChainError> {
        let reveal = Reveal {
            uids,
            values,
            salt,
            version_key,
        };
        self.with_state(|st| self.reveal_weights_in(st, signer.public(), netuid, reveal))
    }

    pub async fn weights_params(&self, netuid: u16) -> Result<WeightsParams, ChainError> {
        self.check_netuid(netuid)?;
        let st = self.state.lock().expect("chain lock");
        Ok(WeightsParams {
            commit_reveal_enabled: self.cfg.commit_reveal_enabled,
            reveal_period_epochs: self.cfg.reveal_period_epochs,
            tempo: self.cfg.tempo,
            weights_rate_limit: self.cfg.weights_rate_limit,
            version_key: self.cfg.weights_version_key,
            epoch_index: self.epoch_now(&st),
            last_epoch_block: st.clock.last_epoch_block,
        })
    }

    pub async fn weight_commits(
        &self,
        netuid: u16,
        hotkey: &[u8; 32],
    ) -> Result<Vec<WeightCommit>, ChainError> {
        self.check_netuid(netuid)?;
        let st = self.state.lock().expect("chain lock");
        Ok(st
            .neurons
            .iter()
            .find(|n| &n.hotkey == hotkey)
            .map(|n| n.commits.clone())
            .unwrap_or_default())
    }
}

mod beacon;
pub mod calls;
mod calls_in;
mod client;
pub(crate) mod extrinsics;
mod node;
pub mod rpc;
mod runtime_api;
pub mod static_api;

use crate::chain::Reveal;
use extrinsics::Account;
pub use extrinsics::{DEV_ACCOUNTS, DEV_ENDOWMENT};
pub use node::{BLOCK_HASH_COUNT, Storage as DevStorage};
pub use runtime_api::METHODS as DEV_RUNTIME_APIS;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod salt_tests;

#[cfg(test)]
mod space_and_weight_rules;

#[cfg(test)]
mod scenarios;
