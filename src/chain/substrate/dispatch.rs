//! Dispatch outcomes as finney's runtime reports them: `DispatchError` (with module errors
//! indexed by the shipped metadata) and the `System.Events` records of a block.

use parity_scale_codec::{Compact, Encode};

use crate::chain::ChainError;
use crate::chain::substrate::metadata::ChainMetadata;

/// `sp_runtime::TokenError` variants devnet produces (with their spec-365 indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    FundsUnavailable = 0,
    BelowMinimum = 2,
    NotExpendable = 8,
}

/// `sp_runtime::DispatchError`, the variants devnet produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchError {
    Other,
    CannotLookup,
    /// A pallet's error, by names that the metadata resolves to indices.
    Module {
        pallet: &'static str,
        error: &'static str,
    },
    Token(TokenError),
}

impl DispatchError {
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            DispatchError::Other => vec![0],
            DispatchError::CannotLookup => vec![1],
            DispatchError::Module { pallet, error } => {
                match ChainMetadata::finney().error_index(pallet, error) {
                    Some((p, e)) => vec![3, p, e, 0, 0, 0],
                    // Unreachable for the names below (a test resolves every one).
                    None => vec![0],
                }
            }
            DispatchError::Token(t) => vec![7, t as u8],
        }
    }
}

fn subtensor(error: &'static str) -> DispatchError {
    DispatchError::Module {
        pallet: "SubtensorModule",
        error,
    }
}

impl From<&ChainError> for DispatchError {
    /// The error the chain would report for a rejected call. Names follow spec 365
    /// (`SubnetworkDoesNotExist` is `SubnetNotExists` there).
    fn from(e: &ChainError) -> Self {
        use ChainError as C;
        let commitments = |error| DispatchError::Module {
            pallet: "Commitments",
            error,
        };
        match e {
            C::HotKeyNotRegisteredInSubNet => subtensor("HotKeyNotRegisteredInSubNet"),
            C::HotKeyAlreadyRegisteredInSubNet => subtensor("HotKeyAlreadyRegisteredInSubNet"),
            C::SubnetworkDoesNotExist(_) => subtensor("SubnetNotExists"),
            C::NoNeuronIdAvailable => subtensor("NoNeuronIdAvailable"),
            C::SettingWeightsTooFast { .. } => subtensor("SettingWeightsTooFast"),
            C::IncorrectWeightVersionKey { .. } => subtensor("IncorrectWeightVersionKey"),
            C::DuplicateUids => subtensor("DuplicateUids"),
            C::UidVecContainInvalidOne => subtensor("UidVecContainInvalidOne"),
            C::WeightVecNotEqualSize => subtensor("WeightVecNotEqualSize"),
            C::NeuronNoValidatorPermit => subtensor("NeuronNoValidatorPermit"),
            C::CommitRevealEnabled => subtensor("CommitRevealEnabled"),
            C::CommitRevealDisabled => subtensor("CommitRevealDisabled"),
            C::CommittingWeightsTooFast { .. } => subtensor("CommittingWeightsTooFast"),
            C::TooManyUnrevealedCommits => subtensor("TooManyUnrevealedCommits"),
            C::NoWeightsCommitFound => subtensor("NoWeightsCommitFound"),
            C::ExpiredWeightCommit => subtensor("ExpiredWeightCommit"),
            C::RevealTooEarly => subtensor("RevealTooEarly"),
            C::InvalidRevealCommitHashNotMatch => subtensor("InvalidRevealCommitHashNotMatch"),
            C::WeightVecLengthIsLow { .. } => subtensor("WeightVecLengthIsLow"),
            C::NotEnoughBalanceToStake => subtensor("NotEnoughBalanceToStake"),
            C::AmountTooLow => subtensor("AmountTooLow"),
            C::HotKeyAccountNotExists => subtensor("HotKeyAccountNotExists"),
            C::HotKeyNotRegisteredInNetwork => subtensor("HotKeyNotRegisteredInNetwork"),
            C::InvalidIpType(_) => subtensor("InvalidIpType"),
            C::InvalidIpAddress => subtensor("InvalidIpAddress"),
            // On chain a field holds at most 128 bytes (or `BigRaw`'s bound); the per-epoch
            // space is the limit a client meets.
            C::CommitmentTooLarge { .. } | C::SpaceLimitExceeded { .. } => {
                commitments("SpaceLimitExceeded")
            }
            C::TooManyFieldsInCommitmentInfo(_) => commitments("TooManyFieldsInCommitmentInfo"),
            C::FundsUnavailable => DispatchError::Token(TokenError::FundsUnavailable),
            C::BelowMinimum => DispatchError::Token(TokenError::BelowMinimum),
            C::NotExpendable => DispatchError::Token(TokenError::NotExpendable),
            C::CannotLookup => DispatchError::CannotLookup,
            C::Unsupported(_)
            | C::UnknownBlock(_)
            | C::Storage(_)
            | C::Connection(_)
            | C::OutcomeUnknown(_)
            | C::Module { .. }
            | C::Invalid { .. }
            | C::Decode(_) => DispatchError::Other,
        }
    }
}

