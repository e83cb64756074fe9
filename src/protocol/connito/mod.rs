//! The `connito` profile: the signed manifest and its binding hash, the compact on-chain
//! commitments ([`manifest`]), and the canonical shard: exactly the safetensors bytes
//! [`encode_canonical`] writes for the tensors it holds, so one content has one hash.

pub mod manifest;
pub mod wire;

pub use crate::tensors::{
    canonical_size, decode_canonical, encode_safetensors as encode_canonical, state_dict_hash,
};
pub use manifest::{
    Commitment, CommitmentError, MAX_COMMITMENT_BYTES, Manifest, SUBMISSION_DOMAIN, SignedManifest,
};
pub use wire::{Connito, GLOBAL_GROUP};
