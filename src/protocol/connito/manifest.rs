//! The signed submission manifest and the compact on-chain commitment payloads.
//!
//! A miner commits [`Manifest::binding_hash`] on chain before its shard is visible. The binding
//! hash covers the hotkey as well as the content hash, so a copier who commits another miner's
//! hash cannot produce a manifest under its own hotkey that matches it.

use serde::{Deserialize, Serialize};

use crate::submission::keys::{self, Hotkey};
use crate::submission::validate::Rejection;
use crate::tensors::{Hash32, blake2b_256};

/// Domain tag that starts every binding-hash preimage.
pub const SUBMISSION_DOMAIN: &[u8] = b"connito-submission-v1";

/// What a miner claims about one submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Miner hotkey (sr25519 public key).
    #[serde(with = "hex_array")]
    pub hotkey: [u8; 32],
    /// Expert group the shard trains.
    pub group: u16,
    /// Cycle the submission belongs to.
    pub cycle: u64,
    /// Global model version the miner trained from.
    pub global_version: u64,
    /// `blake2b_256` of the shard's canonical safetensors bytes.
    #[serde(with = "hex_array")]
    pub content_hash: Hash32,
}

impl Manifest {
    /// `blake2b_256(SUBMISSION_DOMAIN ++ hotkey ++ group LE ++ cycle LE ++ global_version LE ++
    /// content_hash)`: the value committed on chain.
    pub fn binding_hash(&self) -> Hash32 {
        let mut pre = Vec::with_capacity(SUBMISSION_DOMAIN.len() + 32 + 2 + 8 + 8 + 32);
        pre.extend_from_slice(SUBMISSION_DOMAIN);
        pre.extend_from_slice(&self.hotkey);
        pre.extend_from_slice(&self.group.to_le_bytes());
        pre.extend_from_slice(&self.cycle.to_le_bytes());
        pre.extend_from_slice(&self.global_version.to_le_bytes());
        pre.extend_from_slice(&self.content_hash);
        blake2b_256(&pre)
    }

    /// The message a hotkey signs: the lowercase hex string of the binding hash (as the
    /// reference signs the hex hash string).
    pub fn signing_message(&self) -> String {
        hex::encode(self.binding_hash())
    }
}

/// A manifest with the hotkey's sr25519 signature over [`Manifest::signing_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedManifest {
    pub manifest: Manifest,
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

impl SignedManifest {
    /// Signs `manifest` with `key`. The result only verifies if `manifest.hotkey` is
    /// `key.public()`.
    pub fn sign(manifest: Manifest, key: &Hotkey) -> Self {
        let signature = key.sign(manifest.signing_message().as_bytes());
        Self {
            manifest,
            signature,
        }
    }

    /// Checks the signature against the manifest's own hotkey.
    pub fn verify(&self) -> Result<(), Rejection> {
        let msg = self.manifest.signing_message();
        if keys::verify(&self.manifest.hotkey, msg.as_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(Rejection::BadSignature)
        }
    }
}

/// Largest on-chain commitment payload, in bytes.
pub const MAX_COMMITMENT_BYTES: usize = 128;

/// An on-chain commitment payload. Step 1 commits only the hash; step 2 adds where the shard
/// (or global model) can be fetched.
///
/// Wire form (compact JSON, at most [`MAX_COMMITMENT_BYTES`]):
/// `{"e":group,"h":"<64 hex>","v":version}` and `{"e":group,"h":"<64 hex>","v":version,"r":"<url>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commitment {
    Hash {
        group: u16,
        hash: Hash32,
        version: u64,
    },
    Location {
        group: u16,
        hash: Hash32,
        version: u64,
        url: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    #[error("commitment payload is {len} bytes, at most {max} allowed")]
    TooLong { len: usize, max: usize },
    #[error("malformed commitment payload: {0}")]
    Malformed(String),
}

/// The JSON shape on chain; field order is the serialization order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitmentWire {
    e: u16,
    h: String,
    v: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
}

impl Commitment {
    pub fn group(&self) -> u16 {
        match self {
            Self::Hash { group, .. } | Self::Location { group, .. } => *group,
        }
    }

    pub fn hash(&self) -> &Hash32 {
        match self {
            Self::Hash { hash, .. } | Self::Location { hash, .. } => hash,
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Self::Hash { version, .. } | Self::Location { version, .. } => *version,
        }
    }

