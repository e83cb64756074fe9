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

#[cfg(test)]
mod tests {
    use super::*;

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
