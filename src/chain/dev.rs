//! The embedded dev chain: one subnet's worth of Subtensor state, one block at a time.
//!
//! Block production is driven by the caller ([`DevChain::produce_block`]), so tests step it and
//! localnet runs it from a timer. State is written to sled after every block.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{BlockInfo, ChainClient, ChainError, CommitmentRecord, NeuronInfo};
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
    pub yuma: YumaParams,
}

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

    fn persist(&self, st: &State) -> Result<(), ChainError> {
        if let Some(store) = &self.store {
            store
                .put("chain", STATE_KEY, st)
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
        Ok(())
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
            epochs: 0,
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
        let uid = Self::uid_of(&st, &signer.public())?;
        let block = st.block;
        st.commitments.insert(uid, (data, block));
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
        let mut st = self.state.lock().expect("chain lock");
        let uid = Self::uid_of(&st, &signer.public())? as usize;
        if uids.len() != values.len() {
            return Err(ChainError::WeightVecNotEqualSize);
        }
        let mut seen = std::collections::BTreeSet::new();
        if !uids.iter().all(|u| seen.insert(*u)) {
            return Err(ChainError::DuplicateUids);
        }
        if uids.iter().any(|u| *u as usize >= st.neurons.len()) {
            return Err(ChainError::UidVecContainInvalidOne);
        }
        let chain_key = self.cfg.weights_version_key;
        if chain_key != 0 && version_key < chain_key {
            return Err(ChainError::IncorrectWeightVersionKey {
                chain: chain_key,
                given: version_key,
            });
        }
        let block = st.block;
        let n = &mut st.neurons[uid];
        let since = block.saturating_sub(n.last_update);
        // A neuron that has never set weights (last_update = registration) may set at once.
        if !n.weights.is_empty() && since < self.cfg.weights_rate_limit {
            return Err(ChainError::SettingWeightsTooFast {
                blocks_left: self.cfg.weights_rate_limit - since,
            });
        }
        if n.stake <= 0.0 && uids.iter().any(|u| *u as usize != uid) {
            return Err(ChainError::NeuronNoValidatorPermit);
        }
        n.weights = uids
            .into_iter()
            .zip(values)
            .filter(|(_, v)| *v > 0)
            .collect();
        n.last_update = block;
        self.persist(&st)
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

    fn cfg() -> DevChainConfig {
        DevChainConfig {
            tempo: 10,
            weights_rate_limit: 5,
            ..Default::default()
        }
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
}
