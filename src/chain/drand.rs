//! drand beacons as Subtensor's `pallet_drand` knows them: the quicknet constants, which round is
//! current at a given time, BLS signatures of rounds (ours, from a seed, for devnet; drand's, to
//! verify), and the SCALE encodings of the pallet's `Pulses` and `BeaconConfig` storage values.
//! Pure and deterministic: time and seeds are arguments.
//!
//! Quicknet's scheme is `bls-unchained-g1-rfc9380` on BLS12-381: a round's message is
//! `sha256(round as big-endian u64)` (unchained: no previous signature), hashed to G1 by RFC 9380
//! (SSWU, expand_message_xmd with SHA-256) under [`QUICKNET_DST`]; the signature is `secret *
//! H(m)` in G1 (48 bytes compressed), the public key `secret * g2` in G2 (96 bytes compressed,
//! arkworks' and the pallet's encoding: big-endian, flag bits in the first byte), and a round's
//! randomness is `sha256(signature)`. A signature verifies when `e(sig, g2) == e(H(m), pk)`.
//!
//! Facts from `pallets/drand/src/{lib,types,verifier}.rs` (opentensor/subtensor) and drand's
//! `common/time.go` and `common/chain/info.go`.

use ark_bls12_381::{Bls12_381, Fr, G1Affine, G1Projective, G2Affine, g1};
use ark_ec::hashing::HashToCurve;
use ark_ec::hashing::curve_maps::wb::WBMap;
use ark_ec::hashing::map_to_curve_hasher::MapToCurveBasedHasher;
use ark_ec::pairing::Pairing;
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::Zero;
use ark_ff::field_hashers::{DefaultFieldHasher, HashToField};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use parity_scale_codec::{Compact, Decode, Encode, Input, Output};
use sha2::{Digest, Sha256};

/// Quicknet's public key (compressed G2), as `pallet_drand`'s `DefaultBeaconConfig` holds it.
pub const QUICKNET_PUBLIC_KEY: [u8; 96] = hex_bytes(
    "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d10\
     64510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef\
     5ece45a",
);
/// Quicknet's chain hash (`QUICKNET_CHAIN_HASH`; drand's `Info.Hash`, see
/// [`BeaconConfiguration::chain_hash`]).
pub const QUICKNET_CHAIN_HASH: [u8; 32] =
    hex_bytes("52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971");
/// Quicknet's group hash (genesis seed).
pub const QUICKNET_GROUP_HASH: [u8; 32] =
    hex_bytes("f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e");
/// Unix time of round 1.
pub const QUICKNET_GENESIS: u64 = 1_692_803_367;
/// Seconds between rounds.
pub const QUICKNET_PERIOD: u64 = 3;
pub const QUICKNET_SCHEME: &str = "bls-unchained-g1-rfc9380";
pub const QUICKNET_BEACON_ID: &str = "quicknet";
/// RFC 9380 domain separation tag of quicknet's hash to G1.
pub const QUICKNET_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";
/// Longest `hash`, `group_hash`, `scheme_id` and `beacon_id` the pallet stores (`BoundedHash`).
pub const MAX_BOUNDED_HASH: usize = 32;
/// Domain separation tag of [`Beacon::from_seed`]'s hash of the seed to a secret scalar.
const SEED_DST: &[u8] = b"CONNITO_DRAND_BEACON_SECRET_V1";

/// What is wrong with a key, signature, pulse or schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrandError {
    #[error("public key is not a compressed G2 point of the prime-order subgroup, or is zero")]
    BadPublicKey,
    #[error("signature is not a compressed G1 point of the prime-order subgroup")]
    BadSignature,
    #[error("the signature does not sign round {round} under this public key")]
    SignatureMismatch { round: u64 },
    #[error("the randomness of round {round} is not sha256 of its signature")]
    RandomnessMismatch { round: u64 },
    #[error("a beacon period must be at least 1 second")]
    ZeroPeriod,
    #[error("{what} {value} does not fit the pallet's u32")]
    OutOfRange { what: &'static str, value: u64 },
    #[error("beacon id of {len} bytes, the pallet stores at most {MAX_BOUNDED_HASH}")]
    BeaconIdTooLong { len: usize },
}

/// When rounds happen: round 1 at `genesis` (unix seconds), one every `period` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    genesis: u64,
    period: u64,
}

impl Schedule {
    pub const QUICKNET: Schedule = Schedule {
        genesis: QUICKNET_GENESIS,
        period: QUICKNET_PERIOD,
    };

    /// A schedule the pallet can store: `period >= 1`, both fit its `u32` fields.
    pub fn new(genesis: u64, period: u64) -> Result<Self, DrandError> {
        if period == 0 {
            return Err(DrandError::ZeroPeriod);
        }
        fits_u32("genesis time", genesis)?;
        fits_u32("period", period)?;
        Ok(Self { genesis, period })
    }

