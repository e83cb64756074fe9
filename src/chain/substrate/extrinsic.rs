//! Extrinsics as finney's runtime (spec 365) encodes them: `UncheckedExtrinsic` version 4,
//! `MultiAddress` signer, `MultiSignature`, and Subtensor's transaction extensions
//! (`../shared/PROTOCOL.md` §6). Pure: decoding, the signed payload, signature checks and the
//! errors a node answers with. Which nonce and birth block are acceptable is the chain's
//! business (`DevChain::submit_extrinsic`).
//!
//! Spec 365's extensions, in order, and what each adds to the extrinsic ("extra") and to the
//! signed payload only ("implicit"):
//!
//! | extension | extra | implicit |
//! |---|---|---|
//! | CheckNonZeroSender, CheckWeight, SudoTransactionExtension, SubtensorTransactionExtension, DrandPriority | — | — |
//! | CheckSpecVersion / CheckTxVersion | — | u32 each |
//! | CheckGenesis | — | genesis hash |
//! | CheckMortality | era | birth block hash |
//! | CheckNonce | `Compact<u32>` | — |
//! | ChargeTransactionPayment | `Compact<u64>` tip | — |
//! | CheckMetadataHash | mode `u8` | `Option<[u8; 32]>` |

use parity_scale_codec::{Compact, Decode, Encode};

use crate::chain::substrate::hashing::blake2_256;
use crate::submission::Hotkey;
use crate::submission::keys::verify;
use crate::tensors::Hash32;

/// `UncheckedExtrinsic` version 4 with the "signed" bit.
const SIGNED_V4: u8 = 0x84;
const UNSIGNED_V4: u8 = 0x04;
/// Largest extrinsic accepted (finney's block length is 5 MiB; no single call is near it).
pub const MAX_EXTRINSIC_BYTES: usize = 1 << 20;

/// `CheckMortality`'s era.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Immortal,
    /// Valid for `period` blocks (a power of two, 4..=65536) from the block whose number is
    /// `phase` modulo `period`.
    Mortal {
        period: u64,
        phase: u64,
    },
}

impl Era {
    /// The era a client signs at block `current` for `period` blocks (Substrate's `Era::mortal`).
    pub fn mortal(period: u64, current: u64) -> Self {
        let period = period.clamp(4, 1 << 16).next_power_of_two();
        let phase = current % period;
        let quantize = (period >> 12).max(1);
        Era::Mortal {
            period,
            phase: phase / quantize * quantize,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Era::Immortal => vec![0],
            Era::Mortal { period, phase } => {
                let quantize = (period >> 12).max(1);
                let low = u64::from(period.trailing_zeros().saturating_sub(1)).clamp(1, 15);
                let v = low | ((phase / quantize) << 4);
                (v as u16).to_le_bytes().to_vec()
            }
        }
    }

    pub fn decode(input: &mut &[u8]) -> Result<Self, ExtrinsicError> {
        let first = take(input, 1)?[0];
        if first == 0 {
            return Ok(Era::Immortal);
        }
        let v = u64::from(first) | (u64::from(take(input, 1)?[0]) << 8);
        let period = 2_u64 << (v % 16);
        let quantize = (period >> 12).max(1);
        let phase = (v >> 4) * quantize;
        if period >= 4 && phase < period {
            Ok(Era::Mortal { period, phase })
        } else {
            Err(ExtrinsicError::BadFormat("invalid era".into()))
        }
    }

    /// The block the era starts at, seen from block `current` (the block being built).
    pub fn birth(&self, current: u64) -> u64 {
        match *self {
            Era::Immortal => 0,
            Era::Mortal { period, phase } => {
                let period = period.max(1);
                (current.max(phase) - phase) / period * period + phase
            }
        }
    }
}

/// The signature part of a signed extrinsic, with its extensions' "extra" data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub signer: [u8; 32],
    pub signature: [u8; 64],
    pub era: Era,
    pub nonce: u32,
    pub tip: u64,
    /// `CheckMetadataHash` mode: 0 disabled, 1 enabled.
    pub metadata_hash_mode: u8,
}

/// A decoded extrinsic: `signed` is `None` for an unsigned (inherent or bare) one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extrinsic {
    pub signed: Option<Signed>,
    /// The call: pallet index, call index, arguments.
    pub call: Vec<u8>,
}

