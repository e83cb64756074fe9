//! The embedded dev chain: one subnet's worth of Subtensor state, one block at a time.
//!
//! Block production is driven by the caller ([`DevChain::produce_block`]), so tests step it and
//! localnet runs it from a timer. State is written to sled after every block.
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
    BlockInfo, ChainClient, ChainError, CommitmentRecord, NeuronInfo, WeightCommit, WeightsParams,
    commit_hash, netuid_index,
};
use crate::consensus::{EpochInput, YumaParams, epoch, split_emission};
use crate::store::Store;
use crate::submission::Hotkey;
use crate::tensors::{Hash32, blake2b_256};

/// Dev chain parameters (Subtensor hyperparameters of the one subnet it hosts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevChainConfig {
    pub netuid: u16,
    /// Blocks between Yuma epochs.
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
    pub yuma: YumaParams,
}

/// Unrevealed commits one hotkey may hold (Subtensor's constant).
pub const MAX_UNREVEALED_COMMITS: usize = 10;
/// Extrinsic log entries kept per hotkey (oldest dropped first).
const MAX_LOGGED_EXTRINSICS: usize = 1024;

impl Default for DevChainConfig {
    fn default() -> Self {
        Self {
            netuid: super::DEFAULT_NETUID,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    seed: u64,
    block: u64,
    last_epoch_block: u64,
    pending_emission: f64,
    owner_emission: f64,
    neurons: Vec<Neuron>,
    commitments: BTreeMap<u16, (Vec<u8>, u64)>,
    #[serde(default)]
    epochs: u64,
    /// Commitment bytes used per uid: `(epoch index, bytes)`.
    #[serde(default)]
    used_space: BTreeMap<u16, (u64, usize)>,
    /// Successful weight/commitment calls per hotkey (hex): `(block, call name)`.
    #[serde(default)]
    extrinsics: BTreeMap<String, Vec<(u64, String)>>,
}

/// The dev chain. Cheap to share behind an `Arc`.
pub struct DevChain {
    cfg: DevChainConfig,
    state: Mutex<State>,
    store: Option<Store>,
}

const STATE_KEY: &[u8] = b"state";

impl DevChain {
    /// A fresh in-memory chain starting at `start_block` (tests).
    pub fn in_memory(cfg: DevChainConfig, seed: u64, start_block: u64) -> Self {
        Self {
            cfg,
            state: Mutex::new(State::genesis(seed, start_block)),
            store: None,
        }
    }

    /// Opens the chain persisted in `store`, or creates it at `start_block` with `seed`.
    pub fn open(
        cfg: DevChainConfig,
        store: Store,
        seed: u64,
        start_block: u64,
    ) -> Result<Self, ChainError> {
        let st = store
            .get::<State>("chain", STATE_KEY)
            .map_err(|e| ChainError::Storage(e.to_string()))?
            .unwrap_or_else(|| State::genesis(seed, start_block));
        let chain = Self {
            cfg,
            state: Mutex::new(st),
            store: Some(store),
        };
        chain.persist(&chain.state.lock().expect("chain lock"))?;
        Ok(chain)
    }

    pub fn config(&self) -> &DevChainConfig {
        &self.cfg
    }

    /// Writes the state and waits for the disk: a block or extrinsic the chain answered is
    /// final, as on a real chain, even across a kill -9 of the localnet.
    fn persist(&self, st: &State) -> Result<(), ChainError> {
        if let Some(store) = &self.store {
            store
                .put_durable("chain", STATE_KEY, st)
                .map_err(|e| ChainError::Storage(e.to_string()))?;
        }
        Ok(())
    }

    fn hash_of(seed: u64, number: u64) -> Hash32 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&seed.to_le_bytes());
        b[8..].copy_from_slice(&number.to_le_bytes());
        blake2b_256(&b)
    }

