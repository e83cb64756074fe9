//! The forward pass and the language-modelling loss.

use std::collections::BTreeMap;

use burn::tensor::activation::{log_softmax, silu, softmax};
use burn::tensor::{Bool, Device, IndexingUpdateOp, Int, Tensor, TensorData};

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
        .square()
        .mean_dim(1)
        .add_scalar(NORM_EPS)
        .sqrt()
        .recip();
    x.mul(inv).mul(w)
}

/// Rotary position tables `(cos, sin)`, each `[t, hd]` (halves repeated), computed on the host
/// in f64 so every backend sees the same constants.
pub(crate) fn rope_tables(t: usize, hd: usize, theta: u32) -> (Vec<f32>, Vec<f32>) {
    let half = hd / 2;
    let mut cos = Vec::with_capacity(t * hd);
    let mut sin = Vec::with_capacity(t * hd);
    for pos in 0..t {
        for _half in 0..2 {
            for i in 0..half {
                let inv_freq = (theta as f64).powf(-2.0 * i as f64 / hd as f64);
                let angle = pos as f64 * inv_freq;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
    }
    (cos, sin)
}

/// Rotates `x [b, h, t, hd]` by its positions (rotate-half convention).
fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [_, _, _, hd] = x.dims();
    let half = hd / 2;
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x.mul(cos.clone()).add(rotated.mul(sin.clone()))
}

struct Rope {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

impl Rope {
    fn new(cfg: &ModelConfig, t: usize, device: &Device) -> Self {
        let hd = cfg.d_model / cfg.n_heads;
        let (cos, sin) = rope_tables(t, hd, cfg.rope_theta);
        let up = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, 1, t, hd]), device);
        Self {
            cos: up(cos),
            sin: up(sin),
        }
    }
}

fn attention(
    cfg: &ModelConfig,
    params: &Params,
    l: usize,
    x: Tensor<2>,
    b: usize,
    rope: &Rope,
) -> Tensor<2> {
    let [n, d] = x.dims();
    let (t, h) = (n / b, cfg.n_heads);
    let hd = d / h;
    let name = |p: &str| format!("model.layers.{l}.self_attn.{p}.weight");
    let heads = |w: &str| {
        linear(x.clone(), p(params, &name(w)))
            .reshape([b, t, h, hd])
            .swap_dims(1, 2)
    };
    let q = apply_rope(heads("q_proj"), &rope.cos, &rope.sin);
    let k = apply_rope(heads("k_proj"), &rope.cos, &rope.sin);
    let v = heads("v_proj");
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((hd as f64).sqrt());
    let device = scores.device();
    let mask = Tensor::<2, Bool>::tril_mask([t, t], 0, &device)
        .reshape([1, 1, t, t])
        .expand([b, h, t, t]);
    let att = softmax(scores.mask_fill(mask, -1e9), 3);
    let out = att.matmul(v).swap_dims(1, 2).reshape([b * t, d]);
    linear(out, p(params, &name("o_proj")))
}

/// Keeps each token's top-k router probabilities, renormalized to sum to 1 (`[n, n_experts]`).
fn top_k_gates(cfg: &ModelConfig, probs: Tensor<2>) -> Tensor<2> {
    let kth = probs.clone().topk(cfg.top_k, 1).narrow(1, cfg.top_k - 1, 1);
    let keep = probs.clone().greater_equal(kth).float();
    let gates = probs.mul(keep);
    gates.clone().div(gates.sum_dim(1).add_scalar(1e-9))
}

