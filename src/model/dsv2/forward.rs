//! The DeepSeek-V2 forward pass (`DeepseekV2ForCausalLM`, no cache), on any burn device.
//!
//! Parameters are Hugging Face's names and layouts (`[out, in]`; rank-1 norms as `[1, n]`).
//! Where DeepSeek's published code and `transformers` differ, this follows DeepSeek's code
//! (README, "The DeepSeek-V2 family").

use burn::tensor::activation::{log_softmax, silu, softmax};
use burn::tensor::module::attention as fused_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, FloatDType, IndexingUpdateOp, Int, Tensor, TensorData};

use super::config::DsConfig;
use super::{Routing, rope, route};
use crate::model::Params;

/// The q/kv low-rank norms are built without an eps in every implementation: 1e-6.
const LORA_NORM_EPS: f64 = 1e-6;

/// Logits `[b · t, vocab]` and, where the model has MoE layers and `aux_loss_alpha > 0`, the
/// auxiliary balance loss summed over layers (`[1]`, already times `aux_loss_alpha`).
pub struct Output {
    pub logits: Tensor<2>,
    pub aux: Option<Tensor<1>>,
    /// Per MoE layer (ascending), the share of the batch's routing slots each routed expert got
    /// (each layer's shares sum to 1).
    pub loads: Vec<Vec<f64>>,
}

/// A parameter as f32: weights stored in bf16 or f16 ([`crate::model::WeightDtype`]) are
/// widened where they are used, so every product and sum runs in f32.
fn p(params: &Params, name: &str) -> Tensor<2> {
    raw(params, name).cast(FloatDType::F32)
}

/// A parameter in the dtype it is stored in.
fn raw(params: &Params, name: &str) -> Tensor<2> {
    params
        .get(name)
        .unwrap_or_else(|| panic!("parameter {name} missing (weights are checked at load)"))
        .clone()
}

fn linear(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    x.matmul(w.transpose())
}

fn rms_norm(x: Tensor<2>, w: Tensor<2>, eps: f64) -> Tensor<2> {
    let inv = x
        .clone()
        .square()
        .mean_dim(1)
        .add_scalar(eps)
        .sqrt()
        .recip();
    x.mul(inv).mul(w)
}

fn swiglu(params: &Params, prefix: &str, x: Tensor<2>) -> Tensor<2> {
    let w = |n: &str| p(params, &format!("{prefix}.{n}.weight"));
    let g = linear(x.clone(), w("gate_proj"));
    let u = linear(x, w("up_proj"));
    linear(silu(g).mul(u), w("down_proj"))
}

/// cos and sin of every position, `[1, 1, t, qk_rope_head_dim]`.
struct RopeTables {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

impl RopeTables {
    fn new(cfg: &DsConfig, t: usize, device: &Device) -> Self {
        let d = cfg.qk_rope_head_dim;
        let (cos, sin) = rope::tables(cfg, t);
        let up = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, 1, t, d]), device);
        Self {
            cos: up(cos),
            sin: up(sin),
        }
    }

    /// Rotates each pair `(x[2i], x[2i+1])` of `x [b, h, t, d]`.
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, t, d] = x.dims();
        let pairs = x.clone().reshape([b, h, t, d / 2, 2]);
        let even = pairs.clone().narrow(4, 0, 1);
        let odd = pairs.narrow(4, 1, 1);
        let rotated = Tensor::cat(vec![odd.neg(), even], 4).reshape([b, h, t, d]);
        x.mul(self.cos.clone()).add(rotated.mul(self.sin.clone()))
    }
}