    /// Seals the next block; runs the epoch when a tempo has passed. Returns the new head.
    pub fn produce_block(&self) -> Result<BlockInfo, ChainError> {
        let mut st = self.state.lock().expect("chain lock");
        st.block += 1;
        st.pending_emission += self.cfg.emission_per_block;
        if st.block - st.last_epoch_block >= self.cfg.tempo {
            self.run_epoch(&mut st)?;
        }
        self.persist(&st)?;
        Ok(BlockInfo {
            number: st.block,
            hash: Self::hash_of(st.seed, st.block),
        })
    }

    fn run_epoch(&self, st: &mut State) -> Result<(), ChainError> {
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
            prev_validator_permit: (st.epochs > 0)
                .then(|| st.neurons.iter().map(|n| n.validator_permit).collect()),
            last_step_block: st.last_epoch_block,
        };
        let out = epoch(&input).map_err(|e| ChainError::Storage(format!("epoch: {e}")))?;
        let (emission, owner) = split_emission(
            &out.incentive,
            &out.dividends,
            st.pending_emission,
            self.cfg.owner_cut,
        );
        for (i, n) in st.neurons.iter_mut().enumerate() {
            n.active = out.active[i];
            n.validator_permit = out.validator_permit[i];
            n.consensus = out.consensus[i];
            n.incentive = out.incentive[i];
            n.dividends = out.dividends[i];
            n.validator_trust = out.validator_trust[i];
            n.bonds = out.bonds[i].clone();
            n.emission = emission[i];
            n.total_emission += emission[i];
        }
        st.owner_emission += owner;
        st.pending_emission = 0.0;
        st.last_epoch_block = st.block;
        st.epochs += 1;
        // Purge expired commits. One that expired with this very epoch is kept until the next,
        // so a late reveal is told `ExpiredWeightCommit` rather than `NoWeightsCommitFound`.
        let (epochs, period) = (st.epochs, self.cfg.reveal_period_epochs);
        for n in st.neurons.iter_mut() {
            n.commits
                .retain(|c| epochs <= c.commit_epoch.saturating_add(period).saturating_add(1));
        }
        Ok(())
    }

    fn is_expired(&self, st: &State, c: &WeightCommit) -> bool {
        st.epochs > c.commit_epoch.saturating_add(self.cfg.reveal_period_epochs)
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

    /// Stores weights max-upscaled as the chain does: the largest becomes 65535, the others
    /// `floor(v · 65535 / max)`; zeros are no entry.
    fn store_weights(n: &mut Neuron, uids: Vec<u16>, values: Vec<u16>) {
        let max = values.iter().copied().max().unwrap_or(0) as u64;
        n.weights = uids
            .into_iter()
            .zip(values)
            .filter(|(_, v)| *v > 0)
            .map(|(u, v)| (u, (v as u64 * 65_535 / max.max(1)) as u16))
            .collect();
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
    fn genesis(seed: u64, start_block: u64) -> Self {
        Self {
            seed,
            block: start_block,
            last_epoch_block: start_block,
            pending_emission: 0.0,
            owner_emission: 0.0,
            neurons: vec![],
            commitments: BTreeMap::new(),
            used_space: BTreeMap::new(),
            epochs: 0,
            extrinsics: BTreeMap::new(),
        }
    }
}

#[async_trait::async_trait]
impl ChainClient for DevChain {
    async fn best_block(&self) -> Result<BlockInfo, ChainError> {
        let st = self.state.lock().expect("chain lock");
        Ok(BlockInfo {
            number: st.block,
            hash: Self::hash_of(st.seed, st.block),
        })
    }

    async fn block_hash(&self, number: u64) -> Result<Hash32, ChainError> {
        let st = self.state.lock().expect("chain lock");
        if number > st.block {
            return Err(ChainError::UnknownBlock(number));
        }
        Ok(Self::hash_of(st.seed, number))
    }

    async fn metagraph(&self, netuid: u16) -> Result<Vec<NeuronInfo>, ChainError> {
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
            })
            .collect())
    }

    async fn commitments(&self, netuid: u16) -> Result<Vec<CommitmentRecord>, ChainError> {
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

    async fn register(&self, signer: &Hotkey, netuid: u16) -> Result<u16, ChainError> {
        self.check_netuid(netuid)?;
        let mut st = self.state.lock().expect("chain lock");
        let hotkey = signer.public();
        if st.neurons.iter().any(|n| n.hotkey == hotkey) {
            return Err(ChainError::HotKeyAlreadyRegisteredInSubNet);
        }
        let block = st.block;
        let neuron = Neuron {
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
        };
        let uid = if st.neurons.len() < self.cfg.max_uids as usize {
            st.neurons.push(neuron);
            st.neurons.len() - 1
        } else {
            // Replace the lowest-emission uid outside its immunity period (lowest uid on ties).
            let immunity = self.cfg.immunity_period;
            let victim = st
                .neurons
                .iter()
                .enumerate()
                .filter(|(_, n)| block.saturating_sub(n.registered_at) >= immunity)
                .min_by(|a, b| a.1.emission.total_cmp(&b.1.emission).then(a.0.cmp(&b.0)))
                .map(|(i, _)| i)
                .ok_or(ChainError::NoNeuronIdAvailable)?;
            st.neurons[victim] = neuron;
            st.commitments.remove(&(victim as u16));
            for n in st.neurons.iter_mut() {
                n.weights.retain(|(j, _)| *j as usize != victim);
                n.bonds.retain(|(j, _)| *j as usize != victim);
            }
            victim
        };
        self.persist(&st)?;
        Ok(uid as u16)
    }

    async fn add_stake(&self, signer: &Hotkey, netuid: u16, amount: f64) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        let mut st = self.state.lock().expect("chain lock");
        let uid = Self::uid_of(&st, &signer.public())?;
        st.neurons[uid as usize].stake += amount.max(0.0);
        self.persist(&st)
    }

    async fn set_commitment(
        &self,
        signer: &Hotkey,
        netuid: u16,
        data: Vec<u8>,
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        if data.len() > self.cfg.max_commitment_bytes {
            return Err(ChainError::CommitmentTooLarge {
                len: data.len(),
                max: self.cfg.max_commitment_bytes,
            });
        }
        let mut st = self.state.lock().expect("chain lock");
        let hotkey = signer.public();
        let uid = Self::uid_of(&st, &hotkey)?;
        let epoch = st.epochs;
        let used = match st.used_space.get(&uid) {
            Some((e, used)) if *e == epoch => *used,
            _ => 0,
        };
        let limit = self.cfg.commitment_space_per_epoch;
        if used + data.len() > limit {
            return Err(ChainError::SpaceLimitExceeded {
                used,
                requested: data.len(),
                limit,
            });
        }
        st.used_space.insert(uid, (epoch, used + data.len()));
        let block = st.block;
        st.commitments.insert(uid, (data, block));
        Self::log_extrinsic(&mut st, &hotkey, "set_commitment");
        self.persist(&st)
    }

    async fn set_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        version_key: u64,
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        if self.cfg.commit_reveal_enabled {
            return Err(ChainError::CommitRevealEnabled);
        }
        let mut st = self.state.lock().expect("chain lock");
        let hotkey = signer.public();
        let uid = Self::uid_of(&st, &hotkey)? as usize;
        self.check_weights(&st, uid, &uids, &values, version_key, true)?;
        let block = st.block;
        let n = &mut st.neurons[uid];
        Self::store_weights(n, uids, values);
        n.last_update = block;
        n.weights_called = true;
        Self::log_extrinsic(&mut st, &hotkey, "set_weights");
        self.persist(&st)
    }

    async fn commit_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        commit_hash: [u8; 32],
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        if !self.cfg.commit_reveal_enabled {
            return Err(ChainError::CommitRevealDisabled);
        }
        let mut st = self.state.lock().expect("chain lock");
        let hotkey = signer.public();
        let uid = Self::uid_of(&st, &hotkey)? as usize;
        let block = st.block;
        if let Some(blocks_left) = self.rate_limited(&st.neurons[uid], block) {
            return Err(ChainError::CommittingWeightsTooFast { blocks_left });
        }
        let live = st.neurons[uid]
            .commits
            .iter()
            .filter(|c| !self.is_expired(&st, c))
            .count();
        if live >= MAX_UNREVEALED_COMMITS {
            return Err(ChainError::TooManyUnrevealedCommits);
        }
        let epoch = st.epochs;
        let period = self.cfg.reveal_period_epochs;
        let n = &mut st.neurons[uid];
        // Expired commits go first, as on chain.
        n.commits
            .retain(|c| epoch <= c.commit_epoch.saturating_add(period));
        n.commits.push(WeightCommit {
            hash: commit_hash,
            commit_block: block,
            commit_epoch: epoch,
        });
        n.last_update = block;
        n.weights_called = true;
        Self::log_extrinsic(&mut st, &hotkey, "commit_weights");
        self.persist(&st)
    }

    async fn reveal_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        salt: Vec<u16>,
        version_key: u64,
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        if !self.cfg.commit_reveal_enabled {
            return Err(ChainError::CommitRevealDisabled);
        }
        let mut st = self.state.lock().expect("chain lock");
        let hotkey = signer.public();
        let uid = Self::uid_of(&st, &hotkey)? as usize;
        let commits = &st.neurons[uid].commits;
        if commits.is_empty() {
            return Err(ChainError::NoWeightsCommitFound);
        }
        let hash = commit_hash(
            &hotkey,
            netuid_index(netuid, 0),
            &uids,
            &values,
            &salt,
            version_key,
        );
        let (expired, live): (Vec<_>, Vec<_>) = commits
            .iter()
            .enumerate()
            .partition(|(_, c)| self.is_expired(&st, c));
        let expired_match = expired.iter().any(|(_, c)| c.hash == hash);
        let Some(&(position, found)) = live.iter().find(|(_, c)| c.hash == hash) else {
            return Err(if expired_match {
                ChainError::ExpiredWeightCommit
            } else if live.is_empty() {
                ChainError::NoWeightsCommitFound
            } else {
                ChainError::InvalidRevealCommitHashNotMatch
            });
        };
        if st.epochs
            != found
                .commit_epoch
                .saturating_add(self.cfg.reveal_period_epochs)
        {
            return Err(ChainError::RevealTooEarly);
        }
        self.check_weights(&st, uid, &uids, &values, version_key, false)?;
        let n = &mut st.neurons[uid];
        // The revealed commit and every older one leave the queue, as on chain.
        n.commits.drain(..=position);
        Self::store_weights(n, uids, values);
        Self::log_extrinsic(&mut st, &hotkey, "reveal_weights");
        self.persist(&st)
    }

    async fn weights_params(&self, netuid: u16) -> Result<WeightsParams, ChainError> {
        self.check_netuid(netuid)?;
        let st = self.state.lock().expect("chain lock");
        Ok(WeightsParams {
            commit_reveal_enabled: self.cfg.commit_reveal_enabled,
            reveal_period_epochs: self.cfg.reveal_period_epochs,
            tempo: self.cfg.tempo,
            weights_rate_limit: self.cfg.weights_rate_limit,
            version_key: self.cfg.weights_version_key,
            epoch_index: st.epochs,
            last_epoch_block: st.last_epoch_block,
        })
    }

    async fn weight_commits(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
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

    fn advance_to(c: &DevChain, block: u64) {
        while run(c.best_block()).unwrap().number < block {
            c.produce_block().unwrap();
        }
    }

    /// A validator `v` (uid 0, staked) and miners `m1`, `m2` (uids 1, 2), at block 1.
    fn subnet(c: &DevChain) -> (Hotkey, Hotkey, Hotkey) {
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
        {
            let store = Store::open(dir.path()).unwrap();
            let c = DevChain::open(cfg(), store.clone(), 9, 50).unwrap();
            run(c.register(&Hotkey::dev("a"), 102)).unwrap();
            c.produce_block().unwrap();
            c.produce_block().unwrap();
            store.flush().unwrap();
        }
        let c = DevChain::open(cfg(), Store::open(dir.path()).unwrap(), 123, 0).unwrap();
        let b = run(c.best_block()).unwrap();
        assert_eq!(b.number, 52);
        assert_eq!(b.hash, DevChain::hash_of(9, 52), "the genesis seed is kept");
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
        let c = DevChain::open(cr_cfg(), Store::open(dir.path()).unwrap(), 1, 0).unwrap();
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
        for n in json["neurons"].as_array_mut().unwrap() {
            let n = n.as_object_mut().unwrap();
            n.remove("commits").unwrap();
            n.remove("weights_called").unwrap();
        }
        let st: State = serde_json::from_value(json).unwrap();
        assert!(st.extrinsics.is_empty() && st.neurons[0].commits.is_empty());
        // Weights on record still put the uid under the rate limit.
        let c = DevChain {
            cfg: cfg(),
            state: Mutex::new(st),
            store: None,
        };
        assert!(matches!(
            run(c.set_weights(&v, 102, vec![1], vec![1], 0)),
            Err(ChainError::SettingWeightsTooFast { .. })
        ));
    }
}

