//! Every check of one fetched submission, in order, shared by the validator's Intake and by
//! `connito submission verify` (offline), so both give the same verdict for the same bytes.
//!
//! 1. the manifest parses (`malformed`);
//! 2. its cycle and global version are the round's (`stale_manifest`), where known;
//! 3. the shard is exactly the canonical size of the group's tensors, checked before any parsing
//!    (`too_large` above `max_bytes`, else `malformed`);
//! 4. [`validate_shard`]: hotkey, group, signature, committed hash, canonical encoding, content
//!    hash, key set, shapes, finite values;
//! 5. with the global model: value and distance bounds (`out_of_range`).

use super::validate::{ShardSpec, validate_shard};
use super::verdict::Verdict;
use crate::pol::ScreenConfig;
use crate::pol::screen::check_bounds;
use crate::protocol::connito::SignedManifest;
use crate::tensors::{Hash32, StateDict, canonical_size};

/// Largest manifest accepted, bytes (a manifest is about 400).
pub const MAX_MANIFEST_BYTES: usize = 4 << 10;

/// What the round expects of a submission; `None` where it is not known (offline checks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub cycle: Option<u64>,
    pub global_version: Option<u64>,
    /// The hotkey that committed on chain (offline: the manifest's own).
    pub hotkey: Option<[u8; 32]>,
    /// The hash committed on chain (offline: the manifest's binding hash).
    pub committed: Option<Hash32>,
}

/// A submission that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub signed: SignedManifest,
    pub shard: StateDict,
    /// `‖θ − θ_global‖ / ‖θ_global‖`, when the global model was given.
    pub delta_ratio: Option<f64>,
}

/// A refused submission: its verdict and a sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", verdict.label())]
pub struct Refused {
    pub verdict: Verdict,
    pub reason: String,
}

fn refuse<T>(verdict: Verdict, reason: impl Into<String>) -> Result<T, Refused> {
    Err(Refused {
        verdict,
        reason: reason.into(),
    })
}

/// Parses a manifest (bounded size). Unknown fields are ignored: they are not signed, and the
/// binding hash, which is, covers everything a validator uses.
pub fn parse_manifest(bytes: &[u8]) -> Result<SignedManifest, Refused> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return refuse(
            Verdict::Malformed,
            format!(
                "manifest is {} bytes, at most {MAX_MANIFEST_BYTES}",
                bytes.len()
            ),
        );
    }
    serde_json::from_slice(bytes).or_else(|e| refuse(Verdict::Malformed, format!("manifest: {e}")))
}

/// The checks of the manifest alone (parsing, then the round's cycle and version): Intake runs
/// them before it fetches the shard, so a stale or unparsable manifest costs no shard download.
pub fn check_manifest(manifest: &[u8], exp: &Expected) -> Result<SignedManifest, Refused> {
    let signed = parse_manifest(manifest)?;
    let m = &signed.manifest;
    if let Some(c) = exp.cycle.filter(|c| *c != m.cycle) {
        return refuse(
            Verdict::StaleManifest,
            format!("manifest is for cycle {}, the round is {c}", m.cycle),
        );
    }
    if let Some(v) = exp.global_version.filter(|v| *v != m.global_version) {
        return refuse(
            Verdict::StaleManifest,
            format!(
                "manifest trained from global version {}, the round's is {v}",
                m.global_version
            ),
        );
    }
    Ok(signed)
}

/// Runs the checks in the module's order; the first failure is the verdict.
pub fn check_submission(
    manifest: &[u8],
    shard: &[u8],
    exp: &Expected,
    spec: &ShardSpec,
    global: Option<&StateDict>,
    screen: &ScreenConfig,
) -> Result<Checked, Refused> {
    let signed = check_manifest(manifest, exp)?;
    let m = &signed.manifest;
    check_size(shard.len(), spec)?;
    let committed = exp.committed.unwrap_or_else(|| m.binding_hash());
    let hotkey = exp.hotkey.unwrap_or(m.hotkey);
    let sd = validate_shard(shard, &signed, &committed, &hotkey, spec)
        .or_else(|r| refuse(Verdict::from(&r), r.to_string()))?;
    let delta_ratio = match global {
        Some(g) => Some(
            check_bounds(&sd, g, screen).or_else(|e| refuse(Verdict::OutOfRange, e.to_string()))?,
        ),
        None => None,
    };
    Ok(Checked {
        signed,
        shard: sd,
        delta_ratio,
    })
}

