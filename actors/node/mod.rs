//! The runtime both daemons use: supervision with a restart policy, the context every actor
//! shares, ChainSync (the chain connection and the block tick), metrics, the HTTP server and
//! fetch, and the compute device. Nothing here knows a validator or a miner actor.

pub mod backend;
pub mod chain_sync;
pub mod context;
pub mod http;
pub mod metrics;
pub mod supervisor;
