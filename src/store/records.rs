//! The records a daemon keeps in sled, one type per table ([`super::tables`] lists which tree
//! holds which). Plain data: serde only, every field added later has a default so records of
//! older builds still read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chain::weight_state::{WeightMode, WeightState};
use crate::submission::SignedManifest;
use crate::tensors::Hash32;

/// tree `commitments`, key [cycle, uid]: what ChainSync saw a miner commit this cycle. The
/// connito profile keeps the fields it parsed (group, binding hash, version, location); the
/// sn102 profile keeps the commitments' texts as read (MinerCommit1's, then MinerCommit2's),
/// which its rules parse when the round is judged, with `group` and `version` from the second
/// where it parses (`u16::MAX` and 0 until then) and a zero `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitObs {
    pub uid: u16,
    pub hotkey: [u8; 32],
    pub group: u16,
    pub hash: Hash32,
    pub version: u64,
    /// Block at which this hash was first seen (earliest commit wins ties).
    pub hash_block: u64,
    pub url: Option<String>,
    pub url_block: Option<u64>,
    /// sn102: the commitments' texts, in phase order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub texts: Vec<String>,
}

/// tree `rounds`, key [cycle].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub intake_done: bool,
    pub scored: bool,
    pub merged: bool,
    pub seed: Option<u64>,
    pub baseline: BTreeMap<u16, f64>,
    pub global_version: u64,
    #[serde(default)]
    pub seed_block: Option<u64>,
    /// Scored after its own cycle ended (scored and credited, never merged).
    #[serde(default)]
    pub late: bool,
    /// Why a best shard was not merged, by uid.
    #[serde(default)]
    pub not_merged: BTreeMap<u16, String>,
}

/// tree `submissions`, key [cycle, uid].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionRecord {
    pub uid: u16,
    pub hotkey: [u8; 32],
    pub group: u16,
    pub verdict: crate::submission::Verdict,
    pub detail: String,
    pub content_hash: Option<Hash32>,
    pub blob: Option<Hash32>,
    pub commit_block: u64,
}

/// tree `scores`, key [cycle, uid].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRecord {
    pub uid: u16,
    pub group: u16,
    #[serde(with = "crate::serde_f64")]
    pub baseline: f64,
    #[serde(with = "crate::serde_f64")]
    pub candidate: f64,
    pub delta: f64,
    pub score: f64,
    /// Everything the score was computed from (`connito pol replay` recomputes it); absent in
    /// records of older builds.
    #[serde(default)]
    pub parts: Option<ScoreParts>,
}

/// The parts of a score: enough to recompute it from the stored blobs and show why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreParts {
    #[serde(with = "crate::serde_f64")]
    pub std_err: f64,
    pub significant: bool,
    pub batches: usize,
    /// Tokens scored per model (batches × rows × seq_len).
    pub tokens: usize,
    /// The round's evaluation seed and the finalized block whose hash it came from.
    pub seed: u64,
    pub seed_block: u64,
    /// Backend the losses were computed on (`cpu`, `wgpu`, `cuda`).
    pub backend: String,
    pub global_version: u64,
    pub global_hash: Hash32,
    pub shard_hash: Hash32,
    /// `‖θ − θ_global‖ / ‖θ_global‖` of the shard.
    #[serde(with = "crate::serde_f64")]
    pub delta_ratio: f64,
    /// Highest cosine similarity of its expert delta to an earlier commit of the round or a
    /// recently credited submission (`None`: nothing to compare with).
    pub closest_cosine: Option<f64>,
    #[serde(with = "crate::serde_f64::vec")]
    pub baseline_batches: Vec<f64>,
    #[serde(with = "crate::serde_f64::vec")]
    pub candidate_batches: Vec<f64>,
}

