//! Miner submissions: who signs them, what is committed on chain, and how a validator checks a
//! downloaded expert shard before scoring it.
//!
//! - [`keys`]: sr25519 hotkeys (sign, verify, SS58 addresses).
//! - [`manifest`]: the signed manifest that binds hotkey, group, cycle, global version and content
//!   hash, and the compact on-chain commitment payloads.
//! - [`validate`]: the ordered checks a shard must pass, each failure a typed [`Rejection`].

pub mod keys;
pub mod manifest;
pub mod validate;
pub mod verdict;

pub use keys::{Hotkey, SUBSTRATE_SS58_PREFIX, ss58, verify};
pub use manifest::{
    Commitment, CommitmentError, MAX_COMMITMENT_BYTES, Manifest, SUBMISSION_DOMAIN, SignedManifest,
};
pub use validate::{Rejection, ShardSpec, validate_shard};
pub use verdict::Verdict;
