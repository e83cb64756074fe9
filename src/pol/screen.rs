//! Screens a validated shard passes before it is scored: bounds on its values and on how far it
//! moved from the global model, and near-duplicate detection on its expert delta.
//!
//! A shard's *delta* is `θ − θ_global` over its tensors, flattened in key order (a shard's keys
//! are exactly its group's expert tensors, so two shards of one group have equal-length deltas).
//! Two deltas are near-duplicates when their cosine similarity is at least `dup_cosine` or their
//! relative L2 distance `‖a − b‖ / max(‖a‖, ‖b‖)` is at most `dup_rel_l2`. Two all-zero deltas
//! (free riders, replays of a fully merged shard) are duplicates (distance 0); a zero delta and a
//! non-zero one have cosine 0 and distance 1.

use serde::{Deserialize, Serialize};

use crate::tensors::StateDict;

/// Bounds and near-duplicate thresholds (part of `[pol]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScreenConfig {
    /// Largest accepted `|w|` of any value in a shard.
    pub max_abs_weight: f32,
    /// Largest accepted `‖θ − θ_global‖ / ‖θ_global‖` over the shard's tensors.
    pub max_delta_ratio: f64,
    /// Cosine similarity of deltas at or above which a later submission is a near-duplicate.
    pub dup_cosine: f64,
    /// Relative L2 distance of deltas at or below which a later submission is a near-duplicate.
    pub dup_rel_l2: f64,
}

/// Why a shard's values are out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutOfRange {
    #[error("tensor {name} holds {value}, beyond the bound ±{max}")]
    Weight { name: String, value: f32, max: f32 },
    #[error("‖θ − θ_global‖ / ‖θ_global‖ = {ratio:.4}, beyond the bound {max}")]
    Delta { ratio: f64, max: f64 },
    #[error("tensor {0} is not in the global model (or has another length)")]
    Unknown(String),
}

/// How alike two deltas are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    pub cosine: f64,
    pub rel_l2: f64,
}

/// Checks `shard`'s values against `max_abs_weight`, and its distance from `global` against
/// `max_delta_ratio`. Returns the delta ratio on success.
pub fn check_bounds(
    shard: &StateDict,
    global: &StateDict,
    cfg: &ScreenConfig,
) -> Result<f64, OutOfRange> {
    for (name, t) in shard {
        if let Some(v) = t.data.iter().find(|v| v.abs() > cfg.max_abs_weight) {
            return Err(OutOfRange::Weight {
                name: name.clone(),
                value: *v,
                max: cfg.max_abs_weight,
            });
        }
    }
    let (mut diff, mut base) = (0f64, 0f64);
    for (name, t) in shard {
        let g = global
            .get(name)
            .filter(|g| g.data.len() == t.data.len())
            .ok_or_else(|| OutOfRange::Unknown(name.clone()))?;
        for (a, b) in t.data.iter().zip(&g.data) {
            diff += (f64::from(*a) - f64::from(*b)).powi(2);
            base += f64::from(*b).powi(2);
        }
    }
    let ratio = if base > 0.0 {
        (diff / base).sqrt()
    } else if diff > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    if ratio.is_nan() || ratio > cfg.max_delta_ratio {
        return Err(OutOfRange::Delta {
            ratio,
            max: cfg.max_delta_ratio,
        });
    }
    Ok(ratio)
}

/// `θ − θ_global` over the shard's tensors, in key order. Keys missing from `global` count the
/// global value as 0 (validated shards never have such keys).
pub fn delta_of(shard: &StateDict, global: &StateDict) -> Vec<f32> {
    let mut out = Vec::with_capacity(shard.values().map(|t| t.data.len()).sum());
    for (name, t) in shard {
        match global.get(name).filter(|g| g.data.len() == t.data.len()) {
            Some(g) => out.extend(t.data.iter().zip(&g.data).map(|(a, b)| a - b)),
            None => out.extend_from_slice(&t.data),
        }
    }
    out
}

