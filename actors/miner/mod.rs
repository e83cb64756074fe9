//! The miner daemon's actors: Trainer (burn training of its expert group) and Publisher (sign,
//! commit, serve the shard), and beside them localnet's adversary strategies.

pub mod adversary;
pub mod publisher;
pub mod trainer;
