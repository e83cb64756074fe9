//! Substrate's storage hashers and storage keys.
//!
//! A storage item's key is `twox128(pallet prefix) ++ twox128(item name)`, then for a map each
//! key part hashed with the hasher the metadata names for it (`Blake2_128Concat` and
//! `Twox64Concat` append the key itself, so a key can be read back out of a storage key;
//! `Identity` is the key alone).

use frame_metadata::v14::StorageHasher;

/// Substrate's own hashers (Parity's `sp-crypto-hashing`, already under subxt): BLAKE2b with
/// 8- and 16-byte digests, and xxHash64 with seeds `0..N/8` concatenated (`twox_*`).
pub use sp_crypto_hashing::{blake2_64, blake2_128, twox_64, twox_128, twox_256};

/// BLAKE2b with a 32-byte digest (Substrate's `BlakeTwo256`: block and extrinsic hashes): the
/// project's [`blake2b_256`](crate::tensors::blake2b_256).
pub fn blake2_256(data: &[u8]) -> [u8; 32] {
    crate::tensors::blake2b_256(data)
}

/// One SCALE-encoded key part hashed the way `hasher` does it.
pub fn hash_key(hasher: &StorageHasher, key: &[u8]) -> Vec<u8> {
    match hasher {
        StorageHasher::Blake2_128 => blake2_128(key).to_vec(),
        StorageHasher::Blake2_256 => blake2_256(key).to_vec(),
        StorageHasher::Blake2_128Concat => [&blake2_128(key)[..], key].concat(),
        StorageHasher::Twox128 => twox_128(key).to_vec(),
        StorageHasher::Twox256 => twox_256(key).to_vec(),
        StorageHasher::Twox64Concat => [&twox_64(key)[..], key].concat(),
        StorageHasher::Identity => key.to_vec(),
    }
}

/// Bytes a hasher puts before the key itself, and whether the key follows (the "concat" hashers
/// and `Identity`), so a key part can be read back out of a storage key.
pub fn hasher_prefix_len(hasher: &StorageHasher) -> (usize, bool) {
    match hasher {
        StorageHasher::Blake2_128 | StorageHasher::Twox128 => (16, false),
        StorageHasher::Blake2_256 | StorageHasher::Twox256 => (32, false),
        StorageHasher::Blake2_128Concat => (16, true),
        StorageHasher::Twox64Concat => (8, true),
        StorageHasher::Identity => (0, true),
    }
}

/// `twox128(pallet prefix) ++ twox128(item name)`: the key of a plain item, the prefix of a map.
pub fn storage_prefix(pallet_prefix: &str, item: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&twox_128(pallet_prefix.as_bytes()));
    out[16..].copy_from_slice(&twox_128(item.as_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_storage_prefixes() {
        // Every Substrate chain's System.Account and System.Number keys.
        assert_eq!(
            hex::encode(storage_prefix("System", "Account")),
            "26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9"
        );
        assert_eq!(
            hex::encode(storage_prefix("System", "Number")),
            "26aa394eea5630e07c48ae0c9558cef702a5c1b19ab7a04f536c519aca4983ac"
        );
        assert_eq!(
            hex::encode(twox_128(b"System")),
            "26aa394eea5630e07c48ae0c9558cef7"
        );
    }

    #[test]
    fn hashers_follow_substrate() {
        // BLAKE2b-256 of the empty string; BLAKE2b-128 of "abc"; xxHash64 of "" with seed 0.
        assert_eq!(
            hex::encode(blake2_256(b"")),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
        assert_eq!(
            hex::encode(blake2_128(b"abc")),
            "cf4ab791c62b8d2b2109c90275287816"
        );
        assert_eq!(twox_64(b""), 0xef46db3751d8e999_u64.to_le_bytes());
        let key = [1u8, 2, 3];
        let concat = hash_key(&StorageHasher::Blake2_128Concat, &key);
        assert_eq!(&concat[16..], &key);
        assert_eq!(hash_key(&StorageHasher::Identity, &key), key);
        let t = hash_key(&StorageHasher::Twox64Concat, &key);
        assert_eq!((t.len(), &t[8..]), (11, &key[..]));
        for h in [
            StorageHasher::Blake2_128,
            StorageHasher::Blake2_256,
            StorageHasher::Blake2_128Concat,
            StorageHasher::Twox128,
            StorageHasher::Twox256,
            StorageHasher::Twox64Concat,
            StorageHasher::Identity,
        ] {
            let (prefix, concat) = hasher_prefix_len(&h);
            let hashed = hash_key(&h, &key);
            let want = prefix + if concat { key.len() } else { 0 };
            assert_eq!(hashed.len(), want, "{h:?}");
        }
    }
}
