//! Which wire profile a node speaks, and the rules that pick it and classify committers.
//!
//! - [`ProtocolKind::default_for`]: `sn102` on finney and test for netuid 102 (the live subnet),
//!   `connito` everywhere else (localnet, devnet, any other netuid or a node given by URL).
//! - [`committer_role`]: in the `sn102` profile a hotkey's commitment is a validator's only when
//!   the hotkey is whitelisted and its weights are fresh (set within one cycle of the block read),
//!   otherwise a miner's (the reference's role gate, `connito/shared/chain.py`).

use std::collections::BTreeSet;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The live subnet's netuid.
pub const SN102_NETUID: u16 = 102;

/// A wire profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolKind {
    /// connito's own hardened protocol: signed manifests, binding hashes, canonical f32 shards.
    Connito,
    /// The live SN102 subnet's formats (Connito-AI/Connito).
    Sn102,
}

/// A `--protocol` or `node.protocol` value that names no profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol {0:?}: expected \"sn102\" or \"connito\"")]
pub struct UnknownProtocol(pub String);

impl FromStr for ProtocolKind {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "connito" => Ok(Self::Connito),
            "sn102" => Ok(Self::Sn102),
            other => Err(UnknownProtocol(other.to_string())),
        }
    }
}

impl ProtocolKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Connito => "connito",
            Self::Sn102 => "sn102",
        }
    }

    /// The profile a node speaks when its config names none: the live subnet's on the public
    /// networks for netuid 102, connito's elsewhere. `network` is the named network (`None` when
    /// the node is given by URL, which is never the live subnet by default).
    pub fn default_for(network: Option<&str>, netuid: u16) -> Self {
        match (network, netuid) {
            (Some("finney" | "test"), SN102_NETUID) => Self::Sn102,
            _ => Self::Connito,
        }
    }
}

/// What a hotkey's commitment is taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitterRole {
    Validator,
    Miner,
}

/// The reference's role gate: a validator iff `hotkey` is in `whitelist` and its weights were
/// set at most `max_weight_age` blocks before `block` (`block - last_update <= max_weight_age`).
pub fn committer_role(
    hotkey: &[u8; 32],
    whitelist: &BTreeSet<[u8; 32]>,
    last_update: u64,
    block: u64,
    max_weight_age: u64,
) -> CommitterRole {
    let fresh = block.saturating_sub(last_update) <= max_weight_age;
    match whitelist.contains(hotkey) && fresh {
        true => CommitterRole::Validator,
        false => CommitterRole::Miner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_table() {
        let rows = [
            (Some("finney"), 102, ProtocolKind::Sn102),
            (Some("test"), 102, ProtocolKind::Sn102),
            (Some("finney"), 7, ProtocolKind::Connito),
            (Some("test"), 1, ProtocolKind::Connito),
            (Some("local"), 102, ProtocolKind::Connito),
            (Some("localnet"), 102, ProtocolKind::Connito),
            (None, 102, ProtocolKind::Connito),
            (None, 1, ProtocolKind::Connito),
        ];
        for (network, netuid, want) in rows {
            assert_eq!(
                ProtocolKind::default_for(network, netuid),
                want,
                "{network:?} {netuid}"
            );
        }
    }

    #[test]
    fn names_parse_and_bad_names_are_typed_errors() {
        for k in [ProtocolKind::Connito, ProtocolKind::Sn102] {
            assert_eq!(k.name().parse::<ProtocolKind>(), Ok(k));
            let toml = format!("p = \"{}\"", k.name());
            #[derive(Deserialize)]
            struct T {
                p: ProtocolKind,
            }
            assert_eq!(toml::from_str::<T>(&toml).unwrap().p, k);
        }
        for bad in ["", "SN102", "bittensor", "connito "] {
            assert_eq!(
                bad.parse::<ProtocolKind>(),
                Err(UnknownProtocol(bad.to_string()))
            );
        }
    }

    #[test]
    fn role_gate_table() {
        let (v, other) = ([1u8; 32], [2u8; 32]);
        let wl = BTreeSet::from([v]);
        let rows = [
            (v, 1000, 1000, CommitterRole::Validator),
            (v, 500, 1000, CommitterRole::Validator), // exactly max age
            (v, 499, 1000, CommitterRole::Miner),     // stale weights
            (v, 0, 0, CommitterRole::Validator),
            (v, 1200, 1000, CommitterRole::Validator), // set after the block read: fresh
            (other, 1000, 1000, CommitterRole::Miner), // not whitelisted
        ];
        for (hk, last, block, want) in rows {
            assert_eq!(committer_role(&hk, &wl, last, block, 500), want);
        }
        assert_eq!(
            committer_role(&v, &BTreeSet::new(), 1000, 1000, 500),
            CommitterRole::Miner
        );
    }
}