/// Cosine similarity and relative L2 distance of two deltas (f64 accumulation). Deltas of
/// different lengths are unrelated (cosine 0, distance 1).
pub fn similarity(a: &[f32], b: &[f32]) -> Similarity {
    if a.len() != b.len() {
        return Similarity {
            cosine: 0.0,
            rel_l2: 1.0,
        };
    }
    let (mut dot, mut na, mut nb, mut nd) = (0f64, 0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
        nd += (x - y) * (x - y);
    }
    let (na, nb, nd) = (na.sqrt(), nb.sqrt(), nd.sqrt());
    let cosine = if na > 0.0 && nb > 0.0 {
        dot / (na * nb)
    } else if na == 0.0 && nb == 0.0 {
        1.0
    } else {
        0.0
    };
    let scale = na.max(nb);
    let rel_l2 = if scale > 0.0 { nd / scale } else { 0.0 };
    Similarity { cosine, rel_l2 }
}

impl ScreenConfig {
    /// Whether two deltas this alike are one submission copied.
    pub fn is_near_duplicate(&self, s: Similarity) -> bool {
        s.cosine >= self.dup_cosine || s.rel_l2 <= self.dup_rel_l2
    }
}

/// What comparing a delta with the earlier ones found.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared<K> {
    /// The first of the earlier deltas it nearly duplicates, with how alike they are.
    pub duplicate: Option<(K, Similarity)>,
    /// The highest cosine similarity to any of them (how close honest work comes to the
    /// threshold; `None` when there was nothing to compare with).
    pub max_cosine: Option<f64>,
}

/// Compares `delta` with every one of `earlier` (in the order given: earliest commit first).
pub fn compare<'a, K>(
    cfg: &ScreenConfig,
    delta: &[f32],
    earlier: impl IntoIterator<Item = (K, &'a [f32])>,
) -> Compared<K> {
    let mut out = Compared {
        duplicate: None,
        max_cosine: None,
    };
    for (k, d) in earlier {
        let s = similarity(delta, d);
        out.max_cosine = Some(out.max_cosine.map_or(s.cosine, |m: f64| m.max(s.cosine)));
        if out.duplicate.is_none() && cfg.is_near_duplicate(s) {
            out.duplicate = Some((k, s));
        }
    }
    out
}

