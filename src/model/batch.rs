//! The model on token batches: the losses training and Proof-of-Loss use, and expert load.

use std::collections::BTreeMap;

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::ModelConfig;
use super::dsv2::{self, Routing};
use crate::data::TokenBatch;

/// Parameters on a device, by Hugging Face name (rank-1 tensors as `[1, n]`).
pub type Params = BTreeMap<String, Tensor<2>>;

/// A batch's rows (`seq_len + 1` tokens each: the model predicts every token after the first)
/// as a `[rows, seq_len + 1]` tensor.
pub fn batch_inputs(batch: &TokenBatch, device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = batch.tokens.iter().map(|t| i64::from(*t)).collect();
    Tensor::from_data(
        TensorData::new(ids, [batch.rows, batch.seq_len + 1]),
        device,
    )
}

/// The losses of one batch, each `[1]` (differentiable when the parameters are).
pub struct BatchLoss {
    /// Mean next-token cross-entropy (nats) over the batch's `rows · seq_len` predictions.
    pub loss: Tensor<1>,
    /// The architecture's auxiliary balance loss (already times `aux_loss_alpha`); `None` where
    /// `aux_loss_alpha` is 0.
    pub aux: Option<Tensor<1>>,
}

/// [`BatchLoss`] of `batch` under `routing` (the whole model, or one group's partial model).
pub fn losses_on_batch(
    cfg: &ModelConfig,
    params: &Params,
    batch: &TokenBatch,
    routing: &Routing,
    device: &Device,
) -> BatchLoss {
    let inputs = batch_inputs(batch, device);
    let out = dsv2::forward(&cfg.arch, params, inputs.clone(), routing);
    BatchLoss {
        loss: dsv2::next_token_loss(out.logits, inputs),
        aux: out.aux,
    }
}

/// Mean next-token cross-entropy (nats) of a batch under `routing`, as `[1]`.
pub fn loss_on_batch(
    cfg: &ModelConfig,
    params: &Params,
    batch: &TokenBatch,
    routing: &Routing,
    device: &Device,
) -> Tensor<1> {
    losses_on_batch(cfg, params, batch, routing, device).loss
}

/// Per MoE layer (ascending), the share of `batch`'s routing slots each routed expert gets
/// under `routing`: the expert load a trainer reports.
pub fn expert_load(
    cfg: &ModelConfig,
    params: &Params,
    batch: &TokenBatch,
    routing: &Routing,
    device: &Device,
) -> Vec<Vec<f64>> {
    dsv2::forward(&cfg.arch, params, batch_inputs(batch, device), routing).loads
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Domain, Sampler, Split};
    use crate::model::{init_state_dict, to_params};

    fn batch(cfg: &ModelConfig, d: Domain) -> TokenBatch {
        Sampler::new(d, 1, Split::Train, 8, 0).next_batch(4, cfg.seq_len)
    }

    #[test]
    fn initial_loss_is_no_better_than_uniform() {
        let cfg = ModelConfig::tiny();
        let device = Device::flex();
        let params = to_params(&init_state_dict(&cfg, 1), &device);
        let b = batch(&cfg, Domain::Arithmetic);
        for routing in [cfg.routing(None), cfg.routing(Some(1))] {
            let loss: f32 = loss_on_batch(&cfg, &params, &b, &routing, &device).into_scalar();
            assert!(loss > (256f32).ln() - 0.5 && loss < 40.0, "loss {loss}");
        }
    }

    #[test]
    fn expert_load_sums_to_one_and_a_partial_model_uses_only_its_group() {
        let cfg = ModelConfig::tiny();
        let device = Device::flex();
        let sd = crate::model::warm_started(&cfg, 2);
        let params = to_params(&sd, &device);
        let b = batch(&cfg, Domain::Arithmetic);
        let full = expert_load(&cfg, &params, &b, &cfg.routing(None), &device);
        assert_eq!(full.len(), cfg.moe_layers().count());
        for layer in &full {
            assert!((layer.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{layer:?}");
        }
        // The warm-started router sends arithmetic to group 0 in every MoE layer of the whole
        // model (all but the `;` separators, which both domains use).
        for layer in &full {
            let own: f64 = layer[cfg.group_experts(0)].iter().sum();
            assert!(own > 0.9, "group 0 gets {own} of arithmetic's routing");
        }
        let partial = expert_load(&cfg, &params, &b, &cfg.routing(Some(1)), &device);
        for layer in &partial {
            let outside: f64 = layer[cfg.group_experts(0)].iter().sum();
            assert_eq!(outside, 0.0, "{layer:?}");
        }
    }

    #[test]
    fn the_aux_loss_is_reported_and_the_cross_entropy_has_a_gradient_for_experts() {
        let cfg = ModelConfig::tiny();
        let device = Device::flex().autodiff();
        let mut params = to_params(&init_state_dict(&cfg, 3), &device);
        let l = cfg.moe_layers().next().unwrap();
        let name = format!("model.layers.{l}.mlp.experts.5.up_proj.weight");
        let leaf = params[&name].clone().require_grad();
        params.insert(name.clone(), leaf.clone());
        let b = batch(&cfg, Domain::Sorting);
        let out = losses_on_batch(&cfg, &params, &b, &cfg.routing(Some(1)), &device);
        let aux: f32 = out
            .aux
            .expect("tiny has aux_loss_alpha > 0")
            .inner()
            .into_scalar();
        assert!(aux.is_finite() && aux > 0.0, "aux {aux}");
        let grads = out.loss.backward();
        let g: f32 = leaf.grad(&grads).unwrap().abs().sum().into_scalar();
        assert!(g > 0.0, "no gradient reaches group 1's expert 5");
    }
}