    pub fn genesis(&self) -> u64 {
        self.genesis
    }

    pub fn period(&self) -> u64 {
        self.period
    }

    /// The newest round whose time has come at `unix_secs`: 0 before genesis (no round exists
    /// yet; drand's `CurrentRound` answers 1 there), else `(now - genesis) / period + 1`.
    pub fn round_at(&self, unix_secs: u64) -> u64 {
        match unix_secs.checked_sub(self.genesis) {
            None => 0,
            Some(since) => since / self.period + 1,
        }
    }

    /// When `round` happens (drand's `TimeOfRound`): genesis for rounds 0 and 1, saturating.
    pub fn round_time(&self, round: u64) -> u64 {
        let delta = round.saturating_sub(1).saturating_mul(self.period);
        self.genesis.saturating_add(delta)
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Self::QUICKNET
    }
}

/// Quicknet's round at `unix_secs` ([`Schedule::round_at`]).
pub fn round_at(unix_secs: u64) -> u64 {
    Schedule::QUICKNET.round_at(unix_secs)
}

/// When quicknet's `round` happens ([`Schedule::round_time`]).
pub fn round_time(round: u64) -> u64 {
    Schedule::QUICKNET.round_time(round)
}

/// A beacon of our own (devnet's): a secret scalar and its public key. `Debug` shows the public
/// key only.
#[derive(Clone)]
pub struct Beacon {
    secret: Fr,
    public_key: G2Affine,
}

impl Beacon {
    /// The beacon of `seed`: the secret is the first non-zero `hash_to_field(seed || counter)`
    /// (RFC 9380, SHA-256, DST `CONNITO_DRAND_BEACON_SECRET_V1`), counter 0, 1, ...; the same seed, the same beacon.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let hasher = <DefaultFieldHasher<Sha256, 128> as HashToField<Fr>>::new(SEED_DST);
        let secret = (0u32..)
            .map(|counter| -> Fr {
                let msg = [&seed[..], &counter.to_be_bytes()].concat();
                hasher.hash_to_field(&msg, 1)[0]
            })
            .find(|s| !s.is_zero())
            .expect("a non-zero scalar within 2^32 tries");
        let public_key = (G2Affine::generator() * secret).into_affine();
        Self { secret, public_key }
    }

    /// The public key, compressed (as a `BeaconConfiguration` holds it).
    pub fn public_key(&self) -> [u8; 96] {
        compress(&self.public_key)
    }

    /// The signature of `round`, compressed.
    pub fn sign(&self, round: u64) -> [u8; 48] {
        compress(&(message_point(round) * self.secret).into_affine())
    }

    /// The pulse of `round`.
    pub fn pulse(&self, round: u64) -> Pulse {
        Pulse::from_signature(round, self.sign(round))
    }

    /// This beacon's configuration for `pallet_drand` ([`BeaconConfiguration::custom`]).
    pub fn configuration(
        &self,
        schedule: Schedule,
        beacon_id: &str,
    ) -> Result<BeaconConfiguration, DrandError> {
        BeaconConfiguration::custom(self.public_key(), schedule, beacon_id)
    }
}

impl std::fmt::Debug for Beacon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Beacon")
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

/// Whether `signature` is the signature of `round` under `public_key` (both compressed):
/// `e(sig, g2) == e(H(m), pk)`, checked as one multi-Miller loop of `(-sig, g2), (H(m), pk)`
/// and one final exponentiation, as the pallet does. Points must be in the prime-order subgroup
/// and canonically encoded; the zero public key (which the zero signature would match for every
/// round) is refused.
pub fn verify(public_key: &[u8; 96], round: u64, signature: &[u8; 48]) -> Result<(), DrandError> {
    let pk = decompress::<G2Affine, 96>(public_key)
        .filter(|pk| !pk.is_zero())
        .ok_or(DrandError::BadPublicKey)?;
    let sig = decompress::<G1Affine, 48>(signature).ok_or(DrandError::BadSignature)?;
    let looped =
        Bls12_381::multi_miller_loop([-sig, message_point(round)], [G2Affine::generator(), pk]);
    match Bls12_381::final_exponentiation(looped) {
        Some(product) if product.is_zero() => Ok(()),
        _ => Err(DrandError::SignatureMismatch { round }),
    }
}

/// The message of `round`: `sha256(round as big-endian u64)`.
pub fn message(round: u64) -> [u8; 32] {
    Sha256::digest(round.to_be_bytes()).into()
}

/// A round's randomness: `sha256(signature)`.
pub fn randomness(signature: &[u8; 48]) -> [u8; 32] {
    Sha256::digest(signature).into()
}