    /// Location URL, for step-2 commitments.
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Hash { .. } => None,
            Self::Location { url, .. } => Some(url),
        }
    }

    /// Compact JSON bytes; fails if longer than [`MAX_COMMITMENT_BYTES`] or the URL is empty.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CommitmentError> {
        let wire = match self {
            Self::Hash {
                group,
                hash,
                version,
            } => CommitmentWire {
                e: *group,
                h: hex::encode(hash),
                v: *version,
                r: None,
            },
            Self::Location {
                group,
                hash,
                version,
                url,
            } => {
                if url.is_empty() {
                    return Err(CommitmentError::Malformed("empty location url".into()));
                }
                CommitmentWire {
                    e: *group,
                    h: hex::encode(hash),
                    v: *version,
                    r: Some(url.clone()),
                }
            }
        };
        let bytes = serde_json::to_vec(&wire).expect("plain struct serializes");
        check_len(bytes.len())?;
        Ok(bytes)
    }

    /// Parses a payload written by [`Commitment::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CommitmentError> {
        check_len(bytes.len())?;
        let wire: CommitmentWire =
            serde_json::from_slice(bytes).map_err(|e| CommitmentError::Malformed(e.to_string()))?;
        if wire.h.len() != 64 {
            return Err(CommitmentError::Malformed(format!(
                "hash has {} hex digits, expected 64",
                wire.h.len()
            )));
        }
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&wire.h, &mut hash)
            .map_err(|e| CommitmentError::Malformed(format!("hash: {e}")))?;
        Ok(match wire.r {
            None => Self::Hash {
                group: wire.e,
                hash,
                version: wire.v,
            },
            Some(url) if url.is_empty() => {
                return Err(CommitmentError::Malformed("empty location url".into()));
            }
            Some(url) => Self::Location {
                group: wire.e,
                hash,
                version: wire.v,
                url,
            },
        })
    }
}

fn check_len(len: usize) -> Result<(), CommitmentError> {
    if len > MAX_COMMITMENT_BYTES {
        Err(CommitmentError::TooLong {
            len,
            max: MAX_COMMITMENT_BYTES,
        })
    } else {
        Ok(())
    }
}

