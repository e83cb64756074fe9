//! The calls devnet executes, decoded from a call's bytes with finney's indices and argument
//! types (spec 365). Indices are looked up in the shipped metadata by name, so they cannot drift
//! from it.

use parity_scale_codec::{Compact, Decode, Encode};

use crate::chain::substrate::extrinsic::{ExtrinsicError, InvalidTransaction};
use crate::chain::substrate::metadata::ChainMetadata;
use crate::chain::{Axon, Reveal};

/// Every `(pallet, call)` devnet executes.
pub const SUPPORTED_CALLS: &[(&str, &str)] = &[
    ("Balances", "transfer_allow_death"),
    ("Balances", "transfer_keep_alive"),
    ("SubtensorModule", "burned_register"),
    ("SubtensorModule", "add_stake"),
    ("SubtensorModule", "serve_axon"),
    ("SubtensorModule", "set_weights"),
    ("SubtensorModule", "commit_weights"),
    ("SubtensorModule", "reveal_weights"),
    ("Commitments", "set_commitment"),
];

/// A decoded call devnet can execute. Amounts are in rao (1 TAO = 10^9 rao).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevCall {
    Transfer {
        /// `None`: a `MultiAddress` other than `Id` / `Address32` (devnet has no account indices).
        dest: Option<[u8; 32]>,
        value: u64,
        keep_alive: bool,
    },
    BurnedRegister {
        netuid: u16,
        hotkey: [u8; 32],
    },
    AddStake {
        hotkey: [u8; 32],
        netuid: u16,
        amount: u64,
    },
    ServeAxon {
        netuid: u16,
        axon: Axon,
    },
    SetWeights {
        netuid: u16,
        dests: Vec<u16>,
        weights: Vec<u16>,
        version_key: u64,
    },
    CommitWeights {
        netuid: u16,
        hash: [u8; 32],
    },
    RevealWeights {
        netuid: u16,
        reveal: Reveal,
    },
    SetCommitment {
        netuid: u16,
        fields: Vec<CommitmentField>,
    },
}

/// One field of `pallet_commitments::CommitmentInfo` (`Data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitmentField {
    /// `Raw0..Raw128` and `BigRaw`: bytes devnet stores.
    Raw(Vec<u8>),
    /// Any other variant (hashes, timelock-encrypted data, the reset flag), by its index.
    Other(u8),
}

/// `(pallet, call)` names of the call at the start of `call`, per today's metadata (spec 365's
/// calls keep their indices in it).
pub fn call_name(call: &[u8]) -> Option<(&'static str, &'static str)> {
    let m = ChainMetadata::today();
    let (&p, &c) = (call.first()?, call.get(1)?);
    let pallet = m.v16().pallets.iter().find(|x| x.index == p)?;
    let ty = pallet.calls.as_ref()?.ty.id;
    let scale_info::TypeDef::Variant(v) = &m.types().resolve(ty)?.type_def else {
        return None;
    };
    let var = v.variants.iter().find(|x| x.index == c)?;
    Some((pallet.name.as_str(), var.name.as_str()))
}

/// A call's bytes, as a client composes them: finney's `(pallet, call)` indices, then `args`
/// SCALE-encoded. `None` if finney has no such call.
pub fn encode_call(pallet: &str, name: &str, args: impl Encode) -> Option<Vec<u8>> {
    let (p, c) = ChainMetadata::today().call_index(pallet, name)?;
    let mut out = vec![p, c];
    args.encode_to(&mut out);
    Some(out)
}

fn bad(what: &str) -> ExtrinsicError {
    ExtrinsicError::BadFormat(format!("could not decode the arguments of {what}"))
}

/// Decodes `T` from all of `args` (trailing bytes are an error, as for a node).
fn args<T: Decode>(mut args: &[u8], what: &str) -> Result<T, ExtrinsicError> {
    let v = T::decode(&mut args).map_err(|_| bad(what))?;
    if !args.is_empty() {
        return Err(bad(what));
    }
    Ok(v)
}

fn multi_address(input: &mut &[u8]) -> Result<Option<[u8; 32]>, parity_scale_codec::Error> {
    Ok(match u8::decode(input)? {
        0 | 3 => Some(<[u8; 32]>::decode(input)?),
        1 => {
            Compact::<u32>::decode(input)?;
            None
        }
        2 => {
            Vec::<u8>::decode(input)?;
            None
        }
        4 => {
            <[u8; 20]>::decode(input)?;
            None
        }
        _ => return Err("MultiAddress variant".into()),
    })
}