/// The first of `earlier` (in the order given: earliest commit first) that `delta` nearly
/// duplicates, with how alike they are.
pub fn first_near_duplicate<'a, K>(
    cfg: &ScreenConfig,
    delta: &[f32],
    earlier: impl IntoIterator<Item = (K, &'a [f32])>,
) -> Option<(K, Similarity)> {
    earlier
        .into_iter()
        .map(|(k, d)| (k, similarity(delta, d)))
        .find(|(_, s)| cfg.is_near_duplicate(*s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::TensorBlob;

    fn cfg() -> ScreenConfig {
        ScreenConfig {
            max_abs_weight: 10.0,
            max_delta_ratio: 1.0,
            dup_cosine: 0.99,
            dup_rel_l2: 1e-3,
        }
    }

    fn sd(values: &[f32]) -> StateDict {
        StateDict::from([(
            "w".to_string(),
            TensorBlob::new(vec![values.len()], values.to_vec()).unwrap(),
        )])
    }

    #[test]
    fn bounds_table() {
        let global = sd(&[1.0, 1.0, 1.0, 1.0]);
        let rows: [(&[f32], Result<f64, &str>); 6] = [
            (&[1.0, 1.0, 1.0, 1.0], Ok(0.0)),
            (&[2.0, 1.0, 1.0, 1.0], Ok(0.5)),
            (&[3.0, 1.0, 1.0, 1.0], Ok(1.0)),
            (&[3.1, 1.0, 1.0, 1.0], Err("delta")),
            (&[1e30, 1.0, 1.0, 1.0], Err("weight")),
            (&[-11.0, 1.0, 1.0, 1.0], Err("weight")),
        ];
        for (values, want) in rows {
            let got = check_bounds(&sd(values), &global, &cfg());
            match (got, want) {
                (Ok(r), Ok(w)) => assert!((r - w).abs() < 1e-9, "{values:?}: {r}"),
                (Err(OutOfRange::Delta { .. }), Err("delta")) => {}
                (Err(OutOfRange::Weight { .. }), Err("weight")) => {}
                (got, want) => panic!("{values:?}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn bounds_of_a_zero_global_and_unknown_tensors() {
        let zero = sd(&[0.0, 0.0]);
        assert_eq!(check_bounds(&zero, &zero, &cfg()), Ok(0.0));
        assert!(matches!(
            check_bounds(&sd(&[0.0, 1.0]), &zero, &cfg()),
            Err(OutOfRange::Delta { ratio, .. }) if ratio.is_infinite()
        ));
        assert_eq!(
            check_bounds(&sd(&[0.0]), &zero, &cfg()),
            Err(OutOfRange::Unknown("w".into()))
        );
    }

    #[test]
    fn similarity_table() {
        let a = [1.0f32, 2.0, 3.0];
        let rows: [(&[f32], &[f32], f64, f64); 6] = [
            (&a, &a, 1.0, 0.0),
            (&a, &[-1.0, -2.0, -3.0], -1.0, 2.0),
            (&[1.0, 0.0], &[0.0, 1.0], 0.0, std::f64::consts::SQRT_2),
            (&[0.0, 0.0], &[0.0, 0.0], 1.0, 0.0),
            (&[0.0, 0.0], &[0.0, 1.0], 0.0, 1.0),
            (&[1.0, 0.0], &[1.0, 0.0, 0.0], 0.0, 1.0),
        ];
        for (x, y, cos, rel) in rows {
            let s = similarity(x, y);
            assert!((s.cosine - cos).abs() < 1e-12, "{x:?} {y:?}: {s:?}");
            assert!((s.rel_l2 - rel).abs() < 1e-12, "{x:?} {y:?}: {s:?}");
        }
    }

    #[test]
    fn one_bit_flip_and_scaling_are_near_duplicates_independent_deltas_are_not() {
        let n = 4096;
        let mut r = crate::rng::SplitMix64::new(7);
        let a: Vec<f32> = (0..n).map(|_| r.normal_f32() * 1e-2).collect();
        let b: Vec<f32> = (0..n).map(|_| r.normal_f32() * 1e-2).collect();
        let mut flipped = a.clone();
        flipped[17] = f32::from_bits(flipped[17].to_bits() ^ 1);
        let scaled: Vec<f32> = a.iter().map(|v| v * 1.5).collect();
        let c = cfg();
        assert!(c.is_near_duplicate(similarity(&flipped, &a)));
        assert!(c.is_near_duplicate(similarity(&scaled, &a)));
        assert!(!c.is_near_duplicate(similarity(&b, &a)));
        let earlier: [(u16, &[f32]); 2] = [(1, &b), (2, &a)];
        let (uid, s) = first_near_duplicate(&c, &flipped, earlier).unwrap();
        assert_eq!(uid, 2);
        assert!(s.cosine > 0.999_999);
        assert!(first_near_duplicate(&c, &b, [(2u16, a.as_slice())]).is_none());
        let all = compare(&c, &flipped, earlier);
        assert_eq!(all.duplicate.map(|(k, _)| k), Some(2));
        assert!(all.max_cosine.unwrap() > 0.999_999);
        let none = compare(&c, &b, [(2u16, a.as_slice())]);
        assert!(none.duplicate.is_none() && none.max_cosine.unwrap().abs() < 0.1);
        assert_eq!(compare::<u16>(&c, &b, []).max_cosine, None);
    }

    #[test]
    fn delta_is_shard_minus_global_in_key_order() {
        let mut shard = sd(&[3.0, 1.0]);
        shard.insert("a".into(), TensorBlob::new(vec![1], vec![5.0]).unwrap());
        let mut global = sd(&[1.0, 1.0]);
        global.insert("a".into(), TensorBlob::new(vec![1], vec![4.0]).unwrap());
        assert_eq!(delta_of(&shard, &global), vec![1.0, 2.0, 0.0]);
    }
}
