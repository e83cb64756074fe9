//! Proof-of-Loss: how much a submission lowers held-out loss of the shared model.
//!
//! - [`margin`]: the score rule. The paired per-batch test a candidate's improvement must pass,
//!   `delta = mean improvement` when it does, `score = delta^exponent` (reference 1.2); any
//!   non-finite candidate batch makes its loss `+inf`.
//! - [`screen`]: bounds on a shard's values and distance from the global model, and
//!   near-duplicate detection on expert deltas.
//! - [`rewards`]: round points and weights.
//!
//! The evaluation batches come from a seed derived from a block hash that only exists after the
//! commit phases closed, so no miner can know them when it binds its submission.

mod margin;
mod rewards;
pub mod screen;

pub use margin::{Margin, PolScore, judge, mean_loss, paired_improvement};
pub use rewards::{
    HeldPoints, RewardConfig, Scored, points_of_current_holders, round_points, weights_from_history,
};
pub use screen::{OutOfRange, ScreenConfig, Similarity};

use burn::tensor::Device;

use crate::data::TokenBatch;
use crate::model::{ModelConfig, Params, loss_on_batch, to_params};
use crate::tensors::{Hash32, StateDict};

/// Loss of a model (already on the device) on each batch (forward only, no autodiff).
pub fn batch_losses(
    cfg: &ModelConfig,
    params: &Params,
    batches: &[TokenBatch],
    device: &Device,
) -> Vec<f64> {
    batches
        .iter()
        .map(|b| {
            let l: f32 = loss_on_batch(cfg, params, b, device).into_scalar();
            f64::from(l)
        })
        .collect()
}

/// `global` (on the device) with a shard's tensors swapped in: the candidate of a submission.
/// The other tensors are shared handles, so no copy of the model is made per candidate.
pub fn candidate_params(global: &Params, shard: &StateDict, device: &Device) -> Params {
    let mut out = global.clone();
    out.extend(to_params(shard, device));
    out
}

/// Mean loss of a model on batches (`+inf` if any batch loss is not finite).
pub fn eval_loss(
    cfg: &ModelConfig,
    model: &StateDict,
    batches: &[TokenBatch],
    device: &Device,
) -> f64 {
    mean_loss(&batch_losses(
        cfg,
        &to_params(model, device),
        batches,
        device,
    ))
}

/// The evaluation seed of a round: from the hash of a block after the commit phases closed,
/// BLAKE2b-256 of all 32 bytes of the hash and the cycle.
pub fn round_seed(block_hash: &Hash32, cycle: u64) -> u64 {
    let input = [block_hash.as_slice(), &cycle.to_le_bytes()].concat();
    crate::tensors::hash_u64(&crate::tensors::blake2b_256(&input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_seed_depends_on_hash_and_cycle() {
        let a = round_seed(&[1; 32], 1);
        assert_eq!(a, round_seed(&[1; 32], 1));
        assert_ne!(a, round_seed(&[2; 32], 1));
        assert_ne!(a, round_seed(&[1; 32], 2));
    }

    #[test]
    fn round_seed_depends_on_every_byte_of_the_hash() {
        let base = round_seed(&[0; 32], 7);
        for i in 0..32 {
            let mut h = [0; 32];
            h[i] = 1;
            assert_ne!(round_seed(&h, 7), base, "byte {i} is ignored");
        }
    }
}
