//! The dev chain's calls, by account key: shared by the `ChainClient` methods (localnet, which
//! signs with in-process keys) and devnet's extrinsics (signed by any client). Each takes the
//! locked state and changes nothing when it fails.

use super::super::Axon;
use super::extrinsics::valid_ip;
use super::{
    ChainError, DevChain, MAX_UNREVEALED_COMMITS, Neuron, State, WeightCommit, commit_hash,
    netuid_index,
};
use crate::chain::Reveal;

impl DevChain {
    /// Runs `f` on the locked state and persists it when `f` succeeds.
    pub(super) fn with_state<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, ChainError>,
    ) -> Result<T, ChainError> {
        let mut st = self.state.lock().expect("chain lock");
        let out = f(&mut st)?;
        self.persist(&st)?;
        Ok(out)
    }

    /// Registers `hotkey` (owned by `coldkey`, if known) and returns its uid.
    pub(super) fn register_in(
        &self,
        st: &mut State,
        hotkey: [u8; 32],
        coldkey: Option<[u8; 32]>,
        netuid: u16,
    ) -> Result<u16, ChainError> {
        self.check_netuid(netuid)?;
        if st.neurons.iter().any(|n| n.hotkey == hotkey) {
            return Err(ChainError::HotKeyAlreadyRegisteredInSubNet);
        }
        let block = st.block;
        let neuron = Neuron::new(hotkey, coldkey, block);
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
            // As Subtensor's `clear_neuron`: weights towards the new uid become 0 but stay
            // entries; bonds towards it stay stored, and the epoch drops bonds towards uids
            // registered after its last step (as on chain, a registration in the very block of
            // an epoch is not "after" it).
            for n in st.neurons.iter_mut() {
                for w in n.weights.iter_mut().filter(|(j, _)| *j as usize == victim) {
                    w.1 = 0;
                }
            }
            victim
        };
        Ok(uid as u16)
    }

    pub(super) fn set_commitment_in(
        &self,
        st: &mut State,
        hotkey: [u8; 32],
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
        let uid = Self::uid_of(st, &hotkey)?;
        let epoch = self.epoch_now(st);
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
        Self::log_extrinsic(st, &hotkey, "set_commitment");
        Ok(())
    }

    pub(super) fn set_weights_in(
        &self,
        st: &mut State,
        hotkey: [u8; 32],
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        version_key: u64,
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        if self.cfg.commit_reveal_enabled {
            return Err(ChainError::CommitRevealEnabled);
        }
        let uid = Self::uid_of(st, &hotkey)? as usize;
        self.check_weights(st, uid, &uids, &values, version_key, true)?;
        let block = st.block;
        let n = &mut st.neurons[uid];
        Self::store_weights(n, uids, values);
        n.last_update = block;
        n.weights_called = true;
        Self::log_extrinsic(st, &hotkey, "set_weights");
        Ok(())
    }

    pub(super) fn commit_weights_in(
        &self,
        st: &mut State,
        hotkey: [u8; 32],
        netuid: u16,
        commit_hash: [u8; 32],
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        if !self.cfg.commit_reveal_enabled {
            return Err(ChainError::CommitRevealDisabled);
        }
        let uid = Self::uid_of(st, &hotkey)? as usize;
        let block = st.block;
        if let Some(blocks_left) = self.rate_limited(&st.neurons[uid], block) {
            return Err(ChainError::CommittingWeightsTooFast { blocks_left });
        }
        let live = st.neurons[uid]
            .commits
            .iter()
            .filter(|c| !self.is_expired(st, c))
            .count();
        if live >= MAX_UNREVEALED_COMMITS {
            return Err(ChainError::TooManyUnrevealedCommits);
        }
        let epoch = self.epoch_now(st);
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
        Self::log_extrinsic(st, &hotkey, "commit_weights");
        Ok(())
    }

    pub(super) fn reveal_weights_in(
        &self,
        st: &mut State,
        hotkey: [u8; 32],
        netuid: u16,
        r: Reveal,
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        if !self.cfg.commit_reveal_enabled {
            return Err(ChainError::CommitRevealDisabled);
        }
        let uid = Self::uid_of(st, &hotkey)? as usize;
        let commits = &st.neurons[uid].commits;
        if commits.is_empty() {
            return Err(ChainError::NoWeightsCommitFound);
        }
        let hash = commit_hash(
            &hotkey,
            netuid_index(netuid, 0),
            &r.uids,
            &r.values,
            &r.salt,
            r.version_key,
        );
        let (expired, live): (Vec<_>, Vec<_>) = commits
            .iter()
            .enumerate()
            .partition(|(_, c)| self.is_expired(st, c));
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
        if self.epoch_now(st)
            != found
                .commit_epoch
                .saturating_add(self.cfg.reveal_period_epochs)
        {
            return Err(ChainError::RevealTooEarly);
        }
        self.check_weights(st, uid, &r.uids, &r.values, r.version_key, false)?;
        let n = &mut st.neurons[uid];
        // The revealed commit and every older one leave the queue, as on chain.
        n.commits.drain(..=position);
        Self::store_weights(n, r.uids, r.values);
        Self::log_extrinsic(st, &hotkey, "reveal_weights");
        Ok(())
    }
    /// `serve_axon`: where a registered hotkey serves (Subtensor's IP rules).
    pub(super) fn serve_axon_in(
        &self,
        st: &mut State,
        hotkey: [u8; 32],
        netuid: u16,
        axon: Axon,
    ) -> Result<(), ChainError> {
        self.check_netuid(netuid)?;
        let uid =
            Self::uid_of(st, &hotkey).map_err(|_| ChainError::HotKeyNotRegisteredInNetwork)?;
        if axon.ip_type != 4 && axon.ip_type != 6 {
            return Err(ChainError::InvalidIpType(axon.ip_type));
        }
        if !valid_ip(axon.ip_type, axon.ip) {
            return Err(ChainError::InvalidIpAddress);
        }
        let block = st.block;
        st.neurons[usize::from(uid)].axon = Some(Axon { block, ..axon });
        Ok(())
    }
}