/// The size rule: exactly the canonical size of the group's tensors.
pub fn check_size(len: usize, spec: &ShardSpec) -> Result<(), Refused> {
    let want = canonical_size(&spec.expected);
    if len > spec.max_bytes {
        return refuse(
            Verdict::TooLarge,
            format!("shard is {len} bytes, at most {} allowed", spec.max_bytes),
        );
    }
    if len != want {
        return refuse(
            Verdict::Malformed,
            format!(
                "shard is {len} bytes; group {}'s canonical encoding is {want}",
                spec.group
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::{Hotkey, Manifest};
    use crate::tensors::{TensorBlob, blake2b_256, encode_safetensors};
    use std::collections::BTreeMap;

    const W: &str = "model.layers.0.mlp.experts.0.up_proj.weight";

    fn spec() -> ShardSpec {
        ShardSpec {
            group: 0,
            expected: BTreeMap::from([(W.to_string(), vec![2, 2])]),
            max_bytes: 1 << 20,
        }
    }

    fn screen() -> ScreenConfig {
        ScreenConfig {
            max_abs_weight: 10.0,
            max_delta_ratio: 1.0,
            dup_cosine: 0.99,
            dup_rel_l2: 1e-3,
        }
    }

    fn sd(v: [f32; 4]) -> StateDict {
        StateDict::from([(
            W.to_string(),
            TensorBlob::new(vec![2, 2], v.to_vec()).unwrap(),
        )])
    }

    fn make(values: [f32; 4], cycle: u64, version: u64) -> (Vec<u8>, Vec<u8>) {
        let key = Hotkey::dev("checker");
        let shard = encode_safetensors(&sd(values));
        let m = Manifest {
            hotkey: key.public(),
            group: 0,
            cycle,
            global_version: version,
            content_hash: blake2b_256(&shard),
        };
        let signed = SignedManifest::sign(m, &key);
        (serde_json::to_vec(&signed).unwrap(), shard)
    }

    fn verdict(r: Result<Checked, Refused>) -> Verdict {
        r.map(|_| Verdict::Accepted).unwrap_or_else(|e| e.verdict)
    }

    #[test]
    fn checks_table() {
        let global = sd([1.0, 1.0, 1.0, 1.0]);
        let round = Expected {
            cycle: Some(5),
            global_version: Some(2),
            ..Expected::default()
        };
        let (m, s) = make([1.1, 1.0, 1.0, 1.0], 5, 2);
        let ok = check_submission(&m, &s, &round, &spec(), Some(&global), &screen()).unwrap();
        assert!((ok.delta_ratio.unwrap() - 0.05).abs() < 1e-6);
        let rows: [(Vec<u8>, Vec<u8>, Verdict); 7] = [
            (b"{".to_vec(), s.clone(), Verdict::Malformed),
            (
                vec![b' '; MAX_MANIFEST_BYTES + 1],
                s.clone(),
                Verdict::Malformed,
            ),
            {
                let (m, s) = make([1.1, 1.0, 1.0, 1.0], 4, 2);
                (m, s, Verdict::StaleManifest)
            },
            {
                let (m, s) = make([1.1, 1.0, 1.0, 1.0], 5, 1);
                (m, s, Verdict::StaleManifest)
            },
            (m.clone(), [s.clone(), vec![0]].concat(), Verdict::Malformed),
            {
                let (m, s) = make([1e30, 1.0, 1.0, 1.0], 5, 2);
                (m, s, Verdict::OutOfRange)
            },
            {
                let (m, s) = make([9.0, 1.0, 1.0, 1.0], 5, 2);
                (m, s, Verdict::OutOfRange)
            },
        ];
        for (i, (m, s, want)) in rows.into_iter().enumerate() {
            let got = check_submission(&m, &s, &round, &spec(), Some(&global), &screen());
            assert_eq!(verdict(got), want, "row {i}");
        }
        // Offline (nothing known of the round, no model): only the submission itself counts.
        let (m, s) = make([9.0, 1.0, 1.0, 1.0], 4, 1);
        let offline = check_submission(&m, &s, &Expected::default(), &spec(), None, &screen());
        assert_eq!(offline.unwrap().delta_ratio, None);
    }

    #[test]
    fn size_is_checked_before_parsing() {
        let spec = spec();
        let want = canonical_size(&spec.expected);
        assert_eq!(check_size(want, &spec), Ok(()));
        assert_eq!(
            check_size(want - 1, &spec).unwrap_err().verdict,
            Verdict::Malformed
        );
        let small = ShardSpec {
            max_bytes: want - 1,
            ..spec
        };
        assert_eq!(
            check_size(want, &small).unwrap_err().verdict,
            Verdict::TooLarge
        );
    }
}
