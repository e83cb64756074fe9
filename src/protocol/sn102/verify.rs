//! One live SN102 submission checked as the reference validator checks it, in its order: the
//! two commitments parse (MinerCommit1's signature, MinerCommit2's group, hash, version,
//! location), the group and version are the round's, the signature is the committing hotkey's
//! of the committed hash, the file decodes (safetensors, or a legacy `.pt` through the
//! restricted reader), its content hash is the committed one, and it holds exactly the group's
//! experts, shaped and finite. Each refusal is a [`Verdict`] with a reason.

use super::commitment::{CommitmentError, HashCommit, RawCommit};
use super::hash::ContentHash;
use super::shard::{Shard, ShardError, ShardSpec};
use super::signature::verify_hash;
use crate::submission::Verdict;

/// The file a miner uploaded.
#[derive(Debug, Clone, Copy)]
pub enum ShardFile<'a> {
    /// `model_expgroup_{g}.safetensors`.
    Safetensors(&'a [u8]),
    /// `model_expgroup_{g}.pt` (legacy `torch.save`).
    Pt(&'a [u8]),
}

/// A submission: the file and what the hotkey committed.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    pub file: ShardFile<'a>,
    /// MinerCommit1's commitment (`{"m": ...}`).
    pub commit1: &'a str,
    /// MinerCommit2's commitment (`{"e","h","v","r","rv"}`).
    pub commit2: &'a str,
    pub hotkey: [u8; 32],
}

/// What the round expects.
#[derive(Debug, Clone)]
pub struct Expected {
    pub spec: ShardSpec,
    pub group: u64,
    /// The version the commitment must name, where the round fixes one.
    pub version: Option<u64>,
    /// Bytes a file may take.
    pub max_bytes: usize,
}

/// A submission that passed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub commit: HashCommit,
    pub hash: ContentHash,
    pub shard: Shard,
}

/// A submission refused: its verdict and why (one type for both profiles).
pub use crate::submission::check::Refused;

fn refuse(verdict: Verdict, reason: impl std::fmt::Display) -> Refused {
    Refused {
        verdict,
        reason: reason.to_string(),
    }
}

fn commitment(which: &str, e: CommitmentError) -> Refused {
    refuse(Verdict::Malformed, format!("{which}: {e}"))
}

/// Checks `s` against `e`.
pub fn verify(s: &Submission<'_>, e: &Expected) -> Result<Checked, Refused> {
    let c1 = RawCommit::parse(s.commit1).map_err(|x| commitment("commit1", x))?;
    let signature = c1.signature().map_err(|x| commitment("commit1", x))?;
    let c2 = RawCommit::parse(s.commit2).map_err(|x| commitment("commit2", x))?;
    let commit = c2.hash_commit().map_err(|x| commitment("commit2", x))?;
    if commit.group != e.group {
        let why = format!(
            "committed group {}, the round's is {}",
            commit.group, e.group
        );
        return Err(refuse(Verdict::WrongGroup, why));
    }
    if let Some(v) = e.version.filter(|v| *v != commit.version) {
        let why = format!("committed version {}, the round's is {v}", commit.version);
        return Err(refuse(Verdict::StaleManifest, why));
    }
    verify_hash(&s.hotkey, &commit.hash, signature)
        .map_err(|x| refuse(Verdict::BadSignature, x))?;
    let (shard, hash) = check_file(s.file, &commit.hash, &e.spec, e.max_bytes)?;
    Ok(Checked {
        commit,
        hash,
        shard,
    })
}

/// The file's part of the checks, in the reference's order: it decodes, hashes to `committed`,
/// and holds exactly `spec`'s experts, shaped and finite.
pub fn check_file(
    file: ShardFile<'_>,
    committed: &ContentHash,
    spec: &ShardSpec,
    max_bytes: usize,
) -> Result<(Shard, ContentHash), Refused> {
    let shard = decode(file, max_bytes)?;
    let hash = ContentHash::of(&shard);
    if hash != *committed {
        let why = format!("the file hashes to {hash}, the commitment says {committed}");
        return Err(refuse(Verdict::HashMismatch, why));
    }
    shard.check(spec).map_err(shard_refusal)?;
    Ok((shard, hash))
}

/// The shard in `file` (refused past `max_bytes`), as a validator reads it.
pub fn decode(file: ShardFile<'_>, max_bytes: usize) -> Result<Shard, Refused> {
    let len = match file {
        ShardFile::Safetensors(b) | ShardFile::Pt(b) => b.len(),
    };
    if len > max_bytes {
        return Err(refuse(
            Verdict::TooLarge,
            format!("{len} bytes, at most {max_bytes}"),
        ));
    }
    match file {
        ShardFile::Safetensors(b) => Shard::from_safetensors(b).map_err(shard_refusal),
        ShardFile::Pt(b) => super::pt_shard::read(b, max_bytes),
    }
}

/// The verdict of a shard refusal.
pub fn shard_refusal(e: ShardError) -> Refused {
    let verdict = match &e {
        ShardError::Malformed(_) | ShardError::Truncated(_) => Verdict::Malformed,
        ShardError::Dtype { .. } => Verdict::UnsupportedFormat,
        ShardError::UnexpectedTensor(_) | ShardError::NotInGroup(_) => Verdict::UnexpectedKey,
        ShardError::Shape { .. } => Verdict::WrongShape,
        ShardError::Missing(_) => Verdict::MissingKey,
        ShardError::NotFinite(_) => Verdict::NonFinite,
    };
    refuse(verdict, e)
}
