//! Reading dynamic values (decoded with the node's own metadata) into connito's types, by field
//! name, so a runtime that adds fields still reads.

use subxt::dynamic::Value;
use subxt::ext::scale_value::{At, Composite, Primitive, ValueDef};

use crate::chain::{Axon, ChainError, NeuronInfo};

/// Values of a composite, named or not.
fn items(v: &Value) -> Vec<&Value> {
    match &v.value {
        ValueDef::Composite(Composite::Named(f)) => f.iter().map(|(_, x)| x).collect(),
        ValueDef::Composite(Composite::Unnamed(f)) => f.iter().collect(),
        _ => vec![],
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.at(name)
}

/// A number, through newtype wrappers (`AlphaCurrency(u64)`, compact) as the metadata has them.
pub(super) fn num(v: &Value) -> Option<u128> {
    if let Some(n) = v.as_u128() {
        return Some(n);
    }
    match items(v).as_slice() {
        [one] => num(one),
        _ => None,
    }
}

/// Bytes of a byte array or sequence, through wrappers.
pub(super) fn bytes(v: &Value) -> Option<Vec<u8>> {
    let its = items(v);
    if its.len() == 1 && num(its[0]).is_none() {
        return bytes(its[0]);
    }
    its.iter()
        .map(|x| match &x.value {
            ValueDef::Primitive(Primitive::U128(b)) => u8::try_from(*b).ok(),
            _ => None,
        })
        .collect()
}

fn account(v: &Value) -> Option<[u8; 32]> {
    bytes(v)?.try_into().ok()
}

fn list<T>(v: &Value, name: &str, f: impl Fn(&Value) -> Option<T>) -> Option<Vec<T>> {
    items(field(v, name)?).into_iter().map(f).collect()
}

pub(super) fn axon(v: &Value) -> Option<Axon> {
    let n = |name: &str| field(v, name).and_then(num);
    Some(Axon {
        block: n("block")? as u64,
        version: n("version")? as u32,
        ip: n("ip")?,
        port: n("port")? as u16,
        ip_type: n("ip_type")? as u8,
        protocol: n("protocol")? as u8,
        placeholder1: n("placeholder1")? as u8,
        placeholder2: n("placeholder2")? as u8,
    })
}

/// `Option<Metagraph>` of `SubnetInfoRuntimeApi_get_metagraph`: `None` (the outer option) when
/// the subnet does not exist; a missing or ill-typed field is a [`ChainError::Decode`].
pub fn metagraph_from_value(v: &Value) -> Option<Result<Vec<NeuronInfo>, ChainError>> {
    let ValueDef::Variant(var) = &v.value else {
        return Some(Err(ChainError::Decode(
            "get_metagraph: not an Option".into(),
        )));
    };
    let m = match var.name.as_str() {
        "None" => return None,
        _ => var.values.values().next()?,
    };
    Some(neurons(m).ok_or_else(|| {
        ChainError::Decode("get_metagraph: a per-uid field is missing or ill-typed".into())
    }))
}

fn proportion(x: u128) -> f64 {
    x as f64 / f64::from(u16::MAX)
}

fn neurons(m: &Value) -> Option<Vec<NeuronInfo>> {
    let hotkeys = list(m, "hotkeys", account)?;
    let coldkeys = list(m, "coldkeys", account)?;
    let axons = list(m, "axons", axon)?;
    let nums = |name: &str| list(m, name, num);
    let bools = |name: &str| list(m, name, Value::as_bool);
    let (active, permit) = (bools("active")?, bools("validator_permit")?);
    let (last, emission) = (nums("last_update")?, nums("emission")?);
    let (div, inc, cons) = (nums("dividends")?, nums("incentives")?, nums("consensus")?);
    let registered = nums("block_at_registration")?;
    let stake = nums("total_stake")?;
    let trust = nums("trust").unwrap_or_default();
    let n = hotkeys.len();
    let all = [
        coldkeys.len(),
        axons.len(),
        active.len(),
        permit.len(),
        last.len(),
        emission.len(),
        div.len(),
        inc.len(),
        cons.len(),
        registered.len(),
        stake.len(),
    ];
    if all.iter().any(|&l| l != n) {
        return None;
    }
    let rao = |x: u128| x as f64 / 1e9;
    Some(
        (0..n)
            .map(|i| NeuronInfo {
                uid: i as u16,
                hotkey: hotkeys[i],
                stake: rao(stake[i]),
                registered_at: registered[i] as u64,
                last_update: last[i] as u64,
                validator_permit: permit[i],
                active: active[i],
                consensus: proportion(cons[i]),
                incentive: proportion(inc[i]),
                dividends: proportion(div[i]),
                validator_trust: trust.get(i).copied().map_or(0.0, proportion),
                emission: rao(emission[i]),
                coldkey: Some(coldkeys[i]),
                axon: (axons[i].ip != 0).then_some(axons[i]),
            })
            .collect(),
    )
}

/// `Commitments.CommitmentOf` (`Registration { deposit, block, info: { fields } }`): the first
/// field's raw bytes and the block it was set at.
pub(super) fn commitment_from_value(v: &Value) -> Option<(Vec<u8>, u64)> {
    let block = num(field(v, "block")?)? as u64;
    let fields = items(field(field(v, "info")?, "fields")?);
    let first = match fields.first() {
        // A single-field newtype (BoundedVec) may wrap the sequence.
        Some(f) if items(f).len() == 1 && !matches!(f.value, ValueDef::Variant(_)) => items(f)[0],
        Some(f) => *f,
        None => return Some((vec![], block)),
    };
    let ValueDef::Variant(var) = &first.value else {
        return None;
    };
    if !var.name.starts_with("Raw") && var.name != "BigRaw" {
        return None;
    }
    let data = match var.values.values().next() {
        Some(x) => bytes(x)?,
        None => vec![],
    };
    Some((data, block))
}

/// A dispatch error, named by the runtime (`SubtensorModule::RevealTooEarly`), as connito's error:
/// the variants the daemons act on by name, else [`ChainError::Module`].
pub fn error_from_module(pallet: &str, error: &str) -> ChainError {
    use ChainError as E;
    match error {
        "HotKeyNotRegisteredInSubNet" => E::HotKeyNotRegisteredInSubNet,
        "HotKeyAlreadyRegisteredInSubNet" => E::HotKeyAlreadyRegisteredInSubNet,
        "NoNeuronIdAvailable" => E::NoNeuronIdAvailable,
        "DuplicateUids" => E::DuplicateUids,
        "UidVecContainInvalidOne" => E::UidVecContainInvalidOne,
        "WeightVecNotEqualSize" => E::WeightVecNotEqualSize,
        "NeuronNoValidatorPermit" => E::NeuronNoValidatorPermit,
        "CommitRevealEnabled" => E::CommitRevealEnabled,
        "CommitRevealDisabled" => E::CommitRevealDisabled,
        "TooManyUnrevealedCommits" => E::TooManyUnrevealedCommits,
        "NoWeightsCommitFound" => E::NoWeightsCommitFound,
        "ExpiredWeightCommit" => E::ExpiredWeightCommit,
        "RevealTooEarly" => E::RevealTooEarly,
        "InvalidRevealCommitHashNotMatch" => E::InvalidRevealCommitHashNotMatch,
        "NotEnoughBalanceToStake" => E::NotEnoughBalanceToStake,
        "AmountTooLow" => E::AmountTooLow,
        "HotKeyAccountNotExists" => E::HotKeyAccountNotExists,
        "HotKeyNotRegisteredInNetwork" => E::HotKeyNotRegisteredInNetwork,
        "InvalidIpAddress" => E::InvalidIpAddress,
        _ => E::Module {
            pallet: pallet.to_string(),
            error: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_errors_map_by_name() {
        assert_eq!(
            error_from_module("SubtensorModule", "RevealTooEarly"),
            ChainError::RevealTooEarly
        );
        let other = error_from_module("SubtensorModule", "TxRateLimitExceeded");
        assert_eq!(other.name(), "TxRateLimitExceeded");
        assert_eq!(other.kind(), crate::chain::ErrorKind::Final);
    }

    #[test]
    fn commitment_values_decode() {
        let raw = Value::unnamed_variant("Raw5", [Value::from_bytes(b"hello")]);
        let v = Value::named_composite([
            ("deposit", Value::u128(0)),
            ("block", Value::u128(42)),
            (
                "info",
                Value::named_composite([("fields", Value::unnamed_composite([raw]))]),
            ),
        ]);
        assert_eq!(commitment_from_value(&v), Some((b"hello".to_vec(), 42)));
        let none = Value::named_composite([
            ("block", Value::u128(1)),
            (
                "info",
                Value::named_composite([("fields", Value::unnamed_composite([]))]),
            ),
        ]);
        assert_eq!(commitment_from_value(&none), Some((vec![], 1)));
    }

    #[test]
    fn a_missing_subnet_is_none_and_a_bad_metagraph_an_error() {
        assert!(metagraph_from_value(&Value::unnamed_variant("None", [])).is_none());
        let bad = Value::unnamed_variant(
            "Some",
            [Value::named_composite([("hotkeys", Value::u128(1))])],
        );
        assert!(matches!(
            metagraph_from_value(&bad),
            Some(Err(ChainError::Decode(_)))
        ));
    }
}
