//! The end-to-end tests, one test crate (linked once): real daemons, real servers and real
//! clients on loopback, one module per concern. Run one module with
//! `cargo test --test it localnet::`, one test with `cargo test --test it -- --exact NAME`.

mod common;

mod chain_client;
mod daemons;
mod devnet;
mod devnet_pjs;
mod devnet_sdk;
mod dsv2_fixtures;
mod hostile;
mod hostile_validator;
mod layers;
mod live;
mod localnet;
mod sn102_cli;
mod train_resume;
mod wallet_sdk;
