//! The model: the DeepSeek-V2 family ([`dsv2`]) as a deployment uses it.
//!
//! [`ModelConfig`] names the architecture (a preset, optionally with Hugging Face config keys),
//! its split into contiguous expert groups and the row length. Parameters are plain named
//! tensors with Hugging Face's names (`[out, in]` layout), so the model, a group shard and the
//! outer-optimizer state are all [`StateDict`]s. A miner trains, and a validator scores, one
//! group as a partial model: the same tensors, with tokens routed only to the group's experts
//! ([`ModelConfig::routing`]). The device is an argument: the same code runs on burn's Flex CPU
//! backend, on wgpu and on CUDA.

mod batch;
mod config;
pub mod dsv2;
mod inspect;

pub use batch::{BatchLoss, Params, batch_inputs, expert_load, loss_on_batch, losses_on_batch};
pub use config::{ModelConfig, ModelError, ModelSpec};
pub use inspect::{Inspection, inspect};

use std::collections::BTreeMap;

use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::rng::{SplitMix64, mix};
use crate::tensors::{StateDict, TensorBlob};

/// Names of expert tensors of one expert in one layer.
pub const EXPERT_TENSORS: [&str; 3] = ["gate_proj", "up_proj", "down_proj"];

pub fn expert_key(layer: usize, expert: usize, tensor: &str) -> String {
    format!("model.layers.{layer}.mlp.experts.{expert}.{tensor}.weight")
}

/// Expected names and shapes of every parameter of the whole model.
pub fn param_shapes(cfg: &ModelConfig) -> BTreeMap<String, Vec<usize>> {
    dsv2::weights::expected_shapes(&cfg.arch, &dsv2::Routing::all())
}

/// Names and shapes of the tensors a group-`g` shard must hold: exactly that group's experts.
pub fn group_shapes(cfg: &ModelConfig, group: u16) -> BTreeMap<String, Vec<usize>> {
    let experts = cfg.group_experts(group);
    param_shapes(cfg)
        .into_iter()
        .filter(|(k, _)| expert_of(k).is_some_and(|e| experts.contains(&e)))
        .collect()
}

/// The expert index of an expert tensor name, if it is one.
pub fn expert_of(name: &str) -> Option<usize> {
    let rest = name.split(".mlp.experts.").nth(1)?;
    rest.split('.').next()?.parse().ok()
}

/// Standard deviation of the initial token embeddings.
const EMBED_SCALE: f32 = 4.0;

/// A fresh model from a seed: deterministic, scaled normal init (each tensor's stream seeded by
/// its name), norms at 1.
pub fn init_state_dict(cfg: &ModelConfig, seed: u64) -> StateDict {
    param_shapes(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = if name.ends_with("layernorm.weight") || name == "model.norm.weight" {
                vec![1.0; n]
            } else {
                let fan_in = *shape.last().expect("rank >= 1") as f32;
                // The LM head is frozen for miners (only experts train), so it starts wide
                // enough for the experts to reach sharp next-byte distributions through it.
                let scale = if name.contains("embed") {
                    EMBED_SCALE
                } else if name == "lm_head.weight" {
                    4.0 / fan_in.sqrt()
                } else {
                    1.0 / fan_in.sqrt()
                };
                // Seeded by name, so a tensor's init does not depend on which others exist.
                let name_key =
                    crate::tensors::hash_u64(&crate::tensors::blake2b_256(name.as_bytes()));
                let mut r = SplitMix64::new(mix(&[seed, name_key]));
                (0..n).map(|_| r.normal_f32() * scale).collect()
            };
            (name, TensorBlob { shape, data })
        })
        .collect()
}

/// Tokens per domain the warm start fits (the most frequent of those only that domain uses).
const WARM_TOKENS: usize = 256;

