//! sr25519 hotkeys, as Substrate uses them: signatures under the `substrate` signing context and
//! SS58 addresses.

use std::fmt;

use blake2::{Blake2b512, Digest};
use schnorrkel::{ExpansionMode, Keypair, MiniSecretKey, PublicKey, Signature};

use crate::tensors::blake2b_256;

/// Signing context Substrate uses for sr25519 signatures.
const SIGNING_CONTEXT: &[u8] = b"substrate";

/// SS58 address prefix of generic Substrate (and Bittensor) accounts: addresses start with `5`.
pub const SUBSTRATE_SS58_PREFIX: u16 = 42;

/// An sr25519 keypair (a miner's or validator's hotkey).
#[derive(Clone)]
pub struct Hotkey {
    pair: Keypair,
}

impl Hotkey {
    /// Deterministic keypair from a 32-byte mini secret key (Substrate's `Ed25519` expansion, so
    /// a seed gives the same public key as `subkey` does for that seed).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mini = MiniSecretKey::from_bytes(seed).expect("any 32 bytes are a mini secret key");
        Self {
            pair: mini.expand_to_keypair(ExpansionMode::Ed25519),
        }
    }

    /// Development key named `name`: the seed is `blake2b_256("connito-dev:" ++ name)`. For tests
    /// and local networks only — anyone can derive it.
    pub fn dev(name: &str) -> Self {
        let mut input = b"connito-dev:".to_vec();
        input.extend_from_slice(name.as_bytes());
        Self::from_seed(&blake2b_256(&input))
    }

    /// The 32-byte public key (the account id).
    pub fn public(&self) -> [u8; 32] {
        self.pair.public.to_bytes()
    }

    /// SS58 address of this key under the generic Substrate prefix (42).
    pub fn address(&self) -> String {
        ss58(&self.public(), SUBSTRATE_SS58_PREFIX)
    }

    /// The 64-byte secret key (scalar and nonce) as Substrate tools export it (`privateKey` in a
    /// bittensor keyfile).
    pub fn secret_bytes(&self) -> [u8; 64] {
        self.pair.secret.to_bytes()
    }

    /// sr25519 signature of `msg` under the `substrate` signing context.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.pair.sign_simple(SIGNING_CONTEXT, msg).to_bytes()
    }
}

impl fmt::Debug for Hotkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret half.
        f.debug_struct("Hotkey")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

/// Whether `sig` is a valid sr25519 signature of `msg` by `public` under the `substrate`
/// context. Malformed keys or signatures verify as `false`.
pub fn verify(public: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(public) = PublicKey::from_bytes(public) else {
        return false;
    };
    let Ok(sig) = Signature::from_bytes(sig) else {
        return false;
    };
    public.verify_simple(SIGNING_CONTEXT, msg, &sig).is_ok()
}

/// SS58 address of a 32-byte public key: base58(prefix ++ key ++ checksum), the checksum being
/// the first two bytes of `blake2b_512("SS58PRE" ++ prefix ++ key)`.
///
/// Prefixes below 64 take one byte, prefixes 64..16384 the two-byte form.
///
/// # Panics
/// If `prefix >= 16384` (not representable in SS58).
pub fn ss58(public: &[u8; 32], prefix: u16) -> String {
    assert!(prefix < 16384, "SS58 prefix {prefix} out of range");
    let mut payload = Vec::with_capacity(2 + 32 + 2);
    if prefix < 64 {
        payload.push(prefix as u8);
    } else {
        payload.push((((prefix & 0x00fc) >> 2) as u8) | 0x40);
        payload.push(((prefix >> 8) as u8) | (((prefix & 0x0003) as u8) << 6));
    }
    payload.extend_from_slice(public);
    let mut h = Blake2b512::new();
    h.update(b"SS58PRE");
    h.update(&payload);
    let checksum = h.finalize();
    payload.extend_from_slice(&checksum[..2]);
    base58_encode(&payload)
}

const BASE58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Bitcoin-alphabet base58 (each leading zero byte becomes a `1`).
fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    // Little-endian base-58 digits of the big-endian number in `bytes`.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in &bytes[zeros..] {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| BASE58_ALPHABET[d as usize] as char),
    );
    out
}

/// Why a string is not an SS58 account address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ss58Error {
    #[error("not base58")]
    NotBase58,
    #[error("not a 32-byte account address ({0} bytes)")]
    Length(usize),
    #[error("bad checksum")]
    Checksum,
}

/// The public key and prefix of an SS58 address of a 32-byte account (one- or two-byte prefix).
pub fn ss58_decode(address: &str) -> Result<([u8; 32], u16), Ss58Error> {
    // A 32-byte account's address is at most 50 characters; bound the quadratic decode.
    if address.len() > 64 {
        return Err(Ss58Error::Length(address.len()));
    }
    let bytes = base58_decode(address).ok_or(Ss58Error::NotBase58)?;
    let (prefix, rest) = match bytes.first() {
        Some(&b) if b < 64 => (u16::from(b), &bytes[1..]),
        Some(&b) if b < 128 && bytes.len() > 1 => {
            let lower = (u16::from(b) << 2) | (u16::from(bytes[1]) >> 6);
            let upper = u16::from(bytes[1] & 0x3f);
            ((lower & 0xff) | (upper << 8), &bytes[2..])
        }
        _ => return Err(Ss58Error::Length(bytes.len())),
    };
    if rest.len() != 34 {
        return Err(Ss58Error::Length(rest.len()));
    }
    let public: [u8; 32] = rest[..32].try_into().expect("32 bytes");
    if ss58(&public, prefix) != address {
        return Err(Ss58Error::Checksum);
    }
    Ok((public, prefix))
}