/// Gate weights `[n, n_experts]`: softmax router probabilities with only the top-k kept per
/// token, renormalized to sum to 1.
fn route_gates(cfg: &ModelConfig, route: Tensor<2>, router: Tensor<2>) -> Tensor<2> {
    top_k_gates(cfg, softmax(linear(route, router), 1))
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

/// `silu(x·gateᵀ) ⊙ (x·upᵀ) · downᵀ`.
fn swiglu(x: Tensor<2>, gate: Tensor<2>, up: Tensor<2>, down: Tensor<2>) -> Tensor<2> {
    let g = linear(x.clone(), gate);
    let u = linear(x, up);
    linear(silu(g).mul(u), down)
}

/// The MoE feed-forward of layer `l` and its load-balancing loss. `route` is the tokens' input
/// embedding `[n, d]`; `x` the normalized residual stream.
///
/// Tokens are dispatched: each expert runs only on the rows routed to it (gathered by index and
/// scattered back with an add, experts in ascending order, so the sum is deterministic). The
/// auxiliary loss is Switch Transformer's `E · Σ_e f_e · P_e` (`f_e` the fraction of routing
/// slots expert `e` got, `P_e` its mean router probability): 1 when balanced, up to `E` when one
/// expert takes everything.
fn moe(
    cfg: &ModelConfig,
    params: &Params,
    l: usize,
    x: Tensor<2>,
    route: Tensor<2>,
) -> (Tensor<2>, Tensor<1>) {
    let router = p(params, &format!("model.layers.{l}.mlp.gate.weight"));
    // The router reads the token's (frozen) embedding, so routing is a stable function of the
    // token: training one group's experts can never move another group's tokens into or out of
    // them, and groups trained by different miners compose when merged.
    let probs = softmax(linear(route, router), 1);
    let gates = top_k_gates(cfg, probs.clone());
    let [n, _] = x.dims();
    let e_count = cfg.n_experts;
    let host: Vec<f32> = gates
        .clone()
        .to_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensors read back as f32");
    let device = x.device();
    let mut out = if cfg.shared_expert {
        let key = |t: &str| super::shared_expert_key(l, t);
        swiglu(
            x.clone(),
            p(params, &key("gate_proj")),
            p(params, &key("up_proj")),
            p(params, &key("down_proj")),
        )
    } else {
        x.zeros_like()
    };
    let mut slots = vec![0f32; e_count];
    for (e, slot) in slots.iter_mut().enumerate() {
        let rows: Vec<i64> = (0..n)
            .filter(|i| host[i * e_count + e] > 0.0)
            .map(|i| i as i64)
            .collect();
        *slot = rows.len() as f32;
        if rows.is_empty() {
            continue;
        }
        let m = rows.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [m]), &device);
        let y = swiglu(
            x.clone().select(0, idx.clone()),
            p(params, &expert_key(l, e, "gate_proj")),
            p(params, &expert_key(l, e, "up_proj")),
            p(params, &expert_key(l, e, "down_proj")),
        );
        let g = gates.clone().narrow(1, e, 1).select(0, idx.clone());
        out = out.select_assign(0, idx, y.mul(g), IndexingUpdateOp::Add);
    }
    (out, balance_loss(probs, &slots))
}

/// `E · Σ_e f_e · P_e`: `probs [n, E]` the router probabilities, `slots[e]` how many tokens were
/// dispatched to expert `e` (a constant: only `P` carries gradient, to the router).
fn balance_loss(probs: Tensor<2>, slots: &[f32]) -> Tensor<1> {
    let e_count = slots.len();
    let total: f32 = slots.iter().sum::<f32>().max(1.0);
    let frac: Vec<f32> = slots.iter().map(|s| s / total).collect();
    let frac = Tensor::<2>::from_data(TensorData::new(frac, [e_count, 1]), &probs.device());
    probs
        .mean_dim(0)
        .matmul(frac)
        .mul_scalar(e_count as f64)
        .reshape([1])
}

/// Logits `[b * t, vocab]` for input tokens `[b, t]`, and the load-balancing loss averaged over
/// layers (`[1]`).
pub fn forward(
    cfg: &ModelConfig,
    params: &Params,
    inputs: Tensor<2, Int>,
) -> (Tensor<2>, Tensor<1>) {
    let [b, t] = inputs.dims();
    let device = inputs.device();
    let rope = Rope::new(cfg, t, &device);
    let flat = inputs.reshape([b * t]);
    let tok = p(params, "model.embed_tokens.weight").select(0, flat);
    let mut x = tok.clone();
    let mut aux: Option<Tensor<1>> = None;
    for l in 0..cfg.n_layers {
        let n1 = rms_norm(
            x.clone(),
            p(params, &format!("model.layers.{l}.input_layernorm.weight")),
        );
        x = x.add(attention(cfg, params, l, n1, b, &rope));
        let n2 = rms_norm(
            x.clone(),
            p(
                params,
                &format!("model.layers.{l}.post_attention_layernorm.weight"),
            ),
        );
        let (y, a) = moe(cfg, params, l, n2, tok.clone());
        x = x.add(y);
        aux = Some(match aux {
            Some(acc) => acc.add(a),
            None => a,
        });
    }
    let x = rms_norm(x, p(params, "model.norm.weight"));
    let aux = aux.expect("n_layers >= 1").div_scalar(cfg.n_layers as f64);
    (linear(x, p(params, "lm_head.weight")), aux)
}

