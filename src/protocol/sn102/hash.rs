//! The live SN102 content hash: BLAKE2b with a 24-byte digest over the tensors in the order of
//! Python's `sorted` on their names (code-point order, which is the byte order of UTF-8: a
//! `BTreeMap<String, _>` iterates in it), each name's UTF-8 bytes followed by the tensor's raw
//! little-endian bytes in its stored dtype, row-major; no separators, shapes or dtypes. Committed
//! as 48 lowercase hex characters. (Reference: `connito/shared/helper.py`,
//! `serialize_torch_model_path` and `hash_model_bytes`.)

use blake2::digest::{Update, VariableOutput};

use super::shard::Shard;

/// Bytes of the digest.
pub const HASH_BYTES: usize = 24;

/// A shard's content hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; HASH_BYTES]);

/// Why a committed hash string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    #[error("a content hash is 48 lowercase hex characters, this is {0}")]
    Length(usize),
    #[error("a content hash is lowercase hex; found {0:?}")]
    NotLowerHex(char),
}

impl ContentHash {
    /// The hash of `shard` (its tensors in name order).
    pub fn of(shard: &Shard) -> Self {
        let mut h = blake2::Blake2bVar::new(HASH_BYTES).expect("24 is a valid BLAKE2b length");
        for (name, t) in shard.tensors() {
            h.update(name.as_bytes());
            h.update(&t.data);
        }
        let mut out = [0u8; HASH_BYTES];
        h.finalize_variable(&mut out)
            .expect("output length set above");
        Self(out)
    }

    /// 48 lowercase hex characters, as committed.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A committed hash: exactly 48 lowercase hex characters (the reference compares strings).
    pub fn parse(s: &str) -> Result<Self, HashParseError> {
        if s.len() != 2 * HASH_BYTES {
            return Err(HashParseError::Length(s.chars().count()));
        }
        if let Some(c) = s.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(HashParseError::NotLowerHex(c));
        }
        let mut out = [0u8; HASH_BYTES];
        hex::decode_to_slice(s, &mut out).expect("checked lowercase hex of the right length");
        Ok(Self(out))
    }
}

impl std::fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}