/// What the signature of a signed extrinsic covers besides the call and the extra data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningContext {
    pub spec_version: u32,
    pub transaction_version: u32,
    pub genesis: Hash32,
}

/// Why an extrinsic was refused at submission, with Substrate's RPC error codes and texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtrinsicError {
    /// 1001: the bytes are not an extrinsic of this runtime.
    #[error("Extrinsic has invalid format: {0}")]
    BadFormat(String),
    /// 1010: well-formed but invalid.
    #[error("Invalid Transaction: {0}")]
    Invalid(InvalidTransaction),
    /// 1011: validity could not be decided (an unsigned call without an unsigned validator).
    #[error("Unknown Transaction Validity: {0}")]
    Unknown(String),
    /// 1013: the same bytes are already in the pool.
    #[error("Transaction Already Imported")]
    AlreadyImported,
    /// 1014: a transaction with this signer and nonce is already in the pool.
    #[error("Priority is too low: (0 vs 0)")]
    TooLowPriority,
}

/// `sp_runtime::InvalidTransaction`, with the node's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTransaction {
    #[error("Transaction call is not expected")]
    Call,
    #[error("Transaction will be valid in the future")]
    Future,
    #[error("Transaction is outdated")]
    Stale,
    #[error("Transaction has a bad signature")]
    BadProof,
    #[error("Transaction has an ancient birth block")]
    AncientBirthBlock,
    #[error("Transaction would exhaust the block limits")]
    ExhaustsResources,
}

impl ExtrinsicError {
    /// Substrate's `author_submitExtrinsic` error code.
    pub fn code(&self) -> i64 {
        match self {
            ExtrinsicError::BadFormat(_) => 1001,
            ExtrinsicError::Invalid(_) => 1010,
            ExtrinsicError::Unknown(_) => 1011,
            ExtrinsicError::AlreadyImported => 1013,
            ExtrinsicError::TooLowPriority => 1014,
        }
    }

