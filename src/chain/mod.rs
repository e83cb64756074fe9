//! The chain boundary: the [`ChainClient`] trait and the embedded dev chain.
//!
//! Everything the runtime reads from or submits to Subtensor goes through `ChainClient`. The
//! [`DevChain`] implements the Subtensor semantics the runtime relies on (registration, stake,
//! commitments, weights with rate limit and version key, commit-reveal weights, a Yuma Consensus
//! epoch every tempo with emission), persisted in sled so a restarted localnet continues at the
//! same block.

mod commit;
mod dev;
pub mod dev_calls;
pub mod dispatch;
pub mod extrinsic;
pub mod hashing;
pub mod metadata;
pub mod rpc;
pub mod runtime_api;
pub mod scale_check;

pub use commit::{commit_hash, commit_preimage, encode_compact, netuid_index};
pub use dev::{
    BLOCK_HASH_COUNT, DEV_ACCOUNTS, DEV_ENDOWMENT, DEV_RUNTIME_APIS, DevChain, DevChainConfig,
    DevStorage,
};

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

/// Where a neuron serves (Subtensor's `AxonInfo`, as `serve_axon` sets it).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, parity_scale_codec::Encode,
)]
pub struct Axon {
    /// Block of the last `serve_axon`.
    pub block: u64,
    pub version: u32,
    /// IPv4 in the low 32 bits, or IPv6.
    pub ip: u128,
    pub port: u16,
    /// 4 or 6.
    pub ip_type: u8,
    pub protocol: u8,
    pub placeholder1: u8,
    pub placeholder2: u8,
}

/// A hotkey's commitment (Commitments pallet, `CommitmentOf`), with the block it was set at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentRecord {
    pub uid: u16,
    pub hotkey: [u8; 32],
    pub data: Vec<u8>,
    pub block: u64,
}

/// The weight-setting hyperparameters of a subnet, so a validator can choose between
/// `set_weights` and commit-reveal and time its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsParams {
    /// `CommitRevealWeightsEnabled`: `set_weights` is refused, commit/reveal is required.
    pub commit_reveal_enabled: bool,
    /// `RevealPeriodEpochs`: a commit made in epoch `e` must be revealed in epoch `e + period`.
    pub reveal_period_epochs: u64,
    /// `Tempo`: blocks between epochs.
    pub tempo: u64,
    /// `WeightsSetRateLimit`: blocks between two `set_weights`/`commit_weights` of one uid.
    pub weights_rate_limit: u64,
    /// `WeightsVersionKey`: 0 accepts any, otherwise the given key must be `>=` it.
    pub version_key: u64,
    /// `SubnetEpochIndex`: epochs the subnet has run; a commit made now has this epoch.
    pub epoch_index: u64,
    /// `LastEpochBlock`: the block the last epoch ran at; the next runs at `+ tempo`.
    pub last_epoch_block: u64,
}

/// One unrevealed weight commit (Subtensor's `WeightCommits` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightCommit {
    pub hash: [u8; 32],
    pub commit_block: u64,
    /// The epoch index at commit time; the reveal must land in `commit_epoch + reveal_period`.
    pub commit_epoch: u64,
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
    #[error("CommitRevealEnabled: set_weights is refused, use commit_weights/reveal_weights")]
    CommitRevealEnabled,
    #[error("CommitRevealDisabled: commit-reveal is off, use set_weights")]
    CommitRevealDisabled,
    #[error("CommittingWeightsTooFast: {blocks_left} more blocks")]
    CommittingWeightsTooFast { blocks_left: u64 },
    #[error("TooManyUnrevealedCommits")]
    TooManyUnrevealedCommits,
    #[error("NoWeightsCommitFound")]
    NoWeightsCommitFound,
    #[error("ExpiredWeightCommit")]
    ExpiredWeightCommit,
    #[error("RevealTooEarly")]
    RevealTooEarly,
    #[error("InvalidRevealCommitHashNotMatch")]
    InvalidRevealCommitHashNotMatch,
    #[error("CommitmentTooLarge: {len} bytes, at most {max}")]
    CommitmentTooLarge { len: usize, max: usize },
    #[error("SpaceLimitExceeded: {used} bytes used this epoch, {requested} more exceeds {limit}")]
    SpaceLimitExceeded {
        used: usize,
        requested: usize,
        limit: usize,
    },
    #[error("WeightVecLengthIsLow: {len} weights, at least {min}")]
    WeightVecLengthIsLow { len: usize, min: usize },
    #[error("NotEnoughBalanceToStake")]
    NotEnoughBalanceToStake,
    #[error("AmountTooLow: a stake must be more than 0")]
    AmountTooLow,
    #[error("HotKeyAccountNotExists")]
    HotKeyAccountNotExists,
    #[error("HotKeyNotRegisteredInNetwork")]
    HotKeyNotRegisteredInNetwork,
    #[error("InvalidIpType: {0} (4 or 6)")]
    InvalidIpType(u8),
    #[error("InvalidIpAddress")]
    InvalidIpAddress,
    #[error("TooManyFieldsInCommitmentInfo: {0} fields, devnet stores one")]
    TooManyFieldsInCommitmentInfo(usize),
    #[error("Token(FundsUnavailable): the balance is too low")]
    FundsUnavailable,
    #[error("Token(BelowMinimum): a new account needs the existential deposit")]
    BelowMinimum,
    #[error(
        "Token(NotExpendable): the transfer would take the sender below the existential deposit"
    )]
    NotExpendable,
    #[error("CannotLookup: the address is not an account id")]
    CannotLookup,
    #[error("unsupported by devnet: {0}")]
    Unsupported(String),
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
    /// Stores `commit_hash` ([`commit_hash`] of the weights to reveal later) for `signer`.
    async fn commit_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        commit_hash: [u8; 32],
    ) -> Result<(), ChainError>;
    /// Reveals a commit of `signer` made `reveal_period_epochs` epochs ago and sets the weights.
    async fn reveal_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        salt: Vec<u16>,
        version_key: u64,
    ) -> Result<(), ChainError>;
    async fn weights_params(&self, netuid: u16) -> Result<WeightsParams, ChainError>;
    /// The unrevealed commits of `hotkey`, oldest first (`WeightCommits(netuid_index, hotkey)`).
    async fn weight_commits(
        &self,
        netuid: u16,
        hotkey: &[u8; 32],
    ) -> Result<Vec<WeightCommit>, ChainError>;
}