/// A pallet event an extrinsic emits, recorded before its `System.ExtrinsicSuccess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `Balances.Transfer { from, to, amount }`.
    Transfer {
        from: [u8; 32],
        to: [u8; 32],
        amount: u64,
    },
}

impl Event {
    /// `(pallet index, event index)` and the SCALE-encoded fields.
    fn encode(&self) -> ((u8, u8), Vec<u8>) {
        let m = ChainMetadata::finney();
        match self {
            Event::Transfer { from, to, amount } => {
                let index = m.event_index("Balances", "Transfer").expect("finney");
                (index, [&from[..], &to[..], &amount.to_le_bytes()].concat())
            }
        }
    }
}

/// One extrinsic's outcome and the events it emitted (kept only for a success, as a failed
/// extrinsic's changes are rolled back).
pub type Applied = (Result<(), DispatchError>, Vec<Event>);

/// `frame_system::Phase::ApplyExtrinsic(index)` + `System.ExtrinsicSuccess` or
/// `System.ExtrinsicFailed`, one record per extrinsic of a block, encoded as the value of
/// `System.Events` (`Vec<EventRecord>`). Dispatch info: weight 0, class `Normal`, `Pays::No`
/// (devnet charges no fees).
pub fn encode_events(outcomes: &[Result<(), DispatchError>]) -> Vec<u8> {
    let applied: Vec<Applied> = outcomes.iter().map(|o| (*o, Vec::new())).collect();
    encode_block_events(&applied)
}

/// [`encode_events`] with each successful extrinsic's own events (in `ApplyExtrinsic` phase)
/// before its `ExtrinsicSuccess`, as a runtime records them.
pub fn encode_block_events(applied: &[Applied]) -> Vec<u8> {
    let m = ChainMetadata::finney();
    let success = m.event_index("System", "ExtrinsicSuccess").expect("finney");
    let failed = m.event_index("System", "ExtrinsicFailed").expect("finney");
    let records: usize = applied
        .iter()
        .map(|(o, ev)| 1 + if o.is_ok() { ev.len() } else { 0 })
        .sum();
    let mut out = Compact(records as u32).encode();
    let phase = |out: &mut Vec<u8>, i: usize| {
        out.push(0); // Phase::ApplyExtrinsic
        out.extend((i as u32).encode());
    };
    for (i, (o, events)) in applied.iter().enumerate() {
        if o.is_ok() {
            for e in events {
                let ((p, v), fields) = e.encode();
                phase(&mut out, i);
                out.extend([p, v]);
                out.extend(fields);
                out.push(0); // no topics
            }
        }
        phase(&mut out, i);
        let (p, v) = if o.is_ok() { success } else { failed };
        out.extend([p, v]);
        if let Err(e) = o {
            out.extend(e.encode());
        }
        // DispatchEventInfo { weight: { ref_time: 0, proof_size: 0 }, class: Normal, pays: No }
        out.extend([0, 0, 0, 1]);
        out.push(0); // no topics
    }
    out
}