/// Warm-starts every MoE layer's router so that a domain's tokens go to its own expert group in
/// the whole model (`domain_tokens[g]`: sample tokens of group `g`'s domain). The router reads
/// the normalized residual stream, which at genesis is mostly the token's embedding (its scale
/// is [`EMBED_SCALE`]), so each group gets one direction `w_g` in embedding space, fitted by
/// ridge regression over the normalized embeddings of the tokens only group `g`'s domain uses
/// (target 1 for its own, 0 for the others'); group `g`'s router rows are `gain · w_g` plus a
/// little per-expert noise. Trained groups then compose when merged: another group's tokens
/// seldom reach them. Host arithmetic in a fixed order (f64), so every party gets the same
/// genesis.
pub fn warm_start_router(
    cfg: &ModelConfig,
    sd: &mut StateDict,
    domain_tokens: &[Vec<u32>],
    gain: f32,
    seed: u64,
) {
    let d = cfg.arch.hidden_size;
    let unit = |t: u32| -> Vec<f64> {
        let e = &sd["model.embed_tokens.weight"].data[t as usize * d..(t as usize + 1) * d];
        let n = e
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        e.iter().map(|x| f64::from(*x) / n).collect()
    };
    let tokens = exclusive_tokens(domain_tokens, cfg.arch.vocab_size);
    let rows: Vec<Vec<f64>> = tokens.iter().map(|(t, _)| unit(*t)).collect();
    let dirs = ridge_directions(&rows, &tokens, domain_tokens.len());
    let mut r = SplitMix64::new(mix(&[seed, 0x726f_7574]));
    for l in cfg.moe_layers().collect::<Vec<_>>() {
        let w = sd
            .get_mut(&format!("model.layers.{l}.mlp.gate.weight"))
            .expect("router exists");
        for e in 0..cfg.arch.n_routed_experts {
            let g = e / cfg.experts_per_group();
            let Some(dir) = dirs.get(g) else { continue };
            for (i, x) in w.data[e * d..(e + 1) * d].iter_mut().enumerate() {
                *x = gain * dir[i] as f32 + 0.1 * r.normal_f32() / (d as f32).sqrt();
            }
        }
    }
}

/// The tokens only one domain uses, each with its domain: per domain its [`WARM_TOKENS`] most
/// frequent (ties to the lower id), in (domain, token) order.
fn exclusive_tokens(domain_tokens: &[Vec<u32>], vocab: usize) -> Vec<(u32, usize)> {
    let mut count: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (g, toks) in domain_tokens.iter().enumerate() {
        for &t in toks.iter().filter(|t| (**t as usize) < vocab) {
            count
                .entry(t)
                .or_insert_with(|| vec![0; domain_tokens.len()])[g] += 1;
        }
    }
    let mut out = vec![];
    for g in 0..domain_tokens.len() {
        let mut own: Vec<(usize, u32)> = count
            .iter()
            .filter(|(_, c)| c.iter().enumerate().all(|(h, n)| (h == g) == (*n > 0)))
            .map(|(t, c)| (c[g], *t))
            .collect();
        own.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(own.into_iter().take(WARM_TOKENS).map(|(_, t)| (t, g)));
    }
    out
}

/// Ridge regression in token space: per group, `w_g = Σ_t a_tg x_t` with
/// `(X Xᵀ + λI) A = Y`, `Y[t][g] = 1` where token `t` is group `g`'s.
fn ridge_directions(x: &[Vec<f64>], tokens: &[(u32, usize)], groups: usize) -> Vec<Vec<f64>> {
    const LAMBDA: f64 = 0.1;
    let n = x.len();
    let d = x.first().map_or(0, Vec::len);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    // Augmented [G + λI | Y], solved by Gauss-Jordan elimination with partial pivoting.
    let mut m: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let mut row: Vec<f64> = (0..n).map(|j| dot(&x[i], &x[j])).collect();
            row[i] += LAMBDA;
            row.extend((0..groups).map(|g| f64::from(u8::from(tokens[i].1 == g))));
            row
        })
        .collect();
    for c in 0..n {
        let p = (c..n)
            .max_by(|a, b| m[*a][c].abs().total_cmp(&m[*b][c].abs()))
            .expect("c < n");
        m.swap(c, p);
        let pivot = m[c][c];
        m[c].iter_mut().for_each(|v| *v /= pivot);
        for i in (0..n).filter(|i| *i != c) {
            let f = m[i][c];
            if f != 0.0 {
                let (pc, pi) = (m[c].clone(), &mut m[i]);
                pi.iter_mut().zip(&pc).for_each(|(v, w)| *v -= f * w);
            }
        }
    }
    (0..groups)
        .map(|g| {
            let mut w = vec![0f64; d];
            for (i, xi) in x.iter().enumerate() {
                let a = m[i][n + g];
                w.iter_mut().zip(xi).for_each(|(wv, xv)| *wv += a * xv);
            }
            w
        })
        .collect()
}