/// tree `weights`, key [cycle]: written before any extrinsic is sent (write-ahead), like a
/// slashing-protection record: at most one weight setting or commit per cycle, ever. Its state
/// moves only through `crate::chain::weight_state::next`. Records of older builds (a `status`
/// string) are read through [`WeightRecordWire`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "WeightRecordWire")]
pub struct WeightRecord {
    pub weights: BTreeMap<u16, f64>,
    pub uids: Vec<u16>,
    pub values: Vec<u16>,
    pub mode: WeightMode,
    pub state: WeightState,
    pub recorded_block: u64,
    #[serde(default)]
    pub salt: Vec<u16>,
    #[serde(default)]
    pub commit_hash: Option<Hash32>,
    #[serde(default)]
    pub version_key: u64,
}

/// What a `weights` record may look like on disk: this build's (`mode`, `state`) or an older
/// one's (`status`).
#[derive(Deserialize)]
pub struct WeightRecordWire {
    weights: BTreeMap<u16, f64>,
    uids: Vec<u16>,
    values: Vec<u16>,
    mode: Option<WeightMode>,
    state: Option<WeightState>,
    status: Option<String>,
    recorded_block: u64,
    #[serde(default)]
    salt: Vec<u16>,
    #[serde(default)]
    commit_hash: Option<Hash32>,
    #[serde(default)]
    version_key: u64,
}

impl From<WeightRecordWire> for WeightRecord {
    fn from(w: WeightRecordWire) -> Self {
        let mode = w.mode.unwrap_or(match w.commit_hash {
            Some(_) => WeightMode::CommitReveal,
            None => WeightMode::SetWeights,
        });
        let state = w.state.unwrap_or_else(|| {
            crate::chain::weight_state::from_legacy_status(
                w.status.as_deref().unwrap_or("pending"),
                w.recorded_block,
            )
        });
        Self {
            weights: w.weights,
            uids: w.uids,
            values: w.values,
            mode,
            state,
            recorded_block: w.recorded_block,
            salt: w.salt,
            commit_hash: w.commit_hash,
            version_key: w.version_key,
        }
    }
}

/// tree `models`, key [version].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub version: u64,
    pub hash: Hash32,
    /// Cycle whose merge produced it (`None` for genesis).
    pub cycle: Option<u64>,
    pub heldout: BTreeMap<u16, f64>,
    pub momentum: Option<Hash32>,
    pub merged_uids: Vec<u16>,
}

/// tree `trainer`, key [cycle]: a miner's progress through one cycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    pub global_version: u64,
    pub shard: Option<Hash32>,
    pub steps: u64,
    pub last_loss: Option<f32>,
    pub signed: Option<SignedManifest>,
    /// The hash committed in step 1 (a copier's is someone else's).
    pub committed: Option<Hash32>,
    pub hash_committed: bool,
    pub location_committed: bool,
    /// The MinerCommit2 commitment, made with the first (in the profile's format).
    #[serde(default)]
    pub commit2: Option<Vec<u8>>,
    /// The shard file as published where the profile serves it from this miner's server
    /// (sn102: `{repo}/resolve/{revision}/model_expgroup_{g}.safetensors`).
    #[serde(default)]
    pub served: Option<ServedFile>,
}

/// A file a miner serves at `path` (relative to its server's root), from blob `blob`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedFile {
    pub path: String,
    pub blob: Hash32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_records_of_older_builds_are_read() {
        let hash = vec![7u8; 32];
        let old = serde_json::json!({
            "weights": {"1": 1.0}, "uids": [1], "values": [65535],
            "status": "committed", "recorded_block": 40, "salt": [3, 4],
            "commit_hash": hash, "commit_epoch": 2, "version_key": 0
        });
        let rec: WeightRecord = serde_json::from_value(old).unwrap();
        assert_eq!(rec.mode, WeightMode::CommitReveal);
        assert_eq!(rec.state, WeightState::Committed { block: 40 });
        assert_eq!(rec.salt, vec![3, 4]);
        // And this build's records round-trip.
        let back: WeightRecord =
            serde_json::from_value(serde_json::to_value(&rec).unwrap()).unwrap();
        assert_eq!(back, rec);
    }
}
