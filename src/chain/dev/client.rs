//! The dev chain as a daemon sees it: [`ChainClient`] over the in-process chain (localnet).
//!
//! The dev chain keeps no history and finalizes every block it makes: its finalized block is its
//! head, and a read at any block it has made answers with its current state. A call applies at
//! once and counts as included in the head block.

use super::*;
use crate::chain::{
    Axon, ChainClient, CommitInfo, CommitmentRecord, Included, NeuronInfo, WeightCommit,
    WeightsParams,
};

impl DevChain {
    fn check_at(&self, at: &BlockInfo) -> Result<(), ChainError> {
        let head = self.state.lock().expect("chain lock").block;
        if at.number > head {
            return Err(ChainError::UnknownBlock(at.number));
        }
        Ok(())
    }

    pub fn commit_info(&self, c: &WeightCommit) -> CommitInfo {
        commit_info_in(&self.cfg, &self.state.lock().expect("chain lock"), c)
    }

    fn included(&self) -> Included {
        Included {
            block: self.state.lock().expect("chain lock").block,
        }
    }
}

/// The blocks a commit can be revealed in: those of epoch `commit_epoch + reveal_period` by the
/// chain's clock, seen from the head (both 0 once that epoch is over: the commit has expired).
pub(super) fn commit_info_in(cfg: &DevChainConfig, st: &State, c: &WeightCommit) -> CommitInfo {
    let subnet = crate::chain::epoch_clock::Subnet {
        netuid: cfg.netuid,
        tempo: cfg.tempo,
    };
    let reveal_epoch = c.commit_epoch + cfg.reveal_period_epochs;
    let (first, last) = (cfg.runtime.clock())
        .epoch_blocks(&st.clock, subnet, st.block, reveal_epoch)
        .unwrap_or((0, 0));
    CommitInfo {
        hash: c.hash,
        commit_block: c.commit_block,
        first_reveal_block: first,
        last_reveal_block: last,
    }
}

#[async_trait::async_trait]
impl ChainClient for DevChain {
    async fn finalized_block(&self) -> Result<BlockInfo, ChainError> {
        self.best_block().await
    }

    async fn block_hash(&self, number: u64) -> Result<Hash32, ChainError> {
        DevChain::block_hash(self, number).await
    }

    async fn metagraph(&self, netuid: u16, at: &BlockInfo) -> Result<Vec<NeuronInfo>, ChainError> {
        self.check_at(at)?;
        DevChain::metagraph(self, netuid).await
    }

    async fn commitments(
        &self,
        netuid: u16,
        at: &BlockInfo,
    ) -> Result<Vec<CommitmentRecord>, ChainError> {
        self.check_at(at)?;
        DevChain::commitments(self, netuid).await
    }

    async fn weights_params(
        &self,
        netuid: u16,
        at: &BlockInfo,
    ) -> Result<WeightsParams, ChainError> {
        self.check_at(at)?;
        DevChain::weights_params(self, netuid).await
    }

    async fn weight_commits(
        &self,
        netuid: u16,
        hotkey: &[u8; 32],
        at: &BlockInfo,
    ) -> Result<Vec<CommitInfo>, ChainError> {
        self.check_at(at)?;
        let commits = DevChain::weight_commits(self, netuid, hotkey).await?;
        Ok(commits.iter().map(|c| self.commit_info(c)).collect())
    }

    async fn weights(
        &self,
        netuid: u16,
        uid: u16,
        at: &BlockInfo,
    ) -> Result<Vec<(u16, u16)>, ChainError> {
        self.check_at(at)?;
        self.check_netuid(netuid)?;
        let st = self.state.lock().expect("chain lock");
        Ok(st
            .neurons
            .get(usize::from(uid))
            .map(|n| n.weights.clone())
            .unwrap_or_default())
    }

    async fn set_commitment(
        &self,
        signer: &Hotkey,
        netuid: u16,
        data: Vec<u8>,
    ) -> Result<Included, ChainError> {
        DevChain::set_commitment(self, signer, netuid, data).await?;
        Ok(self.included())
    }

    async fn set_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        version_key: u64,
    ) -> Result<Included, ChainError> {
        DevChain::set_weights(self, signer, netuid, uids, values, version_key).await?;
        Ok(self.included())
    }

    async fn commit_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        commit_hash: [u8; 32],
    ) -> Result<Included, ChainError> {
        DevChain::commit_weights(self, signer, netuid, commit_hash).await?;
        Ok(self.included())
    }

    async fn reveal_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        reveal: Reveal,
    ) -> Result<Included, ChainError> {
        self.with_state(|st| self.reveal_weights_in(st, signer.public(), netuid, reveal))?;
        Ok(self.included())
    }

    async fn serve_axon(
        &self,
        signer: &Hotkey,
        netuid: u16,
        axon: Axon,
    ) -> Result<Included, ChainError> {
        self.with_state(|st| self.serve_axon_in(st, signer.public(), netuid, axon))?;
        Ok(self.included())
    }
}
