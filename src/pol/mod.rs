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

use burn::tensor::{Device, FloatDType};

use crate::data::TokenBatch;
use crate::model::dsv2::Routing;
use crate::model::{ModelConfig, Params, loss_on_batch, to_param, to_params_as};
use crate::tensors::{Hash32, StateDict};

/// Loss of a model (already on the device) on each batch under `routing` (forward only, no
/// autodiff). A group's candidates and baseline are scored on the group's partial model
/// (`cfg.routing(Some(group))`), as SN102's validators do; the whole model's losses (merge
/// checks, reports) use `cfg.routing(None)`.
pub fn batch_losses(
    cfg: &ModelConfig,
    params: &Params,
    batches: &[TokenBatch],
    routing: &Routing,
    device: &Device,
) -> Vec<f64> {
    batches
        .iter()
        .map(|b| {
            let l: f32 = loss_on_batch(cfg, params, b, routing, device).into_scalar();
            f64::from(l)
        })
        .collect()
}

/// Runs `f` on `params` (the global model on the device) with a shard's tensors swapped in, then
/// swaps `global`'s back. Each replaced tensor is dropped before its replacement is uploaded, so
/// the device holds one model's tensors however many candidates are evaluated (no candidate
/// copy, not even of its group).
pub fn with_candidate<R>(
    params: &mut Params,
    global: &StateDict,
    shard: &StateDict,
    device: &Device,
    f: impl FnOnce(&Params) -> R,
) -> R {
    // Each tensor keeps the dtype the global one is stored in (`model.weight_dtype`).
    let mut dtypes = std::collections::BTreeMap::new();
    for (k, t) in shard {
        let dtype = params
            .remove(k)
            .map_or(FloatDType::F32, |old| FloatDType::from(old.dtype()));
        params.insert(k.clone(), to_param(k, t, device).cast(dtype));
        dtypes.insert(k, dtype);
    }
    let out = f(params);
    for k in shard.keys() {
        params.remove(k);
        if let Some(t) = global.get(k) {
            params.insert(k.clone(), to_param(k, t, device).cast(dtypes[k]));
        }
    }
    out
}

/// Mean loss of a model on batches under `routing` (`+inf` if any batch loss is not finite).
pub fn eval_loss(
    cfg: &ModelConfig,
    model: &StateDict,
    batches: &[TokenBatch],
    routing: &Routing,
    device: &Device,
) -> f64 {
    mean_loss(&batch_losses(
        cfg,
        &to_params_as(model, device, cfg.weight_dtype),
        batches,
        routing,
        device,
    ))
}

/// The evaluation batches of `domain` for a round seed: what every validator evaluates a
/// round's candidates on, and what the trainer's seed-guessing adversary tries to predict.
pub fn round_batches(
    cfg: &crate::config::LocalnetConfig,
    domain: &crate::data::Domain,
    seed: u64,
) -> Vec<TokenBatch> {
    crate::data::eval_batches(
        domain,
        cfg.seed,
        seed,
        cfg.pol.heldout_every,
        cfg.pol.eval_batches,
        cfg.pol.batch_rows,
        cfg.model.seq_len,
    )
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
    fn a_candidate_is_swapped_in_for_its_evaluation_and_out_after() {
        use crate::model::{ModelConfig, extract_group, from_params, init_state_dict, to_params};
        let cfg = ModelConfig::tiny();
        let device = Device::flex();
        let global = init_state_dict(&cfg, 1);
        let mut shard = extract_group(&cfg, &global, 1);
        for t in shard.values_mut() {
            t.data.iter_mut().for_each(|v| *v += 0.5);
        }
        let mut params = to_params(&global, &device);
        let seen = with_candidate(&mut params, &global, &shard, &device, |p| {
            from_params(&cfg, p)
        });
        assert_eq!(seen, crate::model::with_shard(&global, &shard));
        assert_eq!(
            from_params(&cfg, &params),
            global,
            "the global model is back"
        );
        assert_eq!(params.len(), global.len());
    }

    #[test]
    fn round_batches_follow_the_seed_and_the_config() {
        let cfg = crate::config::LocalnetConfig::default();
        let d = &cfg.domains[0];
        let tokens = |seed| -> Vec<Vec<u32>> {
            round_batches(&cfg, d, seed)
                .into_iter()
                .map(|b| b.tokens)
                .collect()
        };
        assert_eq!(tokens(1).len(), cfg.pol.eval_batches);
        assert_eq!(tokens(1), tokens(1), "every validator draws the same rows");
        assert_ne!(tokens(1), tokens(2));
    }

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
