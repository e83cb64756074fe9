//! connito: the domain library of the SN102 validator/miner runtime.
//!
//! Everything here is pure and deterministic: time, seeds and data come in as arguments.
//! The actors that hold state and talk live in `actors/` (the `connito` binary).

pub mod chain;
pub mod config;
pub mod consensus;
pub mod daemon_config;
pub mod data;
pub mod genesis;
pub mod merge;
pub mod model;
pub mod phase;
pub mod pol;
pub mod protocol;
pub mod rng;
pub mod serde_f64;
pub mod store;
pub mod submission;
pub mod tensors;
pub mod train;
pub mod wallet;
