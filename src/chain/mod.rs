//! The chain boundary: the [`ChainClient`] trait, its errors, the weight state machine, commit
//! hashes and networks. Below it: [`dev`] (the embedded dev chain and its JSON-RPC), [`subxt`]
//! (the client for real Subtensor nodes) and [`substrate`] (metadata, extrinsic format, storage
//! hashing, SCALE checks, used by both); `dev` and `subxt` never import each other.
//!
//! Everything the runtime reads from or submits to Subtensor goes through `ChainClient`. The
//! [`DevChain`] implements the Subtensor semantics the runtime relies on (registration, stake,
//! commitments, weights with rate limit and version key, commit-reveal weights, a Yuma Consensus
//! epoch every tempo with emission), persisted in sled so a restarted localnet continues at the
//! same block.

mod commit;
pub mod dev;
pub mod drand;
pub mod epoch_clock;
pub mod network;
pub mod substrate;
pub mod subxt;
pub mod weight_state;

pub use commit::{Reveal, commit_hash, commit_preimage, encode_compact, netuid_index};
pub use dev::{
    BLOCK_HASH_COUNT, DEV_ACCOUNTS, DEV_ENDOWMENT, DEV_RUNTIME_APIS, DevChain, DevChainConfig,
    DevRuntime, DevStorage,
};
pub use epoch_clock::{EpochClock, EpochState};

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
    /// The owning coldkey, where the chain records one.
    #[serde(default)]
    pub coldkey: Option<[u8; 32]>,
    /// Where the neuron serves (`serve_axon`), if it has said.
    #[serde(default)]
    pub axon: Option<Axon>,
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

/// An unrevealed weight commit as the chain stores it (`WeightCommits`): the reveal must land in
/// blocks `first_reveal_block..=last_reveal_block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub hash: [u8; 32],
    pub commit_block: u64,
    pub first_reveal_block: u64,
    pub last_reveal_block: u64,
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
    /// The connection dropped after a submission was sent: it may or may not have landed.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// A dispatch error connito has no variant for, named as the runtime names it.
    #[error("{pallet}::{error}")]
    Module { pallet: String, error: String },
    /// The node refused the transaction before it reached a block (pool validation).
    #[error("transaction refused ({code}): {message}")]
    Invalid { code: i64, message: String },
    /// An answer did not decode with the node's metadata (a runtime connito does not know).
    #[error("decoding the node's answer: {0}")]
    Decode(String),
}

impl ChainError {
    /// Whether to retry (next block), resolve against the chain, or accept the answer.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Connection(_) | Self::UnknownBlock(_) | Self::Storage(_) => ErrorKind::Transient,
            Self::OutcomeUnknown(_) => ErrorKind::OutcomeUnknown,
            _ => ErrorKind::Final,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }

    /// The runtime's name of the error (`SettingWeightsTooFast`, not its details), for records
    /// and metrics labels.
    pub fn name(&self) -> String {
        match self {
            Self::Module { error, .. } => error.clone(),
            other => {
                let s = format!("{other:?}");
                s.split(|c: char| !c.is_alphanumeric())
                    .next()
                    .unwrap_or("")
                    .to_string()
            }
        }
    }
}

/// Where a submission landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Included {
    /// The block that included it (its dispatch succeeded).
    pub block: u64,
}

/// Whether an error is worth retrying ("try again next block") or settles the matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The node could not be reached or answered late: retry later; nothing was decided.
    Transient,
    /// A submission may or may not have landed (the connection dropped after it was sent):
    /// resolve against the chain before sending again.
    OutcomeUnknown,
    /// The chain decided (a Subtensor error, a refused transaction, a bad argument).
    Final,
}

/// The one boundary a daemon has to a Subtensor-compatible chain: the embedded dev chain
/// (`dev/client.rs`) or a node over RPC (`subxt/`).
///
/// Reads name the block they read at, and daemons read at *finalized* blocks, so two validators
/// reading the same block see the same state and a seed drawn from a block hash cannot be
/// reorganised away. Submissions return where they landed, or an error whose [`ChainError::kind`]
/// says whether to retry, resolve or give up. Registration and staking are coldkey operations and
/// are not here.
#[async_trait::async_trait]
pub trait ChainClient: Send + Sync {
    /// The newest finalized block.
    async fn finalized_block(&self) -> Result<BlockInfo, ChainError>;
    async fn block_hash(&self, number: u64) -> Result<Hash32, ChainError>;
    async fn metagraph(&self, netuid: u16, at: &BlockInfo) -> Result<Vec<NeuronInfo>, ChainError>;
    async fn commitments(
        &self,
        netuid: u16,
        at: &BlockInfo,
    ) -> Result<Vec<CommitmentRecord>, ChainError>;
    async fn weights_params(
        &self,
        netuid: u16,
        at: &BlockInfo,
    ) -> Result<WeightsParams, ChainError>;
    /// The unrevealed commits of `hotkey`, oldest first (`WeightCommits(netuid_index, hotkey)`).
    async fn weight_commits(
        &self,
        netuid: u16,
        hotkey: &[u8; 32],
        at: &BlockInfo,
    ) -> Result<Vec<CommitInfo>, ChainError>;
    /// The weights row of `uid` (`Weights(netuid_index, uid)`): `(uid, value)` pairs as stored.
    async fn weights(
        &self,
        netuid: u16,
        uid: u16,
        at: &BlockInfo,
    ) -> Result<Vec<(u16, u16)>, ChainError>;
    async fn set_commitment(
        &self,
        signer: &Hotkey,
        netuid: u16,
        data: Vec<u8>,
    ) -> Result<Included, ChainError>;
    async fn set_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        uids: Vec<u16>,
        values: Vec<u16>,
        version_key: u64,
    ) -> Result<Included, ChainError>;
    /// Stores `commit_hash` ([`commit_hash`] of the weights to reveal later) for `signer`.
    async fn commit_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        commit_hash: [u8; 32],
    ) -> Result<Included, ChainError>;
    /// Reveals a commit of `signer` made `reveal_period_epochs` epochs ago and sets the weights.
    async fn reveal_weights(
        &self,
        signer: &Hotkey,
        netuid: u16,
        reveal: Reveal,
    ) -> Result<Included, ChainError>;
    /// Advertises where `signer` serves (`serve_axon`).
    async fn serve_axon(
        &self,
        signer: &Hotkey,
        netuid: u16,
        axon: Axon,
    ) -> Result<Included, ChainError>;
}
