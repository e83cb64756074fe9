//! Proof-of-Loss: how much a submission lowers held-out loss of the shared model.
//!
//! `delta = max(0, baseline - candidate)`, `score = delta^exponent` (reference 1.2). Batches
//! whose loss is not finite are dropped from both sum and count; if none is finite the loss is
//! `+inf`. The evaluation batches come from a seed derived from a block hash that only exists
//! after the commit phases closed, so no miner can know them when it binds its submission.

mod rewards;

pub use rewards::{RewardConfig, Scored, round_points, weights_from_history};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::TokenBatch;
use crate::model::{ModelConfig, loss_on_batch, to_params};
use crate::tensors::{Hash32, StateDict};

/// The score of one submission.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolScore {
    pub baseline: f64,
    pub candidate: f64,
    pub delta: f64,
    pub score: f64,
}

/// Mean loss over the finite batch losses; `+inf` when none is finite or there are no batches.
pub fn mean_finite(losses: &[f64]) -> f64 {
    let finite: Vec<f64> = losses.iter().copied().filter(|l| l.is_finite()).collect();
    if finite.is_empty() {
        f64::INFINITY
    } else {
        finite.iter().sum::<f64>() / finite.len() as f64
    }
}

/// The score rule.
pub fn score(baseline: f64, candidate: f64, exponent: f64) -> PolScore {
    let delta = if baseline.is_finite() && candidate.is_finite() {
        (baseline - candidate).max(0.0)
    } else if baseline.is_infinite() && candidate.is_finite() {
        // A finite candidate against a broken baseline: no meaningful delta, no reward.
        0.0
    } else {
        0.0
    };
    PolScore {
        baseline,
        candidate,
        delta,
        score: delta.powf(exponent),
    }
}

/// Loss of a model on batches (forward only, no autodiff).
pub fn eval_loss(
    cfg: &ModelConfig,
    model: &StateDict,
    batches: &[TokenBatch],
    device: &Device,
) -> f64 {
    let params = to_params(model, device);
    let losses: Vec<f64> = batches
        .iter()
        .map(|b| {
            let l: f32 = loss_on_batch(cfg, &params, b, device).into_scalar();
            l as f64
        })
        .collect();
    mean_finite(&losses)
}

/// The evaluation seed of a round: from the hash of a block after the commit phases closed.
pub fn round_seed(block_hash: &Hash32, cycle: u64) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&block_hash[..8]);
    u64::from_le_bytes(bytes) ^ cycle.rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_is_clamped_at_zero() {
        let s = score(2.0, 2.5, 1.2);
        assert_eq!(s.delta, 0.0);
        assert_eq!(s.score, 0.0);
    }

    #[test]
    fn score_is_delta_to_the_exponent() {
        let s = score(3.0, 2.0, 1.2);
        assert_eq!(s.delta, 1.0);
        assert!((score(3.0, 2.5, 1.2).score - 0.5f64.powf(1.2)).abs() < 1e-12);
    }

    #[test]
    fn non_finite_batches_are_dropped_and_all_non_finite_is_inf() {
        assert_eq!(mean_finite(&[1.0, f64::NAN, 3.0]), 2.0);
        assert_eq!(mean_finite(&[f64::NAN, f64::INFINITY]), f64::INFINITY);
        assert_eq!(score(2.0, f64::INFINITY, 1.2).score, 0.0);
        assert_eq!(score(f64::INFINITY, 1.0, 1.2).score, 0.0);
    }

    #[test]
    fn round_seed_depends_on_hash_and_cycle() {
        let a = round_seed(&[1; 32], 1);
        assert_ne!(a, round_seed(&[2; 32], 1));
        assert_ne!(a, round_seed(&[1; 32], 2));
    }
}
