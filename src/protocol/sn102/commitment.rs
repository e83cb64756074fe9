//! Live SN102 commitments: one `Raw` field of `Commitments.set_commitment`, compact JSON with
//! `None` fields left out, keys in the order the reference's models declare them (miner: `b, e,
//! m, h, v, i, r, rv`; validator: `h, v, e, s, r, rv`), at most 128 bytes, a Hugging Face repo
//! id of at most 32 characters. (Reference: `connito/shared/chain.py`, `MinerChainCommit`,
//! `ValidatorChainCommit`, `SignedModelHashChainCommit`.)
//!
//! What each writes, per phase: a miner `{"m"}` at MinerCommit1 and `{"e","h","v","r","rv"}` at
//! MinerCommit2; a validator `{"h","v","e","s"}` at MinerCommit1, `{"m"}` at ValidatorCommit1 and
//! `{"h","v","e","r","rv"}` at ValidatorCommit2 ([`Commit`]). Readers take any object of known
//! keys with the right JSON types and ignore unknown keys ([`RawCommit::parse`]); what a step
//! needs of it is asked for by name ([`RawCommit::hash_commit`], [`RawCommit::signature`]).

use serde::Serialize;
use serde_json::{Map, Value};

use super::hash::{ContentHash, HashParseError};

/// Bytes a commitment may take (`CHAIN_COMMIT_MAX_BYTES`).
pub const MAX_COMMITMENT_BYTES: usize = 128;
/// Characters of a Hugging Face repo id in a commitment (`CHAIN_COMMIT_MAX_HF_REPO_ID_CHARS`).
pub const MAX_REPO_CHARS: usize = 32;

/// Why a commitment cannot be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    #[error("commitment is {0} bytes; at most {MAX_COMMITMENT_BYTES} fit")]
    TooLong(usize),
    #[error("repo id {0:?} is over {MAX_REPO_CHARS} characters")]
    RepoTooLong(String),
    #[error("repo id {0:?} is not owner/name of ASCII letters, digits, '-', '_', '.'")]
    BadRepo(String),
    #[error("commitment is not JSON: {0}")]
    NotJson(String),
    #[error("commitment is JSON but not an object")]
    NotAnObject,
    #[error("commitment field {key:?} is not {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("commitment has no {0:?}")]
    Missing(&'static str),
    #[error("commitment hash: {0}")]
    Hash(#[from] HashParseError),
}

/// The content and location a hash commitment names (miner MinerCommit2, validator
/// ValidatorCommit2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashCommit {
    pub group: u64,
    pub hash: ContentHash,
    /// A block number: the model version (see the profile's version rule).
    pub version: u64,
    pub repo: String,
    pub revision: String,
}

/// A commitment connito writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// Miner, MinerCommit1: the signature of the shard's hash.
    MinerSignature(String),
    /// Miner, MinerCommit2.
    MinerHash(HashCommit),
    /// Validator, MinerCommit1: its model's hash and version, its group and a fresh seed.
    ValidatorHeartbeat {
        hash: ContentHash,
        version: u64,
        group: u64,
        seed: u64,
    },
    /// Validator, ValidatorCommit1: the signature of the new model's hash.
    ValidatorSignature(String),
    /// Validator, ValidatorCommit2.
    ValidatorHash(HashCommit),
}

/// `MinerChainCommit`'s keys in declared order.
#[derive(Serialize, Default)]
struct MinerJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    m: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    h: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rv: Option<&'a str>,
}

/// `ValidatorChainCommit`'s keys in declared order.
#[derive(Serialize, Default)]
struct ValidatorJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    h: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rv: Option<&'a str>,
}

