//! Substrate as finney speaks it, used by both the dev chain and the subxt client: runtime
//! metadata, the extrinsic format, dispatch outcomes, storage hashers and SCALE checks.

pub mod dispatch;
pub mod extrinsic;
pub mod hashing;
pub mod metadata;
pub mod metadata_today;
pub mod scale_check;
