//! The forward pass and the language-modelling loss.

use std::collections::BTreeMap;

use burn::tensor::activation::{log_softmax, silu, softmax};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use super::{ModelConfig, expert_key};
use crate::data::TokenBatch;

/// Parameters by name, all rank 2 (`[1, n]` for norm weights).
pub type Params = BTreeMap<String, Tensor<2>>;

const NORM_EPS: f64 = 1e-5;

fn p(params: &Params, name: &str) -> Tensor<2> {
    params
        .get(name)
        .unwrap_or_else(|| {
            panic!("parameter {name} missing (state dicts are validated before use)")
        })
        .clone()
}

/// `x [n, in] · w[out, in]ᵀ -> [n, out]`.
fn linear(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    x.matmul(w.transpose())
}

fn rms_norm(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    let inv = x
        .clone()
        .powf_scalar(2.0)
        .mean_dim(1)
        .add_scalar(NORM_EPS)
        .sqrt()
        .recip();
    x.mul(inv).mul(w)
}

fn attention(cfg: &ModelConfig, params: &Params, l: usize, x: Tensor<2>, b: usize) -> Tensor<2> {
    let (t, d, h) = (cfg.seq_len, cfg.d_model, cfg.n_heads);
    let hd = d / h;
    let name = |p: &str| format!("model.layers.{l}.self_attn.{p}.weight");
    let heads = |w: &str| {
        linear(x.clone(), p(params, &name(w)))
            .reshape([b, t, h, hd])
            .swap_dims(1, 2)
    };
    let (q, k, v) = (heads("q_proj"), heads("k_proj"), heads("v_proj"));
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((hd as f64).sqrt());
    let device = scores.device();
    let mask = Tensor::<2, Bool>::tril_mask([t, t], 0, &device)
        .reshape([1, 1, t, t])
        .expand([b, h, t, t]);
    let att = softmax(scores.mask_fill(mask, -1e9), 3);
    let out = att.matmul(v).swap_dims(1, 2).reshape([b * t, d]);
    linear(out, p(params, &name("o_proj")))
}

/// Gate weights `[n, n_experts]`: softmax router probabilities with only the top-k kept per
/// token, renormalized to sum to 1.
fn route_gates(cfg: &ModelConfig, route: Tensor<2>, router: Tensor<2>) -> Tensor<2> {
    let probs = softmax(linear(route, router), 1);
    let kth = probs.clone().topk(cfg.top_k, 1).narrow(1, cfg.top_k - 1, 1);
    let keep = probs.clone().greater_equal(kth).float();
    let gates = probs.mul(keep);
    gates.clone().div(gates.sum_dim(1).add_scalar(1e-9))
}

/// Per layer, the fraction of the batch's routing weight each expert receives (each layer's
/// fractions sum to 1): the expert load a trainer reports.
pub fn expert_load(
    cfg: &ModelConfig,
    params: &Params,
    batch: &TokenBatch,
    device: &Device,
) -> Vec<Vec<f64>> {
    let (inputs, _) = batch_tensors(batch, device);
    let n = batch.rows * batch.seq_len;
    let tok = p(params, "model.embed_tokens.weight").select(0, inputs.reshape([n]));
    (0..cfg.n_layers)
        .map(|l| {
            let router = p(params, &format!("model.layers.{l}.mlp.gate.weight"));
            let per_expert: Vec<f32> = route_gates(cfg, tok.clone(), router)
                .sum_dim(0)
                .div_scalar(n as f64)
                .to_data()
                .try_to_vec::<f32>()
                .expect("float tensors read back as f32");
            per_expert.into_iter().map(f64::from).collect()
        })
        .collect()
}

/// `route` is the tokens' input embedding `[n, d]`; `x` the normalized residual stream.
fn moe(cfg: &ModelConfig, params: &Params, l: usize, x: Tensor<2>, route: Tensor<2>) -> Tensor<2> {
    let router = p(params, &format!("model.layers.{l}.mlp.gate.weight"));
    // The router reads the token's (frozen) embedding, so routing is a stable function of the
    // token: training one group's experts can never move another group's tokens into or out of
    // them, and groups trained by different miners compose when merged.
    let gates = route_gates(cfg, route, router);
    let mut out: Option<Tensor<2>> = None;
    for e in 0..cfg.n_experts {
        let gate = linear(x.clone(), p(params, &expert_key(l, e, "gate_proj")));
        let up = linear(x.clone(), p(params, &expert_key(l, e, "up_proj")));
        let y = linear(
            silu(gate).mul(up),
            p(params, &expert_key(l, e, "down_proj")),
        );
        let y = y.mul(gates.clone().narrow(1, e, 1));
        out = Some(match out {
            Some(acc) => acc.add(y),
            None => y,
        });
    }
    out.expect("n_experts >= 1")
}