/// Each extrinsic's outcome in an events blob made by [`encode_block_events`]: `Err` holds the
/// encoded `DispatchError`. `None` if the blob is not one.
pub fn outcomes(events: &[u8]) -> Option<Vec<Result<(), Vec<u8>>>> {
    use parity_scale_codec::Decode;
    let m = ChainMetadata::finney();
    let success = m.event_index("System", "ExtrinsicSuccess")?;
    let failed = m.event_index("System", "ExtrinsicFailed")?;
    let transfer = m.event_index("Balances", "Transfer")?;
    let mut input = events;
    let n = Compact::<u32>::decode(&mut input).ok()?.0;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (head, rest) = input.split_at_checked(7)?; // phase, index, pallet, variant
        let index = (head[5], head[6]);
        let len = match index {
            i if i == success => 0,
            i if i == transfer => 32 + 32 + 8,
            i if i == failed => match rest.first()? {
                3 => 6,
                7 => 2,
                _ => 1,
            },
            _ => return None,
        };
        let fields = rest.get(..len)?.to_vec();
        input = if index == transfer {
            rest.get(len + 1..)? // no topics
        } else {
            rest.get(len + 5..)? // dispatch info (4 bytes) and no topics
        };
        match index {
            i if i == success => out.push(Ok(())),
            i if i == failed => out.push(Err(fields)),
            _ => {}
        }
    }
    input.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_errors() -> Vec<ChainError> {
        use ChainError as C;
        vec![
            C::HotKeyNotRegisteredInSubNet,
            C::HotKeyAlreadyRegisteredInSubNet,
            C::SubnetworkDoesNotExist(1),
            C::NoNeuronIdAvailable,
            C::SettingWeightsTooFast { blocks_left: 1 },
            C::IncorrectWeightVersionKey { chain: 1, given: 0 },
            C::DuplicateUids,
            C::UidVecContainInvalidOne,
            C::WeightVecNotEqualSize,
            C::NeuronNoValidatorPermit,
            C::CommitRevealEnabled,
            C::CommitRevealDisabled,
            C::CommittingWeightsTooFast { blocks_left: 1 },
            C::TooManyUnrevealedCommits,
            C::NoWeightsCommitFound,
            C::ExpiredWeightCommit,
            C::RevealTooEarly,
            C::InvalidRevealCommitHashNotMatch,
            C::WeightVecLengthIsLow { len: 0, min: 1 },
            C::NotEnoughBalanceToStake,
            C::AmountTooLow,
            C::HotKeyAccountNotExists,
            C::HotKeyNotRegisteredInNetwork,
            C::InvalidIpType(5),
            C::InvalidIpAddress,
            C::CommitmentTooLarge { len: 1, max: 0 },
            C::SpaceLimitExceeded {
                used: 0,
                requested: 1,
                limit: 0,
            },
            C::TooManyFieldsInCommitmentInfo(2),
        ]
    }

    #[test]
    fn every_module_error_exists_in_finney() {
        let m = ChainMetadata::finney();
        for e in all_errors() {
            let DispatchError::Module { pallet, error } = DispatchError::from(&e) else {
                panic!("{e} is not a module error");
            };
            let (p, i) = m
                .error_index(pallet, error)
                .unwrap_or_else(|| panic!("{e}"));
            assert_eq!(DispatchError::from(&e).encode(), vec![3, p, i, 0, 0, 0]);
        }
    }

    #[test]
    fn known_indices() {
        // SubnetNotExists = (7, 73), as an SDK trace against finney's metadata showed.
        let e = DispatchError::from(&ChainError::SubnetworkDoesNotExist(9));
        assert_eq!(e.encode(), vec![3, 7, 73, 0, 0, 0]);
        let t = DispatchError::from(&ChainError::FundsUnavailable);
        assert_eq!(t.encode(), vec![7, 0]);
    }

    #[test]
    fn events_blob_layout() {
        let blob = encode_events(&[Ok(()), Err(DispatchError::Other)]);
        let want = [
            vec![8],
            vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
            vec![0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
        ]
        .concat();
        assert_eq!(blob, want);
        assert_eq!(encode_events(&[]), vec![0]);
        let module = DispatchError::from(&ChainError::RevealTooEarly);
        let token = DispatchError::Token(TokenError::FundsUnavailable);
        let mixed = encode_events(&[Ok(()), Err(module), Err(token), Ok(())]);
        let want = vec![Ok(()), Err(module.encode()), Err(vec![7, 0]), Ok(())];
        assert_eq!(outcomes(&mixed), Some(want));
        assert_eq!(outcomes(&mixed[..mixed.len() - 1]), None);
        assert_eq!(outcomes(&[]), None);
    }

    #[test]
    fn a_transfer_event_precedes_its_success_and_is_typed_as_finneys() {
        let m = ChainMetadata::finney();
        let transfer = Event::Transfer {
            from: [1; 32],
            to: [2; 32],
            amount: 5,
        };
        let blob = encode_block_events(&[
            (Ok(()), vec![transfer]),
            (Err(DispatchError::Other), vec![transfer]),
        ]);
        // Three records: the transfer, its success, and the failure (whose events are dropped).
        assert_eq!(blob[0], 3 << 2);
        let (p, v) = m.event_index("Balances", "Transfer").unwrap();
        let want = [vec![0, 0, 0, 0, 0, p, v], vec![1; 32], vec![2; 32]].concat();
        assert_eq!(&blob[1..72], &want[..]);
        assert_eq!(&blob[72..81], &[5, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            outcomes(&blob),
            Some(vec![Ok(()), Err(DispatchError::Other.encode())])
        );
        let (_, entry) = m.storage("System", "Events").unwrap();
        let frame_metadata::v14::StorageEntryType::Plain(ty) = &entry.ty else {
            panic!("System.Events is a plain item");
        };
        crate::chain::substrate::scale_check::check_exact(m.types(), ty.id, &blob).unwrap();
    }
}