/// `H(message(round))` in G1 (RFC 9380 `hash_to_curve`, SSWU via the 11-isogeny).
fn message_point(round: u64) -> G1Affine {
    MapToCurveBasedHasher::<G1Projective, DefaultFieldHasher<Sha256, 128>, WBMap<g1::Config>>::new(
        QUICKNET_DST,
    )
    .and_then(|hasher| hasher.hash(&message(round)))
    .expect("arkworks' BLS12-381 G1 map is valid and total")
}

/// A point of the prime-order subgroup in its one canonical encoding (arkworks 0.4 reads any
/// bytes after the infinity flag as the point at infinity; those are refused here).
fn decompress<P: CanonicalSerialize + CanonicalDeserialize, const N: usize>(
    bytes: &[u8; N],
) -> Option<P> {
    let point = P::deserialize_compressed(&bytes[..]).ok()?;
    (compress::<P, N>(&point) == *bytes).then_some(point)
}

fn compress<P: CanonicalSerialize, const N: usize>(point: &P) -> [u8; N] {
    let mut out = [0u8; N];
    point
        .serialize_compressed(&mut out[..])
        .expect("compressed size of the point type");
    out
}

/// One round of a beacon: `pallet_drand`'s `Pulse`, the value of `Pulses(round)`.
///
/// SCALE, as the pallet's `{ round: u64, randomness: BoundedVec<u8, 32>, signature:
/// BoundedVec<u8, 144> }`: `round` little-endian, then each byte string with its compact length
/// (`0x80` for 32, `0xc0` for 48): 90 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pulse {
    pub round: u64,
    pub randomness: [u8; 32],
    pub signature: [u8; 48],
}

impl Pulse {
    /// The pulse of `round` with this signature, and its randomness.
    pub fn from_signature(round: u64, signature: [u8; 48]) -> Self {
        Self {
            round,
            randomness: randomness(&signature),
            signature,
        }
    }

    /// The signature signs the round under `public_key` and the randomness is its hash (the
    /// pallet checks the signature only).
    pub fn verify(&self, public_key: &[u8; 96]) -> Result<(), DrandError> {
        verify(public_key, self.round, &self.signature)?;
        if self.randomness != randomness(&self.signature) {
            return Err(DrandError::RandomnessMismatch { round: self.round });
        }
        Ok(())
    }
}

impl Encode for Pulse {
    fn size_hint(&self) -> usize {
        8 + 1 + 32 + 1 + 48
    }

    fn encode_to<T: Output + ?Sized>(&self, dest: &mut T) {
        self.round.encode_to(dest);
        self.randomness[..].encode_to(dest);
        self.signature[..].encode_to(dest);
    }
}

impl Decode for Pulse {
    /// Refuses signatures of other than 48 bytes (the pallet's bound is 144; quicknet's are 48).
    fn decode<I: Input>(input: &mut I) -> Result<Self, parity_scale_codec::Error> {
        Ok(Self {
            round: u64::decode(input)?,
            randomness: decode_exact(input, "Pulse.randomness is not 32 bytes")?,
            signature: decode_exact(input, "Pulse.signature is not 48 bytes")?,
        })
    }
}

/// A beacon's configuration: `pallet_drand`'s `BeaconConfiguration`, the value of
/// `BeaconConfig` (the pallet verifies pulses against its `public_key`).
///
/// SCALE, in field order: `public_key` (`BoundedVec<u8, 96>`: compact length `0x81 0x01`, 96
/// bytes), `period` and `genesis_time` (`u32` little-endian), `hash`, `group_hash`, `scheme_id`,
/// `metadata.beacon_id` (each `BoundedVec<u8, 32>`: compact length, bytes). Quicknet's is 206
/// bytes. `scheme_id` and `beacon_id` must be at most [`MAX_BOUNDED_HASH`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeaconConfiguration {
    pub public_key: [u8; 96],
    pub period: u32,
    pub genesis_time: u32,
    /// The chain hash ([`Self::chain_hash`]).
    pub hash: [u8; 32],
    pub group_hash: [u8; 32],
    pub scheme_id: Vec<u8>,
    /// `metadata.beacon_id`.
    pub beacon_id: Vec<u8>,
}

impl BeaconConfiguration {
    /// Quicknet's, as the pallet's `DefaultBeaconConfig`.
    pub fn quicknet() -> Self {
        Self {
            public_key: QUICKNET_PUBLIC_KEY,
            period: QUICKNET_PERIOD as u32,
            genesis_time: QUICKNET_GENESIS as u32,
            hash: QUICKNET_CHAIN_HASH,
            group_hash: QUICKNET_GROUP_HASH,
            scheme_id: QUICKNET_SCHEME.as_bytes().to_vec(),
            beacon_id: QUICKNET_BEACON_ID.as_bytes().to_vec(),
        }
    }

