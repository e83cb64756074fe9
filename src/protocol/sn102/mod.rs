//! The `sn102` profile: the live subnet's wire formats (Connito-AI/Connito, mid-2026), byte for
//! byte: the shard file ([`shard`]), its content hash ([`hash`]), the hotkey's signature of it
//! ([`signature`]), the JSON commitments ([`commitment`]), the group's expert assignment
//! ([`assignment`]) and the restricted reader of legacy `.pt` shards ([`pt`]).

pub mod assignment;
pub mod commitment;
pub mod hash;
pub mod pt;
mod pt_shard;
pub mod shard;
pub mod signature;
pub mod verify;
pub mod wire;

pub use wire::Sn102;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fixtures_tests;