/// Multi-head latent attention of layer `l` on `x [b · t, hidden]`.
fn attention(
    cfg: &DsConfig,
    params: &Params,
    l: usize,
    x: Tensor<2>,
    b: usize,
    rope: &RopeTables,
) -> Tensor<2> {
    let [n, _] = x.dims();
    let (t, h) = (n / b, cfg.num_attention_heads);
    let (dn, dr, dv) = (cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim);
    let w = |name: &str| p(params, &format!("model.layers.{l}.self_attn.{name}.weight"));
    let q = match cfg.q_lora_rank {
        None => linear(x.clone(), w("q_proj")),
        Some(_) => {
            let a = linear(x.clone(), w("q_a_proj"));
            linear(
                rms_norm(a, w("q_a_layernorm"), LORA_NORM_EPS),
                w("q_b_proj"),
            )
        }
    };
    let q = q.reshape([b, t, h, dn + dr]).swap_dims(1, 2);
    let q_nope = q.clone().narrow(3, 0, dn);
    let q_pe = rope.apply(q.narrow(3, dn, dr));
    let ckv = linear(x, w("kv_a_proj_with_mqa"));
    let c = ckv.clone().narrow(1, 0, cfg.kv_lora_rank);
    let k_pe = ckv.narrow(1, cfg.kv_lora_rank, dr).reshape([b, 1, t, dr]);
    let k_pe = rope.apply(k_pe).expand([b, h, t, dr]);
    let kv = linear(
        rms_norm(c, w("kv_a_layernorm"), LORA_NORM_EPS),
        w("kv_b_proj"),
    )
    .reshape([b, t, h, dn + dv])
    .swap_dims(1, 2);
    let k_nope = kv.clone().narrow(3, 0, dn);
    let v = kv.narrow(3, dn, dv);
    let q = Tensor::cat(vec![q_nope, q_pe], 3);
    let k = Tensor::cat(vec![k_nope, k_pe], 3);
    // Causal scaled dot-product attention: the backend's fused kernel where it has one
    // (burn-flex: no score matrix per head in memory), the composed ops under autodiff.
    let options = AttentionModuleOptions {
        scale: Some(cfg.softmax_scale()),
        softcap: None,
        is_causal: true,
    };
    let out = fused_attention(q, k, v, None, None, options)
        .swap_dims(1, 2)
        .reshape([n, h * dv]);
    linear(out, w("o_proj"))
}

/// Reads a float tensor back to the host.
fn host(x: Tensor<2>) -> Vec<f32> {
    x.to_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensors read back as f32")
}

/// What one DeepSeekMoE layer gives: its output, auxiliary loss and expert load.
struct MoeOut {
    y: Tensor<2>,
    aux: Option<Tensor<1>>,
    load: Vec<f64>,
}

/// The DeepSeekMoE block of layer `l` on `x [b · t, hidden]`: routed experts (each runs only on
/// the rows routed to it, in ascending expert order) plus the shared experts; and the layer's
/// auxiliary loss and expert load.
fn moe(
    cfg: &DsConfig,
    params: &Params,
    l: usize,
    x: Tensor<2>,
    b: usize,
    routing: &Routing,
) -> MoeOut {
    let prefix = format!("model.layers.{l}.mlp");
    let [n, _] = x.dims();
    let (e, k) = (cfg.n_routed_experts, routing.top_k(cfg));
    let allowed = routing.allowed(l);
    let probs = softmax(
        linear(x.clone(), p(params, &format!("{prefix}.gate.weight"))),
        1,
    );
    let host_probs = host(probs.clone());
    let chosen: Vec<usize> = host_probs
        .chunks_exact(e)
        .flat_map(|row| route::choose(row, k, cfg.topk_method, allowed))
        .collect();
    let device = x.device();
    let idx = Tensor::<2, Int>::from_data(
        TensorData::new(chosen.iter().map(|&i| i as i64).collect(), [n, k]),
        &device,
    );
    let mut weights = probs.clone().gather(1, idx);
    weights = if k > 1 && cfg.norm_topk_prob {
        weights.clone().div(weights.sum_dim(1).add_scalar(1e-20))
    } else {
        weights.mul_scalar(cfg.routed_scaling_factor)
    };
    let mut out = if cfg.n_shared_experts > 0 {
        swiglu(params, &format!("{prefix}.shared_experts"), x.clone())
    } else {
        x.zeros_like()
    };
    let flat_weights = weights.reshape([n * k, 1]);
    for expert in 0..e {
        let slots: Vec<i64> = (0..n * k)
            .filter(|&s| chosen[s] == expert)
            .map(|s| s as i64)
            .collect();
        if slots.is_empty() {
            continue;
        }
        let m = slots.len();
        let rows: Vec<i64> = slots.iter().map(|s| s / k as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [m]), &device);
        let slots = Tensor::<1, Int>::from_data(TensorData::new(slots, [m]), &device);
        let y = swiglu(
            params,
            &format!("{prefix}.experts.{expert}"),
            x.clone().select(0, rows.clone()),
        );
        let g = flat_weights.clone().select(0, slots);
        out = out.select_assign(0, rows, y.mul(g), IndexingUpdateOp::Add);
    }
    let aux = (cfg.aux_loss_alpha > 0.0).then(|| aux_loss(cfg, probs, &chosen, b, k));
    let mut load = vec![0f64; e];
    for &c in &chosen {
        load[c] += 1.0 / chosen.len() as f64;
    }
    MoeOut { y: out, aux, load }
}

