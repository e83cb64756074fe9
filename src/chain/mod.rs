//! The chain boundary: the [`ChainClient`] trait and the embedded dev chain.
//!
//! Everything the runtime reads from or submits to Subtensor goes through `ChainClient`. The
//! [`DevChain`] implements the Subtensor semantics the runtime relies on (registration, stake,
//! commitments, weights with rate limit and version key, a Yuma Consensus epoch every tempo with
//! emission), persisted in sled so a restarted localnet continues at the same block.

mod dev;

pub use dev::{DevChain, DevChainConfig};

use serde::{Deserialize, Serialize};

use crate::submission::Hotkey;
use crate::tensors::Hash32;

/// Subtensor's SS58 prefix and the subnet this runtime serves by default.
pub const DEFAULT_NETUID: u16 = 102;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    pub number: u64,
    pub hash: Hash32,
}

/// One uid of the metagraph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuronInfo {
    pub uid: u16,
    pub hotkey: [u8; 32],
    pub stake: f64,
    pub registered_at: u64,
    pub last_update: u64,
    pub validator_permit: bool,
    pub active: bool,
    pub consensus: f64,
    pub incentive: f64,
    pub dividends: f64,
    pub validator_trust: f64,
    /// Emission received at the last epoch.
    pub emission: f64,
}

/// A hotkey's commitment (Commitments pallet, `CommitmentOf`), with the block it was set at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentRecord {
    pub uid: u16,
    pub hotkey: [u8; 32],
    pub data: Vec<u8>,
    pub block: u64,
}

/// Rejections, named as Subtensor names them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ChainError {
    #[error("HotKeyNotRegisteredInSubNet")]
    HotKeyNotRegisteredInSubNet,
    #[error("HotKeyAlreadyRegisteredInSubNet")]
    HotKeyAlreadyRegisteredInSubNet,
    #[error("SubnetworkDoesNotExist: netuid {0}")]
    SubnetworkDoesNotExist(u16),
    #[error("NoNeuronIdAvailable: every uid is taken and all are immune")]
    NoNeuronIdAvailable,
    #[error("SettingWeightsTooFast: {blocks_left} more blocks")]
    SettingWeightsTooFast { blocks_left: u64 },
    #[error("IncorrectWeightVersionKey: chain {chain}, given {given}")]
    IncorrectWeightVersionKey { chain: u64, given: u64 },
    #[error("DuplicateUids")]
    DuplicateUids,
    #[error("UidVecContainInvalidOne")]
    UidVecContainInvalidOne,
    #[error("WeightVecNotEqualSize")]
    WeightVecNotEqualSize,
    #[error("NeuronNoValidatorPermit")]
    NeuronNoValidatorPermit,
    #[error("CommitmentTooLarge: {len} bytes, at most {max}")]
    CommitmentTooLarge { len: usize, max: usize },
    #[error("block {0} is not known")]
    UnknownBlock(u64),
    #[error("chain storage: {0}")]
    Storage(String),
    #[error("connection: {0}")]
    Connection(String),
}

/// The one boundary to a Subtensor-compatible chain.
#[async_trait::async_trait]
pub trait ChainClient: Send + Sync {
    async fn best_block(&self) -> Result<BlockInfo, ChainError>;
    async fn block_hash(&self, number: u64) -> Result<Hash32, ChainError>;
    async fn metagraph(&self, netuid: u16) -> Result<Vec<NeuronInfo>, ChainError>;
    async fn commitments(&self, netuid: u16) -> Result<Vec<CommitmentRecord>, ChainError>;
    /// Registers `signer` (burned registration); returns its uid.
    async fn register(&self, signer: &Hotkey, netuid: u16) -> Result<u16, ChainError>;
    async fn add_stake(&self, signer: &Hotkey, netuid: u16, amount: f64) -> Result<(), ChainError>;
    async fn set_commitment(
        &self,
        signer: &Hotkey,
        netuid: u16,
        data: Vec<u8>,
    ) -> Result<(), ChainError>;
    async fn set_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        version_key: u64,
    ) -> Result<(), ChainError>;
}