/// Logits `[b * seq_len, vocab]` for input tokens `[b, seq_len]`.
pub fn forward_logits(cfg: &ModelConfig, params: &Params, inputs: Tensor<2, Int>) -> Tensor<2> {
    let [b, t] = inputs.dims();
    assert_eq!(t, cfg.seq_len, "inputs must be seq_len wide");
    let flat = inputs.reshape([b * t]);
    let pos = p(params, "model.embed_positions.weight").repeat_dim(0, b);
    let tok = p(params, "model.embed_tokens.weight").select(0, flat);
    let mut x = tok.clone().add(pos);
    for l in 0..cfg.n_layers {
        let n1 = rms_norm(
            x.clone(),
            p(params, &format!("model.layers.{l}.input_layernorm.weight")),
        );
        x = x.add(attention(cfg, params, l, n1, b));
        let n2 = rms_norm(
            x.clone(),
            p(
                params,
                &format!("model.layers.{l}.post_attention_layernorm.weight"),
            ),
        );
        x = x.add(moe(cfg, params, l, n2, tok.clone()));
    }
    let x = rms_norm(x, p(params, "model.norm.weight"));
    linear(x, p(params, "lm_head.weight"))
}

/// Input and target token tensors of a batch.
pub fn batch_tensors(batch: &TokenBatch, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let w = batch.seq_len + 1;
    let mut inputs = Vec::with_capacity(batch.rows * batch.seq_len);
    let mut targets = Vec::with_capacity(batch.rows * batch.seq_len);
    for r in 0..batch.rows {
        let row = &batch.tokens[r * w..(r + 1) * w];
        inputs.extend(row[..batch.seq_len].iter().map(|t| *t as i64));
        targets.extend(row[1..].iter().map(|t| *t as i64));
    }
    let shape = [batch.rows, batch.seq_len];
    (
        Tensor::from_data(TensorData::new(inputs, shape), device),
        Tensor::from_data(TensorData::new(targets, shape), device),
    )
}

/// Mean next-token cross-entropy (nats) of a batch, as a `[1]` tensor (differentiable when the
/// parameters are).
pub fn loss_on_batch(
    cfg: &ModelConfig,
    params: &Params,
    batch: &TokenBatch,
    device: &Device,
) -> Tensor<1> {
    let (inputs, targets) = batch_tensors(batch, device);
    let n = batch.rows * batch.seq_len;
    let logp = log_softmax(forward_logits(cfg, params, inputs), 1);
    let picked = logp.gather(1, targets.reshape([n, 1]));
    picked.mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Domain, Sampler, Split};
    use crate::model::{init_state_dict, to_params};

    #[test]
    fn initial_loss_is_no_better_than_uniform() {
        let cfg = ModelConfig::tiny();
        let device = Device::flex();
        let params = to_params(&init_state_dict(&cfg, 1), &device);
        let batch =
            Sampler::new(Domain::Arithmetic, 1, Split::Train, 8, 0).next_batch(4, cfg.seq_len);
        let loss: f32 = loss_on_batch(&cfg, &params, &batch, &device).into_scalar();
        assert!(loss.is_finite());
        // A random model cannot beat the uniform distribution by much (ln 256 = 5.55 nats).
        assert!(loss > (256f32).ln() - 0.5 && loss < 40.0, "loss {loss}");
    }

    #[test]
    fn expert_load_sums_to_one_and_follows_the_warm_router() {
        let cfg = ModelConfig::tiny();
        let device = Device::flex();
        let mut sd = init_state_dict(&cfg, 1);
        let text = |d: Domain| (0..50).map(|i| d.sample(1, i)).collect::<String>();
        crate::model::warm_start_router(
            &cfg,
            &mut sd,
            &[text(Domain::Arithmetic), text(Domain::Sorting)],
            4.0,
            1,
        );
        let params = to_params(&sd, &device);
        let batch =
            Sampler::new(Domain::Arithmetic, 1, Split::Train, 8, 0).next_batch(4, cfg.seq_len);
        let load = expert_load(&cfg, &params, &batch, &device);
        assert_eq!(load.len(), cfg.n_layers);
        for layer in &load {
            assert!((layer.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{layer:?}");
            assert!(
                layer[0] + layer[1] > 0.7,
                "arithmetic should load group 0: {layer:?}"
            );
        }
    }

    #[test]
    fn future_tokens_do_not_change_past_logits() {
        let cfg = ModelConfig::tiny();
        let device = Device::flex();
        let params = to_params(&init_state_dict(&cfg, 2), &device);
        let t = cfg.seq_len;
        let a: Vec<i64> = (0..t as i64).map(|i| 40 + i).collect();
        let mut b = a.clone();
        b[t - 1] = 7;
        let run = |v: Vec<i64>| {
            let x = Tensor::<2, Int>::from_data(TensorData::new(v, [1, t]), &device);
            forward_logits(&cfg, &params, x)
                .narrow(0, 0, t - 1)
                .to_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(run(a), run(b), "causal mask leaks the future");
    }
}