/// Logits `[b * t, vocab]` for input tokens `[b, t]`.
pub fn forward_logits(cfg: &ModelConfig, params: &Params, inputs: Tensor<2, Int>) -> Tensor<2> {
    forward(cfg, params, inputs).0
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
    losses_on_batch(cfg, params, batch, device).0
}

/// The cross-entropy of [`loss_on_batch`] and the load-balancing auxiliary loss, both `[1]`.
pub fn losses_on_batch(
    cfg: &ModelConfig,
    params: &Params,
    batch: &TokenBatch,
    device: &Device,
) -> (Tensor<1>, Tensor<1>) {
    let (inputs, targets) = batch_tensors(batch, device);
    let n = batch.rows * batch.seq_len;
    let (logits, aux) = forward(cfg, params, inputs);
    let logp = log_softmax(logits, 1);
    let picked = logp.gather(1, targets.reshape([n, 1]));
    (picked.mean().neg(), aux)
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
        let text = |d: Domain| {
            (0..50)
                .map(|i| d.sample(1, i))
                .collect::<String>()
                .into_bytes()
        };
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

    fn random_x(n: usize, d: usize, seed: u64, device: &Device) -> Tensor<2> {
        let mut r = crate::rng::SplitMix64::new(seed);
        let v: Vec<f32> = (0..n * d).map(|_| r.normal_f32()).collect();
        Tensor::from_data(TensorData::new(v, [n, d]), device)
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.to_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn dispatched_experts_equal_the_dense_mixture() {
        let cfg = ModelConfig {
            n_experts: 8,
            n_groups: 4,
            top_k: 2,
            ..ModelConfig::tiny()
        };
        let device = Device::flex();
        let params = to_params(&init_state_dict(&cfg, 5), &device);
        let x = random_x(40, cfg.d_model, 1, &device);
        let route = random_x(40, cfg.d_model, 2, &device);
        let (sparse, _) = moe(&cfg, &params, 1, x.clone(), route.clone());
        // Reference: every expert on every token, weighted by its (mostly zero) gate.
        let router = p(&params, "model.layers.1.mlp.gate.weight");
        let gates = route_gates(&cfg, route, router);
        let mut dense = x.zeros_like();
        for e in 0..cfg.n_experts {
            let y = swiglu(
                x.clone(),
                p(&params, &expert_key(1, e, "gate_proj")),
                p(&params, &expert_key(1, e, "up_proj")),
                p(&params, &expert_key(1, e, "down_proj")),
            );
            dense = dense.add(y.mul(gates.clone().narrow(1, e, 1)));
        }
        let (a, b) = (values(sparse), values(dense));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "sparse and dense MoE differ by {worst}");
        assert!(b.iter().any(|v| v.abs() > 1e-3));
    }

    #[test]
    fn balance_loss_is_one_when_balanced_and_e_when_collapsed() {
        let device = Device::flex();
        let uniform = Tensor::<2>::ones([6, 4], &device).div_scalar(4.0);
        let l: f32 = balance_loss(uniform, &[3.0, 3.0, 3.0, 3.0]).into_scalar();
        assert!((l - 1.0).abs() < 1e-6, "{l}");
        let one_hot: Vec<f32> = (0..6).flat_map(|_| [1.0, 0.0, 0.0, 0.0]).collect();
        let collapsed = Tensor::<2>::from_data(TensorData::new(one_hot, [6, 4]), &device);
        let l: f32 = balance_loss(collapsed, &[6.0, 0.0, 0.0, 0.0]).into_scalar();
        assert!((l - 4.0).abs() < 1e-6, "{l}");
    }

    #[test]
    fn the_balance_loss_reaches_the_router_and_is_reported_per_batch() {
        let cfg = ModelConfig::tiny();
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let mut params = to_params(&init_state_dict(&cfg, 1), &device);
        let key = "model.layers.0.mlp.gate.weight".to_string();
        let router = params[&key].clone().autodiff().require_grad();
        params.insert(key.clone(), router.clone());
        let batch = Sampler::new(Domain::Sorting, 1, Split::Train, 8, 0).next_batch(2, cfg.seq_len);
        let (_, aux) = losses_on_batch(&cfg, &params, &batch, &ad);
        let value: f32 = aux.clone().inner().into_scalar();
        assert!((1.0..=cfg.n_experts as f32).contains(&value), "aux {value}");
        let grads = aux.backward();
        let g: f32 = router.grad(&grads).unwrap().abs().sum().into_scalar();
        assert!(g > 0.0, "no gradient reaches the router");
    }

    #[test]
    fn rotary_scores_depend_only_on_relative_position() {
        let device = Device::flex();
        let (t, hd) = (6, 8);
        let cfg = ModelConfig {
            d_model: hd * 2,
            n_heads: 2,
            ..ModelConfig::tiny()
        };
        let rope = Rope::new(&cfg, t, &device);
        // The same query and key vector at every position.
        let q = random_x(1, hd, 3, &device)
            .reshape([1, 1, 1, hd])
            .expand([1, 1, t, hd]);
        let k = random_x(1, hd, 4, &device)
            .reshape([1, 1, 1, hd])
            .expand([1, 1, t, hd]);
        let s = apply_rope(q, &rope.cos, &rope.sin)
            .matmul(apply_rope(k, &rope.cos, &rope.sin).swap_dims(2, 3))
            .reshape([t, t]);
        let s = values(s);
        for m in 0..t - 1 {
            for n in 0..t - 1 {
                let (a, b) = (s[m * t + n], s[(m + 1) * t + n + 1]);
                assert!((a - b).abs() < 1e-4, "score({m},{n}) {a} != score(+1) {b}");
            }
        }
        // And they do depend on it.
        assert!((s[0] - s[1]).abs() > 1e-4);
        // Position 0 is not rotated.
        let (cos, sin) = rope_tables(t, hd, 10_000);
        assert!(cos[..hd].iter().all(|c| *c == 1.0) && sin[..hd].iter().all(|s| *s == 0.0));
    }

    #[test]
    fn rows_of_any_length_run_with_rotary_positions() {
        let cfg = ModelConfig::tiny();
        let device = Device::flex();
        let params = to_params(&init_state_dict(&cfg, 2), &device);
        let t = cfg.seq_len * 2 + 3;
        let x = Tensor::<2, Int>::from_data(
            TensorData::new((0..t as i64).collect::<Vec<_>>(), [1, t]),
            &device,
        );
        assert_eq!(forward_logits(&cfg, &params, x).dims(), [t, cfg.vocab]);
    }

    #[test]
    fn a_zero_shared_expert_changes_nothing_and_a_live_one_does() {
        let with = ModelConfig {
            shared_expert: true,
            ..ModelConfig::tiny()
        };
        let without = ModelConfig::tiny();
        let device = Device::flex();
        let mut sd = init_state_dict(&with, 4);
        let inputs = || {
            Tensor::<2, Int>::from_data(
                TensorData::new((0..32i64).map(|i| 40 + i).collect::<Vec<_>>(), [1, 32]),
                &device,
            )
        };
        let live = values(forward_logits(&with, &to_params(&sd, &device), inputs()));
        for l in 0..with.n_layers {
            let down = sd
                .get_mut(&crate::model::shared_expert_key(l, "down_proj"))
                .unwrap();
            down.data.iter_mut().for_each(|v| *v = 0.0);
        }
        let zeroed = values(forward_logits(&with, &to_params(&sd, &device), inputs()));
        sd.retain(|k, _| !k.contains("shared_expert"));
        let plain = values(forward_logits(&without, &to_params(&sd, &device), inputs()));
        assert_eq!(zeroed, plain);
        assert_ne!(live, plain);
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
