//! The checks a downloaded expert shard must pass before it is scored.
//!
//! Cheap, attribution-level checks run first (size, hotkey, group, signature, committed hash),
//! then content checks (canonical decoding, content hash, key set, shapes, finiteness). Every
//! failure is a typed [`Rejection`] — a wrong shape is the miner's fault, not an operational error.

use std::collections::BTreeMap;

use crate::protocol::connito::SignedManifest;
use crate::tensors::{Hash32, StateDict, blake2b_256, decode_canonical};

/// What a valid shard for one expert group looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    pub group: u16,
    /// The exact key set and each key's shape.
    pub expected: BTreeMap<String, Vec<usize>>,
    /// Largest accepted shard file, in bytes.
    pub max_bytes: usize,
}

/// Why a submission was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("shard is {size} bytes, at most {max} allowed")]
    TooLarge { size: usize, max: usize },
    #[error("manifest names a different hotkey than the committing miner")]
    WrongHotkey,
    #[error("manifest is for group {actual}, expected group {expected}")]
    WrongGroup { expected: u16, actual: u16 },
    #[error("manifest signature does not verify")]
    BadSignature,
    #[error("manifest binding hash differs from the hash committed on chain")]
    HashMismatch,
    #[error("shard is not a canonical f32 safetensors file: {0}")]
    Malformed(String),
    #[error("shard bytes do not hash to the manifest's content hash")]
    ContentMismatch,
    #[error("unexpected tensor {0}")]
    UnexpectedKey(String),
    #[error("missing tensor {0}")]
    MissingKey(String),
    #[error("tensor {name} has shape {actual:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tensor {0} holds a non-finite value")]
    NonFinite(String),
}

/// One of each rejection, in declaration order (for tests over all of them).
#[cfg(test)]
pub(crate) fn every_rejection() -> Vec<Rejection> {
    vec![
        Rejection::TooLarge { size: 1, max: 0 },
        Rejection::WrongHotkey,
        Rejection::WrongGroup {
            expected: 0,
            actual: 1,
        },
        Rejection::BadSignature,
        Rejection::HashMismatch,
        Rejection::Malformed(String::new()),
        Rejection::ContentMismatch,
        Rejection::UnexpectedKey(String::new()),
        Rejection::MissingKey(String::new()),
        Rejection::WrongShape {
            name: String::new(),
            expected: vec![],
            actual: vec![],
        },
        Rejection::NonFinite(String::new()),
    ]
}

impl Rejection {
    /// Short snake_case verdict label, for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::WrongHotkey => "wrong_hotkey",
            Self::WrongGroup { .. } => "wrong_group",
            Self::BadSignature => "bad_signature",
            Self::HashMismatch => "hash_mismatch",
            Self::Malformed(_) => "malformed",
            Self::ContentMismatch => "content_mismatch",
            Self::UnexpectedKey(_) => "unexpected_key",
            Self::MissingKey(_) => "missing_key",
            Self::WrongShape { .. } => "wrong_shape",
            Self::NonFinite(_) => "non_finite",
        }
    }
}

/// Validates a downloaded shard against its signed manifest, the hash the miner committed on
/// chain, the hotkey that committed it, and the group's spec. Checks run in this order and the
/// first failure is returned:
///
/// 1. `bytes.len() <= spec.max_bytes` ([`Rejection::TooLarge`])
/// 2. manifest hotkey is `expected_hotkey` ([`Rejection::WrongHotkey`])
/// 3. manifest group is `spec.group` ([`Rejection::WrongGroup`])
/// 4. the signature verifies ([`Rejection::BadSignature`])
/// 5. the manifest's binding hash is `committed_hash` ([`Rejection::HashMismatch`])
/// 6. the bytes are a canonical f32 safetensors file ([`Rejection::Malformed`])
/// 7. `blake2b_256(bytes)` is the manifest's content hash ([`Rejection::ContentMismatch`])
/// 8. the key set is exactly `spec.expected` ([`Rejection::UnexpectedKey`], then
///    [`Rejection::MissingKey`], first name in sorted order)
/// 9. every shape matches ([`Rejection::WrongShape`])
/// 10. every value is finite ([`Rejection::NonFinite`])
///
/// The manifest's cycle and global version are bound by the binding hash but not compared to
/// the current round here; callers that care check them on the returned manifest.
pub fn validate_shard(
    bytes: &[u8],
    signed: &SignedManifest,
    committed_hash: &Hash32,
    expected_hotkey: &[u8; 32],
    spec: &ShardSpec,
) -> Result<StateDict, Rejection> {
    if bytes.len() > spec.max_bytes {
        return Err(Rejection::TooLarge {
            size: bytes.len(),
            max: spec.max_bytes,
        });
    }
    check_attribution(signed, committed_hash, expected_hotkey, spec.group)?;
    check_content(bytes, &signed.manifest.content_hash, &spec.expected)
}

