//! The concerns a wire profile decides, one trait each, implemented by [`super::connito::Connito`]
//! and [`super::sn102::Sn102`]; the daemons hold a [`Wire`] (all five) and call only these.
//!
//! | concern | trait | connito | sn102 |
//! |---|---|---|---|
//! | commitments | [`CommitmentCodec`] | binary hash, then location, read while the windows are open | JSON `{"m"}`, then `{"e","h","v","r","rv"}`, read at the block after each phase |
//! | content hash | [`ContentHasher`] | BLAKE2b-256 of the canonical file | BLAKE2b-24 of sorted names and raw tensors |
//! | signature | [`SubmissionSigner`] | signed manifest, binding hotkey, group, cycle, version, content | sr25519 of the hash's hex, in MinerCommit1 |
//! | shard codec | [`ShardCodec`] | canonical f32 safetensors, `shard` | `model_expgroup_{g}.safetensors`, f16, fused gate/up |
//! | version rule | [`VersionRule`] | a counter, equal to the round's | a block number, not gated for miners |

use std::collections::{BTreeMap, BTreeSet};

use crate::chain::CommitmentRecord;
use crate::model::ModelConfig;
use crate::phase::{Phase, PhaseClock};
use crate::protocol::sn102::assignment::GroupExperts;
use crate::protocol::sn102::shard::ShardSpec as Sn102Spec;
use crate::store::records::CommitObs;
use crate::submission::{Hotkey, Refused, Verdict};
use crate::tensors::StateDict;

/// A profile's content hash (connito: 32 bytes, sn102: 24).
pub type Digest = Vec<u8>;

/// The tensors a group's shard holds: the group's experts of every MoE layer and their shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLayout {
    pub group: u16,
    pub spec: Sn102Spec,
}

impl GroupLayout {
    /// `group` of `model`: the experts `assignment` lists, or the model's contiguous groups.
    pub fn of(model: &ModelConfig, group: u16, assignment: Option<&GroupExperts>) -> Self {
        let experts = match assignment {
            Some(a) => a.clone(),
            None => GroupExperts::contiguous_of(&model.arch, model.n_groups, group as usize),
        };
        Self {
            group,
            spec: Sn102Spec::of(&model.arch, experts),
        }
    }

    /// connito's names and shapes of the group's tensors (`gate_proj`, `up_proj`, `down_proj`).
    pub fn shapes(&self) -> BTreeMap<String, Vec<usize>> {
        let (h, m) = (self.spec.hidden, self.spec.moe_intermediate);
        let mut out = BTreeMap::new();
        for (layer, experts) in &self.spec.experts.layers {
            for &e in experts {
                let key = |t| crate::model::expert_key(*layer, e, t);
                out.insert(key("gate_proj"), vec![m, h]);
                out.insert(key("up_proj"), vec![m, h]);
                out.insert(key("down_proj"), vec![h, m]);
            }
        }
        out
    }
}

/// When a validator reads the round's commitments: at block `at`, for `cycle`; `after` is the
/// commit phase that just ended (sn102), `None` for a read while a window is open (connito).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CommitRead {
    pub at: u64,
    pub cycle: u64,
    pub after: Option<Phase>,
}

/// What a miner's commitments claim, as a validator needs it before any download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub group: u16,
    /// The version of the model it trained from (the profile's [`VersionRule`]).
    pub version: u64,
    /// What was committed: connito's binding hash, sn102's content hash.
    pub committed: Digest,
    /// Where its files are: the proof (if not on chain) and the shard lie under it.
    pub base: Base,
    /// The signature, where the commitments carry it (sn102).
    pub proof: Option<String>,
}

/// The folder of a submission's files, as a validator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// A URL (a miner's, to be checked against the address policy; or the Hub's).
    Url(String),
    /// A folder of this node's own `file://` hub, never named by a miner's text alone.
    Dir(std::path::PathBuf),
}

/// Where a miner publishes its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// connito: a base URL of the miner's own server.
    Url(String),
    /// sn102: a Hugging Face repo and the revision of the commit holding the file.
    Hub { repo: String, revision: String },
}

impl Location {
    /// The folder a miner serves it under on its own server (sn102: `{repo}/resolve/{rev}`);
    /// `None` for connito's, which its own routes serve.
    pub fn served_dir(&self) -> Option<String> {
        match self {
            Self::Url(_) => None,
            Self::Hub { repo, revision } => Some(format!("{repo}/resolve/{revision}")),
        }
    }
}

/// What a miner signs and commits for one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub hotkey: [u8; 32],
    pub group: u16,
    pub cycle: u64,
    /// The wire version of the model it trained from.
    pub version: u64,
    pub content: Digest,
}

/// A miner's submission, ready to commit: what it binds, its proof and where it lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub binding: Binding,
    pub proof: String,
    pub location: Location,
}

