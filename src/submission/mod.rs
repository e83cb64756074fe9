//! Miner submissions: who signs them, what is committed on chain, and how a validator checks a
//! downloaded expert shard before scoring it.
//!
//! - [`keys`]: sr25519 hotkeys (sign, verify, SS58 addresses).
//! - [`location`]: the committed location URL, parsed and checked, and which addresses a fetch may
//!   connect to.
//! - the signed manifest and the commitments are the wire profile's ([`crate::protocol::connito`]),
//!   re-exported here.
//! - [`validate`]: the ordered checks a shard must pass, each failure a typed [`Rejection`].

pub mod check;
pub mod keys;
pub mod location;
pub mod validate;
pub mod verdict;

pub use crate::protocol::connito::{
    Commitment, CommitmentError, MAX_COMMITMENT_BYTES, Manifest, SUBMISSION_DOMAIN, SignedManifest,
};
pub use check::{Checked, Expected, Refused, check_submission};
pub use keys::{Hotkey, SUBSTRATE_SS58_PREFIX, ss58, verify};
pub use location::{
    AddressPolicy, Location, LocationError, MAX_LOCATION_LEN, check_addr, parse_location,
};
pub use validate::{Rejection, ShardSpec, validate_shard};
pub use verdict::Verdict;