/// Only the tensors of `group`'s experts.
pub fn extract_group(cfg: &ModelConfig, sd: &StateDict, group: u16) -> StateDict {
    let keys = group_shapes(cfg, group);
    sd.iter()
        .filter(|(k, _)| keys.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `base` with the tensors of `shard` swapped in (the PoL candidate).
pub fn with_shard(base: &StateDict, shard: &StateDict) -> StateDict {
    let mut out = base.clone();
    for (k, v) in shard {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// How weights are stored on the device. Every product and sum runs in f32 whatever the
/// storage (the forward pass widens a weight where it uses it); bf16 or f16 halve the weights'
/// memory, as SN102's reference keeps its partial model in f16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    #[default]
    F32,
    Bf16,
    F16,
}

impl WeightDtype {
    pub fn float(self) -> FloatDType {
        match self {
            WeightDtype::F32 => FloatDType::F32,
            WeightDtype::Bf16 => FloatDType::BF16,
            WeightDtype::F16 => FloatDType::F16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "f32",
            WeightDtype::Bf16 => "bf16",
            WeightDtype::F16 => "f16",
        }
    }

    /// `f32`, `bf16` or `f16`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(WeightDtype::F32),
            "bf16" => Ok(WeightDtype::Bf16),
            "f16" => Ok(WeightDtype::F16),
            other => Err(format!("unknown weight dtype {other:?} (f32, bf16, f16)")),
        }
    }
}

/// Uploads a state dict to `device` as rank-2 f32 tensors (rank-1 tensors become `[1, n]`).
pub fn to_params(sd: &StateDict, device: &Device) -> Params {
    to_params_as(sd, device, WeightDtype::F32)
}

/// [`to_params`], each tensor stored as `dtype`.
pub fn to_params_as(sd: &StateDict, device: &Device, dtype: WeightDtype) -> Params {
    sd.iter()
        .map(|(k, t)| (k.clone(), to_param(k, t, device).cast(dtype.float())))
        .collect()
}

/// Uploads one tensor (named `name`) as a rank-2 tensor.
pub fn to_param(name: &str, t: &TensorBlob, device: &Device) -> Tensor<2> {
    let shape2 = match t.shape.as_slice() {
        [n] => [1, *n],
        [a, b] => [*a, *b],
        other => panic!(
            "tensor {name} has rank {} (only 1 and 2 are used)",
            other.len()
        ),
    };
    Tensor::<2>::from_data(TensorData::new(t.data.clone(), shape2), device)
}

/// Reads tensors back into a state dict with the shapes of `cfg`.
pub fn from_params(cfg: &ModelConfig, params: &Params) -> StateDict {
    let shapes = param_shapes(cfg);
    params
        .iter()
        .map(|(k, t)| {
            let data = t
                .to_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("float tensors read back as f32");
            let shape = shapes.get(k).cloned().unwrap_or_else(|| t.dims().to_vec());
            (k.clone(), TensorBlob { shape, data })
        })
        .collect()
}

/// A tiny test model whose router is warm-started for arithmetic (group 0) and sorting (1).
#[cfg(test)]
pub(crate) fn warm_started(cfg: &ModelConfig, seed: u64) -> StateDict {
    use crate::data::Domain;
    let mut sd = init_state_dict(cfg, seed);
    let tokens = |d: Domain| {
        (0..50)
            .flat_map(|i| d.tokens(&d.sample_bytes(1, i)))
            .collect()
    };
    let domains = [tokens(Domain::Arithmetic), tokens(Domain::Sorting)];
    warm_start_router(cfg, &mut sd, &domains, 4.0, 1);
    sd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_shapes_hold_exactly_the_groups_experts() {
        let cfg = ModelConfig::tiny();
        let g0 = group_shapes(&cfg, 0);
        let g1 = group_shapes(&cfg, 1);
        let moe_layers = cfg.moe_layers().count();
        assert_eq!(g0.len(), moe_layers * cfg.experts_per_group() * 3);
        assert!(g0.keys().all(|k| !g1.contains_key(k)));
        assert!(
            g0.keys()
                .all(|k| expert_of(k).unwrap() < cfg.experts_per_group())
        );
    }

    #[test]
    fn init_is_deterministic_and_complete() {
        let cfg = ModelConfig::tiny();
        let a = init_state_dict(&cfg, 1);
        assert_eq!(a, init_state_dict(&cfg, 1));
        assert_ne!(a, init_state_dict(&cfg, 2));
        let shapes = param_shapes(&cfg);
        assert_eq!(a.len(), shapes.len());
        for (k, t) in &a {
            assert_eq!(&t.shape, &shapes[k]);
        }
        assert!(
            a["model.layers.1.self_attn.kv_a_layernorm.weight"]
                .data
                .iter()
                .all(|x| *x == 1.0)
        );
    }

    #[test]
    fn warm_started_router_sends_a_domain_to_its_group() {
        use crate::data::{Domain, Sampler, Split};
        let cfg = ModelConfig::tiny();
        let sd = warm_started(&cfg, 1);
        // Routing of the embedding alone: group 0 experts win on arithmetic bytes.
        let d = cfg.arch.hidden_size;
        let e = &sd["model.embed_tokens.weight"].data;
        let l = cfg.moe_layers().next().unwrap();
        let w = &sd[&format!("model.layers.{l}.mlp.gate.weight")].data;
        let logit = |b: u8, x: usize| {
            (0..d)
                .map(|i| e[b as usize * d + i] * w[x * d + i])
                .sum::<f32>()
        };
        let best = |b: u8, r: std::ops::Range<usize>| {
            r.map(|x| logit(b, x)).fold(f32::NEG_INFINITY, f32::max)
        };
        let batch = Sampler::new(Domain::Arithmetic, 1, Split::Train, 8, 0).next_batch(1, 64);
        let own = batch
            .tokens
            .iter()
            .filter(|t| {
                best(**t as u8, cfg.group_experts(0)) > best(**t as u8, cfg.group_experts(1))
            })
            .count();
        assert!(
            own * 10 >= batch.tokens.len() * 8,
            "only {own} of {} arithmetic tokens prefer group 0",
            batch.tokens.len()
        );
    }

    #[test]
    fn a_tensors_init_does_not_depend_on_the_others() {
        let plain = init_state_dict(&ModelConfig::tiny(), 4);
        let spec = ModelSpec {
            hf: [("n_shared_experts".to_string(), serde_json::json!(0))]
                .into_iter()
                .collect(),
            ..ModelSpec::from(ModelConfig::tiny())
        };
        let without = ModelConfig::try_from(spec).unwrap();
        let fewer = init_state_dict(&without, 4);
        assert_eq!(fewer.len() + 3 * without.moe_layers().count(), plain.len());
        for (k, t) in &fewer {
            assert_eq!(&plain[k], t, "{k}");
        }
    }

    #[test]
    fn expert_of_parses_names() {
        assert_eq!(
            expert_of("model.layers.1.mlp.experts.3.up_proj.weight"),
            Some(3)
        );
        assert_eq!(expert_of("model.layers.1.mlp.gate.weight"), None);
        assert_eq!(
            expert_of("model.layers.1.mlp.shared_experts.up_proj.weight"),
            None
        );
    }

    #[test]
    fn params_roundtrip_through_the_device() {
        let cfg = ModelConfig::tiny();
        let sd = init_state_dict(&cfg, 3);
        let back = from_params(&cfg, &to_params(&sd, &Device::flex()));
        assert_eq!(back, sd);
    }
}