/// A commitment that cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Connito(#[from] crate::protocol::connito::CommitmentError),
    #[error(transparent)]
    Sn102(#[from] crate::protocol::sn102::commitment::CommitmentError),
    #[error("a miner commits nothing in {0}")]
    NoStep(&'static str),
    #[error("location {0:?} is not this profile's")]
    Location(String),
    #[error("content hash of {0} bytes is not this profile's")]
    Content(usize),
}

/// Commitments: when a validator reads them, what it keeps of each, what a submission's
/// commitments claim, and what a miner writes in each commit phase.
pub trait CommitmentCodec {
    /// The reads due after the validator saw blocks up to `last` and now sees `head` (at most
    /// one cycle back).
    fn commit_reads(&self, clock: &PhaseClock, last: u64, head: u64) -> Vec<CommitRead>;
    /// The hotkeys whose commitments are validators' while their weights are fresh; `None`
    /// where the profile tells validators' commitments apart by their content.
    fn validator_whitelist(&self) -> Option<&BTreeSet<[u8; 32]>>;
    /// The observation after `rec` (a miner's, by the role gate) was read at `read`, given
    /// what was kept before; `None` when nothing changes.
    fn observe(
        &self,
        clock: &PhaseClock,
        read: &CommitRead,
        prev: Option<&CommitObs>,
        rec: &CommitmentRecord,
    ) -> Option<CommitObs>;
    /// What the observation claims (`malformed` or `no_location` when it claims nothing usable).
    fn claim(&self, obs: &CommitObs) -> Result<Claim, Refused>;
    /// Where this miner's submission of `cycle` with `content` lies, given its server's URL.
    fn location(&self, public_url: &str, cycle: u64, content: &Digest) -> Location;
    /// The URL of the folder `location` names (a validator's `Claim::base`).
    fn base_url(&self, location: &Location) -> Result<String, EncodeError>;
    /// What a miner commits in `phase` (MinerCommit1 or MinerCommit2) for `p`.
    fn miner_commitment(&self, phase: Phase, p: &Publication) -> Result<Vec<u8>, EncodeError>;
}

/// The content hash of a shard file.
pub trait ContentHasher {
    fn content_hash(&self, file: &[u8], layout: &GroupLayout) -> Result<Digest, Refused>;
}

/// Who vouches for a submission, and how a validator checks it.
pub trait SubmissionSigner {
    /// `key`'s proof of `b`.
    fn sign(&self, key: &Hotkey, b: &Binding) -> String;
    /// The file under the claim's base holding the proof, when the commitments do not.
    fn proof_file(&self) -> Option<&'static str>;
    /// Checks `proof` binds the claim to `hotkey` for `cycle`; returns the content the shard
    /// must hash to.
    fn check_proof(
        &self,
        proof: &[u8],
        claim: &Claim,
        hotkey: &[u8; 32],
        cycle: u64,
    ) -> Result<Digest, Refused>;
}

/// How much a shard file may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRule {
    Exactly(usize),
    AtMost(usize),
}

impl SizeRule {
    pub fn max(self) -> usize {
        match self {
            Self::Exactly(n) | Self::AtMost(n) => n,
        }
    }
}

/// A group's shard file.
pub trait ShardCodec {
    /// Its name under the submission's base.
    fn shard_file(&self, group: u16) -> String;
    fn shard_size(&self, layout: &GroupLayout) -> SizeRule;
    /// The file of `sd` (connito's tensors of the group, f32).
    fn encode_shard(&self, sd: &StateDict, layout: &GroupLayout) -> Result<Vec<u8>, Refused>;
    /// connito's tensors of `file`, once it is checked, in the profile's order, to be the
    /// committed `content` and exactly the group's tensors, shaped and finite.
    fn decode_shard(
        &self,
        file: &[u8],
        content: &Digest,
        layout: &GroupLayout,
    ) -> Result<StateDict, Refused>;
}

/// Model versions on the wire.
pub trait VersionRule {
    /// The wire version of the model a validator made in `cycle` as its `counter`-th merge
    /// (genesis: cycle `None`, counter 0).
    fn model_version(&self, clock: &PhaseClock, cycle: Option<u64>, counter: u64) -> u64;
    /// Whether a miner's submission that trained from `committed` is judged in a round whose
    /// global model is `round`.
    fn miner_version_ok(&self, committed: u64, round: u64) -> bool;
    /// Whether a validator's model of version `v` may be a miner's start at block `head`.
    fn validator_version_ok(&self, clock: &PhaseClock, v: u64, head: u64) -> bool;
}

/// A whole profile.
pub trait Wire:
    CommitmentCodec + ContentHasher + SubmissionSigner + ShardCodec + VersionRule + Send + Sync
{
    fn kind(&self) -> super::ProtocolKind;
    /// Where a miner writes a file it serves at `served` (a path in the Hub's layout) so that
    /// validators read it: the file in the local hub folder (sn102 with a `file://` hub).
    fn upload_path(&self, served: &str) -> Option<std::path::PathBuf>;
    /// Whether the daemons advertise their axon (`serve_axon`): the live validators' checks
    /// need a neuron's address.
    fn serves_axon(&self) -> bool;
}

/// The settings of the sn102 profile (`[sn102]` in a daemon's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sn102Settings {
    /// Base URL of the Hugging Face Hub (`https://huggingface.co`), or `file://DIR`: a folder
    /// in the Hub's layout (`DIR/{repo}/resolve/{revision}/{file}`).
    pub hub: String,
    /// This node's repo id (at most 32 characters).
    pub repo: String,
    /// Hotkeys whose commitments count as validators' (with fresh weights).
    pub whitelist: BTreeSet<[u8; 32]>,
    /// Cycles back a validator's model may be for a miner to start from.
    pub version_range_cycles: u64,
}

/// The profile of `kind`.
pub fn wire(kind: super::ProtocolKind, sn102: &Sn102Settings) -> Box<dyn Wire> {
    match kind {
        super::ProtocolKind::Connito => Box::new(super::connito::Connito),
        super::ProtocolKind::Sn102 => Box::new(super::sn102::Sn102(sn102.clone())),
    }
}

/// A refusal.
pub(crate) fn refused(verdict: Verdict, reason: impl std::fmt::Display) -> Refused {
    Refused {
        verdict,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