impl Commit {
    /// The commitment string, as it goes on chain; refused when over the limits.
    pub fn encode(&self) -> Result<String, CommitmentError> {
        let json = match self {
            Self::MinerSignature(m) => to_json(&MinerJson {
                m: Some(m),
                ..Default::default()
            }),
            Self::MinerHash(c) => {
                check_repo(&c.repo)?;
                to_json(&MinerJson {
                    e: Some(c.group),
                    h: Some(c.hash.to_hex()),
                    v: Some(c.version),
                    r: Some(&c.repo),
                    rv: Some(&c.revision),
                    ..Default::default()
                })
            }
            Self::ValidatorHeartbeat {
                hash,
                version,
                group,
                seed,
            } => to_json(&ValidatorJson {
                h: Some(hash.to_hex()),
                v: Some(*version),
                e: Some(*group),
                s: Some(*seed),
                ..Default::default()
            }),
            // `SignedModelHashChainCommit` has the one key.
            Self::ValidatorSignature(m) => to_json(&MinerJson {
                m: Some(m),
                ..Default::default()
            }),
            Self::ValidatorHash(c) => {
                check_repo(&c.repo)?;
                to_json(&ValidatorJson {
                    h: Some(c.hash.to_hex()),
                    v: Some(c.version),
                    e: Some(c.group),
                    r: Some(&c.repo),
                    rv: Some(&c.revision),
                    ..Default::default()
                })
            }
        };
        match json.len() {
            n if n > MAX_COMMITMENT_BYTES => Err(CommitmentError::TooLong(n)),
            _ => Ok(json),
        }
    }
}

fn to_json(v: &impl Serialize) -> String {
    serde_json::to_string(v).expect("plain fields serialize")
}

/// A repo id of at most [`MAX_REPO_CHARS`] in Hugging Face's alphabet (`owner/name` of ASCII
/// letters, digits, `-`, `_`, `.`, not starting with `.`, as the Hub requires), so the JSON is
/// the same bytes as Python's `json.dumps` (which escapes non-ASCII) writes and the id is never
/// a path outside a Hub folder.
pub fn check_repo(repo: &str) -> Result<(), CommitmentError> {
    if repo.chars().count() > MAX_REPO_CHARS {
        return Err(CommitmentError::RepoTooLong(repo.to_string()));
    }
    let part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match repo.split_once('/') {
        Some((owner, name)) if part(owner) && part(name) => Ok(()),
        _ => Err(CommitmentError::BadRepo(repo.to_string())),
    }
}

/// A commitment as read: the known keys (all optional, as in the reference's models).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawCommit {
    pub block: Option<u64>,
    pub group: Option<u64>,
    pub signature: Option<String>,
    pub hash: Option<String>,
    pub version: Option<u64>,
    pub inner_opt: Option<u64>,
    pub seed: Option<u64>,
    pub repo: Option<String>,
    pub revision: Option<String>,
}

impl RawCommit {
    /// Parses a commitment: at most 128 bytes of a JSON object whose known keys have their types
    /// (integers non-negative, the others strings; `null` is absent); unknown keys are ignored.
    pub fn parse(text: &str) -> Result<Self, CommitmentError> {
        if text.len() > MAX_COMMITMENT_BYTES {
            return Err(CommitmentError::TooLong(text.len()));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| CommitmentError::NotJson(e.to_string()))?;
        let Value::Object(o) = value else {
            return Err(CommitmentError::NotAnObject);
        };
        Ok(Self {
            block: int(&o, "b")?,
            group: int(&o, "e")?,
            signature: string(&o, "m")?,
            hash: string(&o, "h")?,
            version: int(&o, "v")?,
            inner_opt: int(&o, "i")?,
            seed: int(&o, "s")?,
            repo: string(&o, "r")?,
            revision: string(&o, "rv")?,
        })
    }

    /// The signature a Commit1 carries.
    pub fn signature(&self) -> Result<&str, CommitmentError> {
        self.signature
            .as_deref()
            .ok_or(CommitmentError::Missing("m"))
    }

    /// What a Commit2 names: group, hash, version and the repo and revision to fetch from.
    pub fn hash_commit(&self) -> Result<HashCommit, CommitmentError> {
        let hash = self.hash.as_deref().ok_or(CommitmentError::Missing("h"))?;
        Ok(HashCommit {
            group: self.group.ok_or(CommitmentError::Missing("e"))?,
            hash: ContentHash::parse(hash)?,
            version: self.version.ok_or(CommitmentError::Missing("v"))?,
            repo: self.repo.clone().ok_or(CommitmentError::Missing("r"))?,
            revision: self
                .revision
                .clone()
                .ok_or(CommitmentError::Missing("rv"))?,
        })
    }
}

fn int(o: &Map<String, Value>, key: &'static str) -> Result<Option<u64>, CommitmentError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(CommitmentError::WrongType {
            key,
            expected: "a non-negative integer",
        }),
    }
}

fn string(o: &Map<String, Value>, key: &'static str) -> Result<Option<String>, CommitmentError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(CommitmentError::WrongType {
            key,
            expected: "a string",
        }),
    }
}