    /// A beacon of our own with quicknet's scheme. No drand group exists, so `group_hash` is a
    /// stand-in, `sha256(public_key)`; `hash` is then computed as drand computes it.
    pub fn custom(
        public_key: [u8; 96],
        schedule: Schedule,
        beacon_id: &str,
    ) -> Result<Self, DrandError> {
        if beacon_id.len() > MAX_BOUNDED_HASH {
            return Err(DrandError::BeaconIdTooLong {
                len: beacon_id.len(),
            });
        }
        let mut config = Self {
            public_key,
            period: fits_u32("period", schedule.period())?,
            genesis_time: fits_u32("genesis time", schedule.genesis())?,
            hash: [0; 32],
            group_hash: Sha256::digest(public_key).into(),
            scheme_id: QUICKNET_SCHEME.as_bytes().to_vec(),
            beacon_id: beacon_id.as_bytes().to_vec(),
        };
        config.hash = config.chain_hash();
        Ok(config)
    }

    /// drand's chain hash (`Info.Hash`): `sha256(period as u32 BE || genesis as i64 BE ||
    /// public_key || group_hash || beacon_id)`, the beacon id left out when empty or "default".
    pub fn chain_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.period.to_be_bytes());
        h.update(i64::from(self.genesis_time).to_be_bytes());
        h.update(self.public_key);
        h.update(self.group_hash);
        if !matches!(self.beacon_id.as_slice(), b"" | b"default") {
            h.update(&self.beacon_id);
        }
        h.finalize().into()
    }

    /// When its rounds happen.
    pub fn schedule(&self) -> Result<Schedule, DrandError> {
        Schedule::new(self.genesis_time.into(), self.period.into())
    }
}

impl Encode for BeaconConfiguration {
    fn encode_to<T: Output + ?Sized>(&self, dest: &mut T) {
        self.public_key[..].encode_to(dest);
        self.period.encode_to(dest);
        self.genesis_time.encode_to(dest);
        self.hash[..].encode_to(dest);
        self.group_hash[..].encode_to(dest);
        self.scheme_id.encode_to(dest);
        self.beacon_id.encode_to(dest);
    }
}

impl Decode for BeaconConfiguration {
    /// Refuses keys of other than 96 bytes and hashes of other than 32.
    fn decode<I: Input>(input: &mut I) -> Result<Self, parity_scale_codec::Error> {
        Ok(Self {
            public_key: decode_exact(input, "BeaconConfiguration.public_key is not 96 bytes")?,
            period: u32::decode(input)?,
            genesis_time: u32::decode(input)?,
            hash: decode_exact(input, "BeaconConfiguration.hash is not 32 bytes")?,
            group_hash: decode_exact(input, "BeaconConfiguration.group_hash is not 32 bytes")?,
            scheme_id: decode_bounded(input, "BeaconConfiguration.scheme_id over 32 bytes")?,
            beacon_id: decode_bounded(input, "BeaconConfiguration.beacon_id over 32 bytes")?,
        })
    }
}

/// A compact-length-prefixed byte string of exactly `N` bytes.
fn decode_exact<I: Input, const N: usize>(
    input: &mut I,
    wrong_length: &'static str,
) -> Result<[u8; N], parity_scale_codec::Error> {
    if Compact::<u32>::decode(input)?.0 as usize != N {
        return Err(wrong_length.into());
    }
    let mut out = [0u8; N];
    input.read(&mut out)?;
    Ok(out)
}

/// A compact-length-prefixed byte string of at most [`MAX_BOUNDED_HASH`] bytes.
fn decode_bounded<I: Input>(
    input: &mut I,
    too_long: &'static str,
) -> Result<Vec<u8>, parity_scale_codec::Error> {
    let len = Compact::<u32>::decode(input)?.0 as usize;
    if len > MAX_BOUNDED_HASH {
        return Err(too_long.into());
    }
    let mut out = vec![0u8; len];
    input.read(&mut out)?;
    Ok(out)
}

fn fits_u32(what: &'static str, value: u64) -> Result<u32, DrandError> {
    u32::try_from(value).map_err(|_| DrandError::OutOfRange { what, value })
}

/// Lowercase hex to bytes, at compile time (a bad literal fails the build).
const fn hex_bytes<const N: usize>(hex: &str) -> [u8; N] {
    let s = hex.as_bytes();
    assert!(s.len() == 2 * N, "hex literal of the wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lowercase hex digit"),
    }
}

#[cfg(test)]
#[path = "drand_tests.rs"]
mod tests;
