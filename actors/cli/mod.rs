//! The command line: one file per subcommand (`main.rs` parses the flags and calls them), the
//! benchmarks beside them.

pub mod bench;
pub mod bench_devnet;
pub mod bench_pol;
pub mod chain;
pub mod daemons;
pub mod localnet;
pub mod model;
pub mod report;
pub mod submission;
pub mod submission_sn102;
pub mod train;
pub mod wallet;
