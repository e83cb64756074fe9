//! Wire profiles: what a miner writes and a validator reads, byte for byte. Each profile is one
//! folder: [`connito`] (ours, hardened: a signed manifest whose binding hash covers hotkey, group,
//! cycle and model; canonical f32 shards) and [`sn102`] (the live subnet's: its shard file,
//! content hash, signature and JSON commitments). The daemons, the chain client and the model are
//! shared; only these codecs differ.

pub mod connito;
pub mod profile;
pub mod sn102;
pub mod wire;

pub use profile::ProtocolKind;
pub use wire::Wire;
