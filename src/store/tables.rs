//! Every sled tree connito keeps, in one list: its name, key type, value type and schema
//! version. Call sites name a [`Table`] constant, never a tree by a string, so a key or value of
//! the wrong type does not compile.
//!
//! Keys are big-endian u64 parts ([`super::key`]), so numeric order is byte order and a scan by
//! leading parts (a cycle) reads one contiguous range; a [`Fixed`] key names a single slot.

use std::marker::PhantomData;

use serde::{Serialize, de::DeserializeOwned};

use super::key;
use super::records::{
    CommitObs, ModelRecord, RoundRecord, ScoreRecord, SubmissionRecord, TrainRecord, WeightRecord,
};
use crate::train::SavedRunRecord;

/// One sled tree: values of type `V` under keys of type `K`, written with schema version
/// `version` (a stored value of a newer version is a typed error, never a silent misread).
pub struct Table<K, V> {
    pub name: &'static str,
    pub version: u32,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Table<K, V> {
    pub const fn new(name: &'static str, version: u32) -> Self {
        Self {
            name,
            version,
            _types: PhantomData,
        }
    }

    /// The same tree with its values read and written as plain JSON (migrations and tests that
    /// write what an older build wrote).
    pub const fn as_json(&self) -> Table<K, serde_json::Value> {
        Table::new(self.name, self.version)
    }
}

/// How a table's key is stored.
pub trait TableKey: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    /// `None` when the bytes are not a key of this form (a corrupt tree).
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

/// `[n]`: a cycle or a model version.
impl TableKey for u64 {
    fn to_bytes(&self) -> Vec<u8> {
        key(&[*self])
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(u64::from_be_bytes(bytes.try_into().ok()?))
    }
}

/// `[cycle, uid]`.
impl TableKey for (u64, u16) {
    fn to_bytes(&self) -> Vec<u8> {
        key(&[self.0, u64::from(self.1)])
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (a, b) = (bytes.get(..8)?, bytes.get(8..)?);
        let uid = u64::from_be_bytes(b.try_into().ok()?);
        Some((
            u64::from_be_bytes(a.try_into().ok()?),
            u16::try_from(uid).ok()?,
        ))
    }
}

/// A single named slot of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed(pub &'static [u8]);

impl TableKey for Fixed {
    fn to_bytes(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn from_bytes(_: &[u8]) -> Option<Self> {
        None // slots are read by name, never scanned
    }
}

/// Values a table can hold.
pub trait TableValue: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> TableValue for T {}

// --- A daemon's database (`<data dir>/db`) -------------------------------------------------

/// ChainSync: the last finalized block it handled ([`LAST_SEEN`]).
pub const CHAIN: Table<Fixed, u64> = Table::new("chain", 1);
pub const LAST_SEEN: Fixed = Fixed(b"last_seen");
/// ChainSync, key [cycle, uid]: what a miner committed this cycle.
pub const COMMITMENTS: Table<(u64, u16), CommitObs> = Table::new("commitments", 1);
/// Validator, key [cycle]: a round's progress (intake, scoring, merge).
pub const ROUNDS: Table<u64, RoundRecord> = Table::new("rounds", 1);
/// Validator, key [cycle, uid]: each submission's verdict and stored shard.
pub const SUBMISSIONS: Table<(u64, u16), SubmissionRecord> = Table::new("submissions", 1);
/// Validator, key [cycle, uid]: Proof-of-Loss scores and what they were computed from.
pub const SCORES: Table<(u64, u16), ScoreRecord> = Table::new("scores", 1);
/// Validator, key [cycle]: the write-ahead weight record (at most one per cycle, ever).
pub const WEIGHTS: Table<u64, WeightRecord> = Table::new("weights", 1);
/// Validator, key [version]: global models.
pub const MODELS: Table<u64, ModelRecord> = Table::new("models", 1);
/// Validator, key [cycle, step]: whether its commitment of the global model in ValidatorCommit1
/// (step 1) or ValidatorCommit2 (step 2) was accepted.
pub const MODEL_COMMITS: Table<(u64, u16), bool> = Table::new("model_commits", 1);
/// Miner, key [cycle]: its progress through one cycle.
pub const TRAINER: Table<u64, TrainRecord> = Table::new("trainer", 1);
/// Miner, key [cycle]: where a training run continues after a crash.
pub const TRAINER_CHECKPOINTS: Table<u64, SavedRunRecord> = Table::new("trainer_checkpoints", 1);
/// `connito train`, key [group]: where a killed run continues.
pub const TRAIN_CHECKPOINTS: Table<u64, SavedRunRecord> = Table::new("train_checkpoints", 1);

// --- The dev chain's database (`<localnet or devnet dir>/chain/db`) -------------------------

/// The dev chain's whole state ([`DEV_STATE_KEY`]), written after every block.
pub(crate) const DEV_CHAIN: Table<Fixed, crate::chain::dev::State> = Table::new("chain", 1);
pub const DEV_STATE_KEY: Fixed = Fixed(b"state");
/// Key [block number]: the extrinsics of the last `BLOCK_HASH_COUNT` blocks (empty ones absent).
pub(crate) const DEV_BLOCKS: Table<u64, crate::chain::dev::extrinsics::BlockBody> =
    Table::new("blocks", 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_numerically() {
        for k in [0u64, 7, u64::MAX] {
            assert_eq!(u64::from_bytes(&k.to_bytes()), Some(k));
        }
        for k in [(0u64, 0u16), (3, 65535), (u64::MAX, 1)] {
            assert_eq!(<(u64, u16)>::from_bytes(&k.to_bytes()), Some(k));
        }
        assert!(2u64.to_bytes() < 300u64.to_bytes());
        assert!((2u64, 9u16).to_bytes() < (3u64, 0u16).to_bytes());
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert_eq!(u64::from_bytes(&[1, 2, 3]), None);
        assert_eq!(<(u64, u16)>::from_bytes(&key(&[1])), None);
        assert_eq!(<(u64, u16)>::from_bytes(&key(&[1, 70_000])), None);
        assert_eq!(Fixed::from_bytes(b"state"), None);
    }

    #[test]
    fn tree_names_are_unique_within_a_database() {
        let daemon = [
            CHAIN.name,
            COMMITMENTS.name,
            ROUNDS.name,
            SUBMISSIONS.name,
            SCORES.name,
            WEIGHTS.name,
            MODELS.name,
            MODEL_COMMITS.name,
            TRAINER.name,
            TRAINER_CHECKPOINTS.name,
            TRAIN_CHECKPOINTS.name,
        ];
        let set: std::collections::BTreeSet<_> = daemon.iter().collect();
        assert_eq!(set.len(), daemon.len());
    }
}