/// DeepSeek's balance loss, times `aux_loss_alpha`. Per sequence (`seq_aux`):
/// `mean_b Σ_e ce[b,e] · mean_t p[b,t,e]` with `ce[b,e]` expert `e`'s share of the sequence's
/// routing slots times `E`; otherwise the same over the whole batch. Only `p` carries gradient.
fn aux_loss(cfg: &DsConfig, probs: Tensor<2>, chosen: &[usize], b: usize, k: usize) -> Tensor<1> {
    let [n, e] = probs.dims();
    let seqs = if cfg.seq_aux { b } else { 1 };
    let per = n / seqs;
    let mut ce = vec![0f32; seqs * e];
    for (slot, &expert) in chosen.iter().enumerate() {
        ce[(slot / k) / per * e + expert] += e as f32 / (per * k) as f32;
    }
    let ce = Tensor::<2>::from_data(TensorData::new(ce, [seqs, e]), &probs.device());
    let mean_p = probs.reshape([seqs, per, e]).mean_dim(1).reshape([seqs, e]);
    mean_p
        .mul(ce)
        .sum_dim(1)
        .mean()
        .mul_scalar(cfg.aux_loss_alpha)
        .reshape([1])
}

/// The model on input tokens `[b, t]`.
pub fn forward(
    cfg: &DsConfig,
    params: &Params,
    inputs: Tensor<2, Int>,
    routing: &Routing,
) -> Output {
    let [b, t] = inputs.dims();
    let device = inputs.device();
    let rope = RopeTables::new(cfg, t, &device);
    // Rows first, then widened: a bf16 embedding is never copied whole to f32.
    let mut x = raw(params, "model.embed_tokens.weight")
        .select(0, inputs.reshape([b * t]))
        .cast(FloatDType::F32);
    let mut aux: Option<Tensor<1>> = None;
    let mut loads = vec![];
    for l in 0..cfg.num_hidden_layers {
        let w = |name: &str| p(params, &format!("model.layers.{l}.{name}.weight"));
        let h = rms_norm(x.clone(), w("input_layernorm"), cfg.rms_norm_eps);
        x = x.add(attention(cfg, params, l, h, b, &rope));
        let h = rms_norm(x.clone(), w("post_attention_layernorm"), cfg.rms_norm_eps);
        let y = if cfg.is_moe_layer(l) {
            let m = moe(cfg, params, l, h, b, routing);
            aux = match (aux, m.aux) {
                (Some(s), Some(a)) => Some(s.add(a)),
                (s, a) => s.or(a),
            };
            loads.push(m.load);
            m.y
        } else {
            swiglu(params, &format!("model.layers.{l}.mlp"), h)
        };
        x = x.add(y);
    }
    let x = rms_norm(x, p(params, "model.norm.weight"), cfg.rms_norm_eps);
    let head = if cfg.tie_word_embeddings {
        p(params, "model.embed_tokens.weight")
    } else {
        p(params, "lm_head.weight")
    };
    Output {
        logits: linear(x, head),
        aux,
        loads,
    }
}

/// Mean next-token cross-entropy of `logits [b · t, vocab]` on the inputs `[b, t]` themselves
/// (position `i` predicts token `i + 1`; the last position predicts nothing), as `[1]`. Rows
/// are of equal length, so this is the mean of [`row_losses`].
pub fn next_token_loss(logits: Tensor<2>, inputs: Tensor<2, Int>) -> Tensor<1> {
    row_losses(logits, inputs).mean()
}

/// Per row of `inputs [b, t]`, its mean next-token cross-entropy (`[b]`).
pub fn row_losses(logits: Tensor<2>, inputs: Tensor<2, Int>) -> Tensor<1> {
    let [b, t] = inputs.dims();
    let [_, v] = logits.dims();
    let logits = logits
        .reshape([b, t, v])
        .narrow(1, 0, t - 1)
        .reshape([b * (t - 1), v]);
    let targets = inputs.narrow(1, 1, t - 1).reshape([b * (t - 1), 1]);
    log_softmax(logits, 1)
        .gather(1, targets)
        .reshape([b, t - 1])
        .mean_dim(1)
        .neg()
        .reshape([b])
}
