//! The commit-reveal (v2) weight hash, as Subtensor computes it.
//!
//! `commit_weights` stores `BlakeTwo256(SCALE(account_id, netuid_index, uids, values, salt,
//! version_key))`; `reveal_weights` recomputes it from the revealed data and the signer. SCALE
//! here is small enough to write by hand: the 32 raw bytes of the account id, `u16`/`u64`
//! little-endian, and each `Vec<u16>` as a compact length followed by its items little-endian.

use crate::tensors::blake2b_256;

/// Subnets per mechanism in the storage index (`GLOBAL_MAX_SUBNET_COUNT`).
const MECHANISM_STRIDE: u16 = 4096;

/// The storage index of a subnet's mechanism: `mecid * 4096 + netuid` (mechanism 0 is the
/// subnet itself, so its index is the netuid).
pub fn netuid_index(netuid: u16, mecid: u8) -> u16 {
    (mecid as u16)
        .wrapping_mul(MECHANISM_STRIDE)
        .wrapping_add(netuid)
}

/// Appends the SCALE compact encoding of `n`.
pub fn encode_compact(n: u64, out: &mut Vec<u8>) {
    if n < 1 << 6 {
        out.push((n as u8) << 2);
    } else if n < 1 << 14 {
        out.extend_from_slice(&(((n as u16) << 2) | 0b01).to_le_bytes());
    } else if n < 1 << 30 {
        out.extend_from_slice(&(((n as u32) << 2) | 0b10).to_le_bytes());
    } else {
        // Big-integer mode: a prefix byte with the payload length minus 4, then the
        // little-endian bytes without trailing zeros (at least 4).
        let bytes = n.to_le_bytes();
        let len = (8 - (n.leading_zeros() / 8) as usize).max(4);
        out.push((((len - 4) as u8) << 2) | 0b11);
        out.extend_from_slice(&bytes[..len]);
    }
}

fn encode_u16_vec(items: &[u16], out: &mut Vec<u8>) {
    encode_compact(items.len() as u64, out);
    for v in items {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// The SCALE encoding of the tuple `(account, netuid_index, uids, values, salt, version_key)`
/// that the commit hash is taken over.
pub fn commit_preimage(
    account: &[u8; 32],
    netuid_index: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 2 * (uids.len() + values.len() + salt.len()));
    out.extend_from_slice(account);
    out.extend_from_slice(&netuid_index.to_le_bytes());
    encode_u16_vec(uids, &mut out);
    encode_u16_vec(values, &mut out);
    encode_u16_vec(salt, &mut out);
    out.extend_from_slice(&version_key.to_le_bytes());
    out
}

/// The commit hash `commit_weights` expects and `reveal_weights` checks (BlakeTwo256 of
/// [`commit_preimage`]). `account` is the signing hotkey's public key; `netuid_index` is
/// [`netuid_index`]`(netuid, 0)` for a subnet's main mechanism.
pub fn commit_hash(
    account: &[u8; 32],
    netuid_index: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> [u8; 32] {
    blake2b_256(&commit_preimage(
        account,
        netuid_index,
        uids,
        values,
        salt,
        version_key,
    ))
}

/// A `reveal_weights` call's arguments after the netuid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reveal {
    pub uids: Vec<u16>,
    pub values: Vec<u16>,
    pub salt: Vec<u16>,
    pub version_key: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(n: u64) -> String {
        let mut v = vec![];
        encode_compact(n, &mut v);
        hex::encode(v)
    }

    #[test]
    fn compact_encodings_match_scale() {
        assert_eq!(compact(0), "00");
        assert_eq!(compact(1), "04");
        assert_eq!(compact(42), "a8");
        assert_eq!(compact(63), "fc");
        assert_eq!(compact(64), "0101");
        assert_eq!(compact(69), "1501");
        assert_eq!(compact(16383), "fdff");
        assert_eq!(compact(16384), "02000100");
        assert_eq!(compact((1 << 30) - 1), "feffffff");
        assert_eq!(compact(1 << 30), "0300000040");
        assert_eq!(compact(u32::MAX as u64), "03ffffffff");
        assert_eq!(compact(1 << 32), "070000000001");
        assert_eq!(compact(u64::MAX), "13ffffffffffffffff");
    }

    #[test]
    fn netuid_index_of_main_and_sub_mechanisms() {
        assert_eq!(netuid_index(102, 0), 102);
        assert_eq!(netuid_index(102, 1), 4198);
    }

    #[test]
    fn preimage_is_the_scale_tuple() {
        let account = [7u8; 32];
        let pre = commit_preimage(&account, 102, &[1, 2], &[65535, 300], &[9], 0x0102);
        let mut want = vec![7u8; 32];
        want.extend_from_slice(&[102, 0]); // netuid_index u16 LE
        want.extend_from_slice(&[0x08, 1, 0, 2, 0]); // uids: compact(2), 1u16, 2u16
        want.extend_from_slice(&[0x08, 0xff, 0xff, 0x2c, 0x01]); // values
        want.extend_from_slice(&[0x04, 9, 0]); // salt
        want.extend_from_slice(&[0x02, 0x01, 0, 0, 0, 0, 0, 0]); // version_key u64 LE
        assert_eq!(pre, want);
        // Empty vectors are a single zero length byte.
        let empty = commit_preimage(&account, 1, &[], &[], &[], 0);
        assert_eq!(empty.len(), 32 + 2 + 3 + 8);
        assert_eq!(&empty[34..37], &[0, 0, 0]);
    }

    #[test]
    fn hash_is_blake2b_256_of_the_preimage_and_binds_every_field() {
        let a = [1u8; 32];
        let h = commit_hash(&a, 102, &[0, 1], &[10, 20], &[5, 6, 7], 3);
        assert_eq!(
            h,
            blake2b_256(&commit_preimage(&a, 102, &[0, 1], &[10, 20], &[5, 6, 7], 3))
        );
        let others = [
            commit_hash(&[2u8; 32], 102, &[0, 1], &[10, 20], &[5, 6, 7], 3),
            commit_hash(&a, 103, &[0, 1], &[10, 20], &[5, 6, 7], 3),
            commit_hash(&a, 102, &[1, 0], &[10, 20], &[5, 6, 7], 3),
            commit_hash(&a, 102, &[0, 1], &[10, 21], &[5, 6, 7], 3),
            commit_hash(&a, 102, &[0, 1], &[10, 20], &[5, 6], 3),
            commit_hash(&a, 102, &[0, 1], &[10, 20], &[5, 6, 7], 4),
            // Moving an item between vectors changes the length prefixes, hence the hash.
            commit_hash(&a, 102, &[0, 1, 10], &[20], &[5, 6, 7], 3),
        ];
        for o in others {
            assert_ne!(o, h);
        }
    }
}