    /// The JSON-RPC error's `message` and `data`, as a Substrate node sends them.
    pub fn message_and_data(&self) -> (String, Option<String>) {
        match self {
            ExtrinsicError::Invalid(e) => ("Invalid Transaction".into(), Some(e.to_string())),
            ExtrinsicError::Unknown(why) => {
                ("Unknown Transaction Validity".into(), Some(why.clone()))
            }
            ExtrinsicError::TooLowPriority => (
                self.to_string(),
                Some("The transaction has too low priority to replace another transaction already in the pool.".into()),
            ),
            other => (other.to_string(), None),
        }
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], ExtrinsicError> {
    if input.len() < n {
        return Err(ExtrinsicError::BadFormat("unexpected end of input".into()));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn decode_as<T: Decode>(input: &mut &[u8], what: &str) -> Result<T, ExtrinsicError> {
    T::decode(input).map_err(|e| ExtrinsicError::BadFormat(format!("{what}: {e}")))
}

fn decode_signed(input: &mut &[u8]) -> Result<Signed, ExtrinsicError> {
    let address = take(input, 1)?[0];
    if address != 0 {
        // Only `MultiAddress::Id` names a signer without an account-index lookup.
        return Err(ExtrinsicError::Unknown(
            "Could not lookup information required to validate the transaction".into(),
        ));
    }
    let signer: [u8; 32] = take(input, 32)?.try_into().expect("32 bytes");
    let kind = take(input, 1)?[0];
    let signature: [u8; 64] = match kind {
        0..=1 => take(input, 64)?.try_into().expect("64 bytes"),
        2 => {
            take(input, 65)?;
            [0; 64]
        }
        _ => return Err(ExtrinsicError::BadFormat("unknown signature kind".into())),
    };
    let era = Era::decode(input)?;
    let nonce = decode_as::<Compact<u32>>(input, "nonce")?.0;
    let tip = decode_as::<Compact<u64>>(input, "tip")?.0;
    let metadata_hash_mode = take(input, 1)?[0];
    if metadata_hash_mode > 1 {
        return Err(ExtrinsicError::BadFormat("CheckMetadataHash mode".into()));
    }
    if kind != 1 {
        // Ed25519 and ECDSA accounts exist on Substrate, but every Bittensor key is sr25519;
        // the signature cannot be an sr25519 one of `signer`.
        return Err(ExtrinsicError::Invalid(InvalidTransaction::BadProof));
    }
    Ok(Signed {
        signer,
        signature,
        era,
        nonce,
        tip,
        metadata_hash_mode,
    })
}

/// Decodes an extrinsic as it travels: `Compact<u32>` length, then the version byte, the
/// signature part (signed only) and the call. The length must be exact.
pub fn decode(bytes: &[u8]) -> Result<Extrinsic, ExtrinsicError> {
    if bytes.len() > MAX_EXTRINSIC_BYTES {
        return Err(ExtrinsicError::Invalid(
            InvalidTransaction::ExhaustsResources,
        ));
    }
    let mut input = bytes;
    let len = decode_as::<Compact<u32>>(&mut input, "length")?.0 as usize;
    if len != input.len() {
        return Err(ExtrinsicError::BadFormat(format!(
            "length prefix {len}, {} bytes follow",
            input.len()
        )));
    }
    let version = take(&mut input, 1)?[0];
    let signed = match version {
        SIGNED_V4 => Some(decode_signed(&mut input)?),
        UNSIGNED_V4 => None,
        v => {
            return Err(ExtrinsicError::BadFormat(format!(
                "unsupported extrinsic version byte {v:#04x} (spec 365 takes version 4)"
            )));
        }
    };
    if input.len() < 2 {
        return Err(ExtrinsicError::BadFormat("no call".into()));
    }
    Ok(Extrinsic {
        signed,
        call: input.to_vec(),
    })
}

/// The bytes an sr25519 signature covers: call, extra, implicit; hashed with blake2-256 when
/// longer than 256 bytes.
pub fn signing_payload(
    call: &[u8],
    s: &Signed,
    ctx: &SigningContext,
    birth_hash: &Hash32,
) -> Vec<u8> {
    let mut p = call.to_vec();
    p.extend(s.era.encode());
    Compact(s.nonce).encode_to(&mut p);
    Compact(s.tip).encode_to(&mut p);
    p.push(s.metadata_hash_mode);
    p.extend(ctx.spec_version.to_le_bytes());
    p.extend(ctx.transaction_version.to_le_bytes());
    p.extend(ctx.genesis);
    p.extend(birth_hash);
    // CheckMetadataHash's implicit: `None` (mode 1 would need the metadata's hash, which this
    // node, like one built without the `metadata-hash` feature, does not have).
    p.push(0);
    if p.len() > 256 {
        blake2_256(&p).to_vec()
    } else {
        p
    }
}

/// Whether the signature of `s` covers `call` under `ctx` and `birth_hash`.
pub fn signature_ok(call: &[u8], s: &Signed, ctx: &SigningContext, birth_hash: &Hash32) -> bool {
    s.metadata_hash_mode == 0
        && verify(
            &s.signer,
            &signing_payload(call, s, ctx, birth_hash),
            &s.signature,
        )
}

/// A signed extrinsic as a client builds it (tests, benchmarks): length-prefixed, ready for
/// `author_submitExtrinsic`.
pub fn sign(
    key: &Hotkey,
    call: &[u8],
    era: Era,
    nonce: u32,
    ctx: &SigningContext,
    birth_hash: &Hash32,
) -> Vec<u8> {
    let mut s = Signed {
        signer: key.public(),
        signature: [0; 64],
        era,
        nonce,
        tip: 0,
        metadata_hash_mode: 0,
    };
    s.signature = key.sign(&signing_payload(call, &s, ctx, birth_hash));
    let mut body = vec![SIGNED_V4, 0];
    body.extend(s.signer);
    body.push(1);
    body.extend(s.signature);
    body.extend(era.encode());
    Compact(nonce).encode_to(&mut body);
    Compact(0_u64).encode_to(&mut body);
    body.push(0);
    body.extend(call);
    let mut out = Compact(body.len() as u32).encode();
    out.extend(body);
    out
}

/// The hash a node identifies an extrinsic by (blake2-256 of its encoding).
pub fn extrinsic_hash(bytes: &[u8]) -> Hash32 {
    blake2_256(bytes)
}

#[cfg(test)]
#[path = "extrinsic_tests.rs"]
mod tests;