#[cfg(test)]
mod space_and_weight_rules {
    use super::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn chain(cfg: DevChainConfig) -> DevChain {
        DevChain::in_memory(
            DevChainConfig {
                tempo: 10,
                commit_reveal_enabled: false,
                ..cfg
            },
            1,
            0,
        )
    }

    #[test]
    fn commitment_space_is_limited_per_epoch() {
        let c = chain(DevChainConfig {
            commitment_space_per_epoch: 200,
            ..Default::default()
        });
        let k = Hotkey::dev("m");
        run(c.register(&k, 102)).unwrap();
        run(c.set_commitment(&k, 102, vec![1; 100])).unwrap();
        run(c.set_commitment(&k, 102, vec![1; 100])).unwrap();
        assert_eq!(
            run(c.set_commitment(&k, 102, vec![1; 1])),
            Err(ChainError::SpaceLimitExceeded {
                used: 200,
                requested: 1,
                limit: 200
            })
        );
        for _ in 0..10 {
            c.produce_block().unwrap();
        }
        run(c.set_commitment(&k, 102, vec![1; 100])).expect("a new epoch has fresh space");
    }

    #[test]
    fn min_allowed_weights_and_max_upscaling() {
        let c = chain(DevChainConfig {
            min_allowed_weights: 2,
            ..Default::default()
        });
        let v = Hotkey::dev("v");
        for k in [&v, &Hotkey::dev("a"), &Hotkey::dev("b")] {
            run(c.register(k, 102)).unwrap();
        }
        run(c.add_stake(&v, 102, 10.0)).unwrap();
        assert_eq!(
            run(c.set_weights(&v, 102, vec![1], vec![5], 0)),
            Err(ChainError::WeightVecLengthIsLow { len: 1, min: 2 })
        );
        run(c.set_weights(&v, 102, vec![0], vec![7], 0)).expect("a lone self-weight is allowed");
        let c = chain(DevChainConfig {
            min_allowed_weights: 2,
            ..Default::default()
        });
        for k in [&v, &Hotkey::dev("a"), &Hotkey::dev("b")] {
            run(c.register(k, 102)).unwrap();
        }
        run(c.add_stake(&v, 102, 10.0)).unwrap();
        run(c.set_weights(&v, 102, vec![1, 2], vec![100, 50], 0)).unwrap();
        let st = c.state.lock().unwrap();
        assert_eq!(st.neurons[0].weights, vec![(1, 65_535), (2, 32_767)]);
    }
}