fn transfer(mut input: &[u8], keep_alive: bool) -> Result<DevCall, ExtrinsicError> {
    let what = "Balances transfer";
    let dest = multi_address(&mut input).map_err(|_| bad(what))?;
    let value = args::<Compact<u64>>(input, what)?.0;
    Ok(DevCall::Transfer {
        dest,
        value,
        keep_alive,
    })
}

fn commitment_field(input: &mut &[u8]) -> Result<CommitmentField, parity_scale_codec::Error> {
    let tag = u8::decode(input)?;
    Ok(match tag {
        1..=129 => {
            let n = usize::from(tag - 1);
            if input.len() < n {
                return Err("Raw data".into());
            }
            let (data, rest) = input.split_at(n);
            *input = rest;
            CommitmentField::Raw(data.to_vec())
        }
        136 => CommitmentField::Raw(Vec::<u8>::decode(input)?),
        0 | 135 => CommitmentField::Other(tag),
        130..=133 => {
            <[u8; 32]>::decode(input)?;
            CommitmentField::Other(tag)
        }
        134 => {
            Vec::<u8>::decode(input)?;
            u64::decode(input)?;
            CommitmentField::Other(tag)
        }
        _ => return Err("Data variant".into()),
    })
}

fn set_commitment(mut input: &[u8]) -> Result<DevCall, ExtrinsicError> {
    let what = "Commitments.set_commitment";
    let netuid = u16::decode(&mut input).map_err(|_| bad(what))?;
    let n = Compact::<u32>::decode(&mut input).map_err(|_| bad(what))?.0;
    // `MaxFields` bounds the list on chain; a count past the bytes left cannot be real.
    if n as usize > input.len() {
        return Err(bad(what));
    }
    let fields = (0..n)
        .map(|_| commitment_field(&mut input))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad(what))?;
    if !input.is_empty() {
        return Err(bad(what));
    }
    Ok(DevCall::SetCommitment { netuid, fields })
}

fn subtensor(name: &str, a: &[u8]) -> Result<DevCall, ExtrinsicError> {
    let what = format!("SubtensorModule.{name}");
    Ok(match name {
        "burned_register" => {
            let (netuid, hotkey) = args(a, &what)?;
            DevCall::BurnedRegister { netuid, hotkey }
        }
        "add_stake" => {
            let (hotkey, netuid, amount) = args(a, &what)?;
            DevCall::AddStake {
                hotkey,
                netuid,
                amount,
            }
        }
        "serve_axon" => {
            let (netuid, version, ip, port, ip_type, protocol, placeholder1, placeholder2) =
                args::<(u16, u32, u128, u16, u8, u8, u8, u8)>(a, &what)?;
            let axon = Axon {
                block: 0,
                version,
                ip,
                port,
                ip_type,
                protocol,
                placeholder1,
                placeholder2,
            };
            DevCall::ServeAxon { netuid, axon }
        }
        "set_weights" => {
            let (netuid, dests, weights, version_key) = args(a, &what)?;
            DevCall::SetWeights {
                netuid,
                dests,
                weights,
                version_key,
            }
        }
        "commit_weights" => {
            let (netuid, hash) = args(a, &what)?;
            DevCall::CommitWeights { netuid, hash }
        }
        "reveal_weights" => {
            let (netuid, uids, values, salt, version_key) = args(a, &what)?;
            let reveal = Reveal {
                uids,
                values,
                salt,
                version_key,
            };
            DevCall::RevealWeights { netuid, reveal }
        }
        _ => return Err(ExtrinsicError::Invalid(InvalidTransaction::Call)),
    })
}

/// Decodes a call. A call finney does not have is a format error; one it has but devnet does not
/// execute is refused as `InvalidTransaction::Call` (see [`SUPPORTED_CALLS`]).
pub fn decode_call(call: &[u8]) -> Result<DevCall, ExtrinsicError> {
    let (pallet, name) = call_name(call).ok_or_else(|| {
        ExtrinsicError::BadFormat(format!(
            "no call {:?} in the runtime",
            call.get(..2).unwrap_or(call)
        ))
    })?;
    let a = &call[2..];
    match (pallet, name) {
        ("Balances", "transfer_allow_death") => transfer(a, false),
        ("Balances", "transfer_keep_alive") => transfer(a, true),
        ("Commitments", "set_commitment") => set_commitment(a),
        ("SubtensorModule", n) => subtensor(n, a),
        _ => Err(ExtrinsicError::Invalid(InvalidTransaction::Call)),
    }
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