/// Steps 2 to 5 of [`validate_shard`], on the manifest alone: hotkey, group, signature and the
/// committed binding hash (a validator runs them before it downloads the shard).
pub fn check_attribution(
    signed: &SignedManifest,
    committed_hash: &Hash32,
    expected_hotkey: &[u8; 32],
    group: u16,
) -> Result<(), Rejection> {
    let m = &signed.manifest;
    if &m.hotkey != expected_hotkey {
        return Err(Rejection::WrongHotkey);
    }
    if m.group != group {
        return Err(Rejection::WrongGroup {
            expected: group,
            actual: m.group,
        });
    }
    signed.verify()?;
    if &m.binding_hash() != committed_hash {
        return Err(Rejection::HashMismatch);
    }
    Ok(())
}

/// Steps 6 to 10 of [`validate_shard`]: canonical encoding, `content_hash`, key set, shapes,
/// finite values.
pub fn check_content(
    bytes: &[u8],
    content_hash: &Hash32,
    expected: &BTreeMap<String, Vec<usize>>,
) -> Result<StateDict, Rejection> {
    let sd = decode_canonical(bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if &blake2b_256(bytes) != content_hash {
        return Err(Rejection::ContentMismatch);
    }
    if let Some(name) = sd.keys().find(|k| !expected.contains_key(*k)) {
        return Err(Rejection::UnexpectedKey(name.clone()));
    }
    if let Some(name) = expected.keys().find(|k| !sd.contains_key(*k)) {
        return Err(Rejection::MissingKey(name.clone()));
    }
    for (name, tensor) in &sd {
        let want = &expected[name];
        if &tensor.shape != want {
            return Err(Rejection::WrongShape {
                name: name.clone(),
                expected: want.clone(),
                actual: tensor.shape.clone(),
            });
        }
    }
    if let Some((name, _)) = sd.iter().find(|(_, t)| !t.is_finite()) {
        return Err(Rejection::NonFinite(name.clone()));
    }
    Ok(sd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::connito::Manifest;
    use crate::submission::keys::Hotkey;
    use crate::tensors::{TensorBlob, encode_safetensors};

    const UP: &str = "model.layers.0.mlp.experts.4.up_proj.weight";
    const DOWN: &str = "model.layers.0.mlp.experts.4.down_proj.weight";

    fn spec() -> ShardSpec {
        ShardSpec {
            group: 2,
            expected: BTreeMap::from([(UP.to_string(), vec![2, 3]), (DOWN.to_string(), vec![3])]),
            max_bytes: 4096,
        }
    }

    fn good_sd() -> StateDict {
        StateDict::from([
            (
                UP.to_string(),
                TensorBlob::new(vec![2, 3], vec![0.1, 0.2, 0.3, -0.4, 0.5, 0.6]).unwrap(),
            ),
            (
                DOWN.to_string(),
                TensorBlob::new(vec![3], vec![1.0, 2.0, 3.0]).unwrap(),
            ),
        ])
    }

    /// A miner's complete submission: shard bytes, signed manifest, committed hash.
    struct Sub {
        bytes: Vec<u8>,
        signed: SignedManifest,
        committed: Hash32,
    }

    fn submit(key: &Hotkey, group: u16, bytes: Vec<u8>) -> Sub {
        let manifest = Manifest {
            hotkey: key.public(),
            group,
            cycle: 40,
            global_version: 7,
            content_hash: blake2b_256(&bytes),
        };
        let committed = manifest.binding_hash();
        Sub {
            bytes,
            signed: SignedManifest::sign(manifest, key),
            committed,
        }
    }

    fn submit_sd(sd: &StateDict) -> (Hotkey, Sub) {
        let key = Hotkey::dev("miner");
        let sub = submit(&key, 2, encode_safetensors(sd));
        (key, sub)
    }

    fn check(key: &Hotkey, sub: &Sub, spec: &ShardSpec) -> Result<StateDict, Rejection> {
        validate_shard(&sub.bytes, &sub.signed, &sub.committed, &key.public(), spec)
    }

    #[test]
    fn valid_shard_passes() {
        let (key, sub) = submit_sd(&good_sd());
        assert_eq!(check(&key, &sub, &spec()), Ok(good_sd()));
    }

    #[test]
    fn too_large() {
        let (key, sub) = submit_sd(&good_sd());
        let spec = ShardSpec {
            max_bytes: sub.bytes.len() - 1,
            ..spec()
        };
        assert_eq!(
            check(&key, &sub, &spec),
            Err(Rejection::TooLarge {
                size: sub.bytes.len(),
                max: sub.bytes.len() - 1
            })
        );
        // Exactly at the limit is fine.
        let spec = ShardSpec {
            max_bytes: sub.bytes.len(),
            ..spec
        };
        assert!(check(&key, &sub, &spec).is_ok());
    }

    #[test]
    fn wrong_hotkey() {
        let (_, sub) = submit_sd(&good_sd());
        let other = Hotkey::dev("someone-else");
        assert_eq!(check(&other, &sub, &spec()), Err(Rejection::WrongHotkey));
    }

    #[test]
    fn wrong_group() {
        let key = Hotkey::dev("miner");
        let sub = submit(&key, 3, encode_safetensors(&good_sd()));
        assert_eq!(
            check(&key, &sub, &spec()),
            Err(Rejection::WrongGroup {
                expected: 2,
                actual: 3
            })
        );
    }

    #[test]
    fn bad_signature_flipped_bit() {
        let (key, mut sub) = submit_sd(&good_sd());
        sub.signed.signature[5] ^= 0x04;
        assert_eq!(check(&key, &sub, &spec()), Err(Rejection::BadSignature));
    }

    #[test]
    fn bad_signature_other_signer() {
        let (key, mut sub) = submit_sd(&good_sd());
        sub.signed = SignedManifest::sign(sub.signed.manifest.clone(), &Hotkey::dev("forger"));
        assert_eq!(check(&key, &sub, &spec()), Err(Rejection::BadSignature));
    }

    #[test]
    fn hash_mismatch() {
        let (key, mut sub) = submit_sd(&good_sd());
        sub.committed[0] ^= 1;
        assert_eq!(check(&key, &sub, &spec()), Err(Rejection::HashMismatch));
    }

    #[test]
    fn copier_reusing_victims_commitment_is_rejected() {
        // The victim commits and later reveals its shard.
        let (victim, victim_sub) = submit_sd(&good_sd());
        // The copier committed the victim's binding hash on chain as its own.
        let copier = Hotkey::dev("copier");
        let copier_commitment = victim_sub.committed;

        // Re-signing the victim's content under the copier's hotkey changes the binding hash.
        let mut copied = submit(&copier, 2, victim_sub.bytes.clone());
        assert_eq!(
            copied.signed.manifest.content_hash,
            victim_sub.signed.manifest.content_hash
        );
        assert_ne!(copied.committed, victim_sub.committed);
        copied.committed = copier_commitment;
        assert_eq!(
            check(&copier, &copied, &spec()),
            Err(Rejection::HashMismatch)
        );

        // Serving the victim's own signed manifest names the victim's hotkey.
        let replay = Sub {
            bytes: victim_sub.bytes.clone(),
            signed: victim_sub.signed.clone(),
            committed: copier_commitment,
        };
        assert_eq!(
            check(&copier, &replay, &spec()),
            Err(Rejection::WrongHotkey)
        );

        // Swapping the hotkey inside the victim's manifest breaks the victim's signature.
        let mut swapped = replay.signed.clone();
        swapped.manifest.hotkey = copier.public();
        let swapped = Sub {
            signed: swapped,
            ..replay
        };
        assert_eq!(
            check(&copier, &swapped, &spec()),
            Err(Rejection::BadSignature)
        );

        // The victim still passes.
        assert!(check(&victim, &victim_sub, &spec()).is_ok());
    }

    #[test]
    fn malformed_garbage() {
        let key = Hotkey::dev("miner");
        let sub = submit(&key, 2, b"definitely not safetensors".to_vec());
        assert!(matches!(
            check(&key, &sub, &spec()),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn malformed_non_canonical() {
        // Valid safetensors, but with metadata: not the canonical encoding.
        let sd = good_sd();
        let data: Vec<(String, Vec<u8>, Vec<usize>)> = sd
            .iter()
            .map(|(k, t)| {
                let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (k.clone(), b, t.shape.clone())
            })
            .collect();
        let views = data.iter().map(|(k, b, s)| {
            (
                k.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        });
        let meta = std::collections::HashMap::from([("x".to_string(), "y".to_string())]);
        let bytes = safetensors::serialize(views, Some(meta)).unwrap();
        assert_ne!(bytes, encode_safetensors(&sd));
        let key = Hotkey::dev("miner");
        let sub = submit(&key, 2, bytes);
        assert!(matches!(
            check(&key, &sub, &spec()),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn content_mismatch() {
        let (key, mut sub) = submit_sd(&good_sd());
        let mut other = good_sd();
        other.get_mut(DOWN).unwrap().data[0] = 9.0;
        sub.bytes = encode_safetensors(&other);
        assert_eq!(check(&key, &sub, &spec()), Err(Rejection::ContentMismatch));
    }

    #[test]
    fn unexpected_key() {
        let mut sd = good_sd();
        let extra = "model.layers.0.mlp.experts.9.up_proj.weight";
        sd.insert(extra.into(), TensorBlob::zeros(vec![2, 3]));
        let (key, sub) = submit_sd(&sd);
        assert_eq!(
            check(&key, &sub, &spec()),
            Err(Rejection::UnexpectedKey(extra.into()))
        );
    }

    #[test]
    fn missing_key() {
        let mut sd = good_sd();
        sd.remove(UP);
        let (key, sub) = submit_sd(&sd);
        assert_eq!(
            check(&key, &sub, &spec()),
            Err(Rejection::MissingKey(UP.into()))
        );
    }

    #[test]
    fn wrong_shape() {
        let mut sd = good_sd();
        sd.get_mut(UP).unwrap().shape = vec![3, 2];
        let (key, sub) = submit_sd(&sd);
        assert_eq!(
            check(&key, &sub, &spec()),
            Err(Rejection::WrongShape {
                name: UP.into(),
                expected: vec![2, 3],
                actual: vec![3, 2]
            })
        );
    }

    #[test]
    fn non_finite() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut sd = good_sd();
            sd.get_mut(DOWN).unwrap().data[1] = bad;
            let (key, sub) = submit_sd(&sd);
            assert_eq!(
                check(&key, &sub, &spec()),
                Err(Rejection::NonFinite(DOWN.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn order_size_checked_before_everything() {
        // Oversized garbage from the wrong hotkey is reported as too large.
        let key = Hotkey::dev("miner");
        let sub = submit(&key, 9, vec![0u8; 10_000]);
        assert!(matches!(
            check(&Hotkey::dev("other"), &sub, &spec()),
            Err(Rejection::TooLarge { .. })
        ));
    }

    #[test]
    fn labels_are_distinct_snake_case() {
        let all = every_rejection();
        let labels: Vec<&str> = all.iter().map(Rejection::label).collect();
        assert_eq!(
            labels,
            [
                "too_large",
                "wrong_hotkey",
                "wrong_group",
                "bad_signature",
                "hash_mismatch",
                "malformed",
                "content_mismatch",
                "unexpected_key",
                "missing_key",
                "wrong_shape",
                "non_finite"
            ]
        );
    }
}