fn base58_decode(s: &str) -> Option<Vec<u8>> {
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    // Little-endian base-256 digits.
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes().skip(zeros) {
        let mut carry = BASE58_ALPHABET.iter().position(|&a| a == c)? as u32;
        for b in bytes.iter_mut() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss58_decode_roundtrip_and_errors() {
        let alice = alice_public();
        let addr = ss58(&alice, 42);
        assert_eq!(ss58_decode(&addr), Ok((alice, 42)));
        let two_byte = ss58(&alice, 1000);
        assert_eq!(ss58_decode(&two_byte), Ok((alice, 1000)));
        let mut bad = addr.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'z' { b'y' } else { b'z' };
        let table = [
            ("0OIl", Ss58Error::NotBase58),
            ("", Ss58Error::Length(0)),
            (std::str::from_utf8(&bad).unwrap(), Ss58Error::Checksum),
        ];
        for (input, want) in table {
            assert_eq!(ss58_decode(input).map(|_| ()), Err(want), "{input:?}");
        }
        assert!(matches!(ss58_decode("5Grw"), Err(Ss58Error::Length(_))));
        let huge = "5".repeat(1 << 20);
        assert_eq!(ss58_decode(&huge), Err(Ss58Error::Length(1 << 20)));
    }

    const ALICE: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

    fn alice_public() -> [u8; 32] {
        hex::decode(ALICE).unwrap().try_into().unwrap()
    }

    #[test]
    fn ss58_known_vector_alice() {
        assert_eq!(
            ss58(&alice_public(), 42),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
    }

    #[test]
    fn ss58_prefix_changes_address() {
        let a = ss58(&alice_public(), 42);
        let polkadot = ss58(&alice_public(), 0);
        assert_ne!(a, polkadot);
        assert!(
            polkadot.starts_with('1'),
            "polkadot addresses start with 1: {polkadot}"
        );
        // Two-byte prefix form still encodes.
        assert_ne!(ss58(&alice_public(), 1000), a);
    }

    #[test]
    fn base58_leading_zeros_and_small_values() {
        assert_eq!(base58_encode(&[]), "");
        assert_eq!(base58_encode(&[0, 0]), "11");
        assert_eq!(base58_encode(&[0, 57]), "1z");
        assert_eq!(base58_encode(&[58]), "21");
        assert_eq!(base58_encode(b"hello world"), "StV1DL6CwTryKyV");
    }

    #[test]
    fn dev_keys_are_deterministic_and_distinct() {
        assert_eq!(Hotkey::dev("alice").public(), Hotkey::dev("alice").public());
        assert_ne!(Hotkey::dev("alice").public(), Hotkey::dev("bob").public());
        let mut input = b"connito-dev:".to_vec();
        input.extend_from_slice(b"alice");
        assert_eq!(
            Hotkey::dev("alice").public(),
            Hotkey::from_seed(&blake2b_256(&input)).public()
        );
        assert!(Hotkey::dev("alice").address().starts_with('5'));
    }

    #[test]
    fn from_seed_matches_substrate_expansion() {
        // `subkey inspect 0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a`
        // (Alice's mini secret) gives Alice's public key.
        let seed: [u8; 32] =
            hex::decode("e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a")
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(Hotkey::from_seed(&seed).public(), alice_public());
    }

    #[test]
    fn sign_verify_roundtrip() {
        let k = Hotkey::dev("miner");
        let sig = k.sign(b"hello");
        assert!(verify(&k.public(), b"hello", &sig));
        assert!(!verify(&k.public(), b"hellp", &sig), "other message");
    }

    #[test]
    fn verify_fails_for_other_key() {
        let k = Hotkey::dev("miner");
        let sig = k.sign(b"hello");
        assert!(!verify(&Hotkey::dev("copier").public(), b"hello", &sig));
    }

    #[test]
    fn verify_fails_for_flipped_bit() {
        let k = Hotkey::dev("miner");
        let sig = k.sign(b"hello");
        for i in [0usize, 31, 32, 62] {
            let mut bad = sig;
            bad[i] ^= 0x01;
            assert!(!verify(&k.public(), b"hello", &bad), "bit flip at byte {i}");
        }
        let mut bad_pub = k.public();
        bad_pub[0] ^= 0x01;
        assert!(!verify(&bad_pub, b"hello", &sig));
    }

    #[test]
    fn debug_hides_secret() {
        let k = Hotkey::dev("miner");
        let s = format!("{k:?}");
        assert!(s.contains(&k.address()));
        assert!(!s.contains("secret"));
    }
}