/// Serde for fixed-size byte arrays as lowercase hex strings.
mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(s.as_ref(), &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_for(key: &Hotkey) -> Manifest {
        Manifest {
            hotkey: key.public(),
            group: 3,
            cycle: 17,
            global_version: 5,
            content_hash: blake2b_256(b"shard"),
        }
    }

    #[test]
    fn binding_hash_preimage_layout() {
        let m = manifest_for(&Hotkey::dev("miner"));
        let mut pre = b"connito-submission-v1".to_vec();
        pre.extend_from_slice(&m.hotkey);
        pre.extend_from_slice(&3u16.to_le_bytes());
        pre.extend_from_slice(&17u64.to_le_bytes());
        pre.extend_from_slice(&5u64.to_le_bytes());
        pre.extend_from_slice(&m.content_hash);
        assert_eq!(m.binding_hash(), blake2b_256(&pre));
        assert_eq!(m.signing_message(), hex::encode(m.binding_hash()));
    }

    #[test]
    fn binding_hash_covers_every_field() {
        let base = manifest_for(&Hotkey::dev("miner"));
        let h = base.binding_hash();
        let variants = [
            Manifest {
                hotkey: Hotkey::dev("copier").public(),
                ..base.clone()
            },
            Manifest {
                group: 4,
                ..base.clone()
            },
            Manifest {
                cycle: 18,
                ..base.clone()
            },
            Manifest {
                global_version: 6,
                ..base.clone()
            },
            Manifest {
                content_hash: blake2b_256(b"other"),
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.binding_hash(), h, "{v:?}");
        }
    }

    #[test]
    fn signed_manifest_roundtrip() {
        let k = Hotkey::dev("miner");
        let s = SignedManifest::sign(manifest_for(&k), &k);
        assert_eq!(s.verify(), Ok(()));
    }

    #[test]
    fn signature_by_other_key_is_rejected() {
        let k = Hotkey::dev("miner");
        let s = SignedManifest::sign(manifest_for(&k), &Hotkey::dev("copier"));
        assert_eq!(s.verify(), Err(Rejection::BadSignature));
    }

    #[test]
    fn flipped_signature_bit_is_rejected() {
        let k = Hotkey::dev("miner");
        let mut s = SignedManifest::sign(manifest_for(&k), &k);
        s.signature[10] ^= 0x80;
        assert_eq!(s.verify(), Err(Rejection::BadSignature));
    }

    #[test]
    fn tampered_manifest_is_rejected() {
        let k = Hotkey::dev("miner");
        let mut s = SignedManifest::sign(manifest_for(&k), &k);
        s.manifest.global_version += 1;
        assert_eq!(s.verify(), Err(Rejection::BadSignature));
    }

    #[test]
    fn manifest_json_uses_hex_and_roundtrips() {
        let k = Hotkey::dev("miner");
        let s = SignedManifest::sign(manifest_for(&k), &k);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(&format!("\"hotkey\":\"{}\"", hex::encode(k.public()))));
        assert!(json.contains(&format!("\"signature\":\"{}\"", hex::encode(s.signature))));
        let back: SignedManifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.verify(), Ok(()));
    }

    #[test]
    fn manifest_json_rejects_bad_hex_length() {
        let json =
            r#"{"hotkey":"abcd","group":1,"cycle":1,"global_version":1,"content_hash":"00"}"#;
        assert!(serde_json::from_str::<Manifest>(json).is_err());
    }

    #[test]
    fn commitment_hash_wire_form() {
        let c = Commitment::Hash {
            group: 2,
            hash: [0xab; 32],
            version: 9,
        };
        let bytes = c.to_bytes().unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!("{{\"e\":2,\"h\":\"{}\",\"v\":9}}", "ab".repeat(32))
        );
        assert_eq!(Commitment::from_bytes(&bytes).unwrap(), c);
    }

    #[test]
    fn commitment_location_roundtrip() {
        let c = Commitment::Location {
            group: 7,
            hash: blake2b_256(b"x"),
            version: 12345,
            url: "hf://org/repo@abc".into(),
        };
        let bytes = c.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\"e\":7,\"h\":\""), "{text}");
        assert!(
            text.ends_with(",\"v\":12345,\"r\":\"hf://org/repo@abc\"}"),
            "{text}"
        );
        let back = Commitment::from_bytes(&bytes).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.group(), 7);
        assert_eq!(back.version(), 12345);
        assert_eq!(back.hash(), &blake2b_256(b"x"));
        assert_eq!(back.url(), Some("hf://org/repo@abc"));
    }

    #[test]
    fn commitment_128_byte_limit() {
        let mk = |n: usize| Commitment::Location {
            group: 1,
            hash: [0; 32],
            version: 1,
            url: "u".repeat(n),
        };
        // {"e":1,"h":"<64>","v":1,"r":"<n>"} is `overhead + n` bytes.
        let overhead = mk(1).to_bytes().unwrap().len() - 1;
        let room = MAX_COMMITMENT_BYTES - overhead;
        let fits = mk(room).to_bytes().unwrap();
        assert_eq!(fits.len(), MAX_COMMITMENT_BYTES);
        assert_eq!(Commitment::from_bytes(&fits).unwrap(), mk(room));
        assert_eq!(
            mk(room + 1).to_bytes(),
            Err(CommitmentError::TooLong {
                len: MAX_COMMITMENT_BYTES + 1,
                max: MAX_COMMITMENT_BYTES
            })
        );
        let mut long = fits.clone();
        long.insert(1, b' ');
        assert!(matches!(
            Commitment::from_bytes(&long),
            Err(CommitmentError::TooLong { len: 129, .. })
        ));
    }

    #[test]
    fn commitment_max_numbers_hash_form_fits() {
        let c = Commitment::Hash {
            group: u16::MAX,
            hash: [0xff; 32],
            version: u64::MAX,
        };
        let bytes = c.to_bytes().unwrap();
        assert!(bytes.len() <= MAX_COMMITMENT_BYTES);
        assert_eq!(Commitment::from_bytes(&bytes).unwrap(), c);
    }

    #[test]
    fn commitment_malformed_payloads() {
        let h = "00".repeat(32);
        let bad: [String; 7] = [
            "not json".into(),
            "{\"e\":1,\"v\":1}".into(),
            format!("{{\"e\":1,\"h\":\"{}\",\"v\":1}}", "00".repeat(31)),
            format!("{{\"e\":1,\"h\":\"{}\",\"v\":1}}", "zz".repeat(32)),
            format!("{{\"e\":70000,\"h\":\"{h}\",\"v\":1}}"),
            format!("{{\"e\":1,\"h\":\"{h}\",\"v\":1,\"r\":\"\"}}"),
            format!("{{\"e\":1,\"h\":\"{h}\",\"v\":1,\"x\":2}}"),
        ];
        for b in &bad {
            assert!(
                matches!(
                    Commitment::from_bytes(b.as_bytes()),
                    Err(CommitmentError::Malformed(_))
                ),
                "{b}"
            );
        }
        let empty_url = Commitment::Location {
            group: 1,
            hash: [0; 32],
            version: 1,
            url: String::new(),
        };
        assert!(matches!(
            empty_url.to_bytes(),
            Err(CommitmentError::Malformed(_))
        ));
    }
}
