//! A small decoder-only mixture-of-experts language model on burn.
//!
//! Byte-level vocabulary, rotary positions, pre-norm (RMSNorm) blocks of causal multi-head
//! attention and an MoE feed-forward: a top-k softmax router over `n_experts` SwiGLU experts
//! (tokens are dispatched only to their top-k experts), an optional shared expert, and a
//! Switch-style load-balancing auxiliary loss. Experts are partitioned into `n_groups` contiguous
//! expert groups; miners train one group each.
//!
//! Parameters are plain named tensors (Hugging Face names, `[out, in]` layout), so the model,
//! a group shard and the outer-optimizer state are all [`StateDict`]s. The device is an argument:
//! the same code runs on burn's Flex CPU backend and on wgpu.

mod config;
pub mod dsv2;
mod forward;
mod inspect;

pub use config::{ModelConfig, ModelError};
pub use forward::{
    Params, batch_tensors, expert_load, forward, forward_logits, loss_on_batch, losses_on_batch,
};
pub use inspect::{Inspection, inspect};

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};

use crate::rng::{SplitMix64, mix};
use crate::tensors::{StateDict, TensorBlob};

/// Names of expert tensors of one expert in one layer.
pub const EXPERT_TENSORS: [&str; 3] = ["gate_proj", "up_proj", "down_proj"];

pub fn expert_key(layer: usize, expert: usize, tensor: &str) -> String {
    format!("model.layers.{layer}.mlp.experts.{expert}.{tensor}.weight")
}

/// Name of a tensor of layer `layer`'s shared expert (Qwen2-MoE naming).
pub fn shared_expert_key(layer: usize, tensor: &str) -> String {
    format!("model.layers.{layer}.mlp.shared_expert.{tensor}.weight")
}

/// Expected names and shapes of every parameter.
pub fn param_shapes(cfg: &ModelConfig) -> BTreeMap<String, Vec<usize>> {
    let (d, v, h) = (cfg.d_model, cfg.vocab, cfg.d_expert);
    let mut m = BTreeMap::new();
    m.insert("model.embed_tokens.weight".into(), vec![v, d]);
    for l in 0..cfg.n_layers {
        m.insert(format!("model.layers.{l}.input_layernorm.weight"), vec![d]);
        for p in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            m.insert(format!("model.layers.{l}.self_attn.{p}.weight"), vec![d, d]);
        }
        m.insert(
            format!("model.layers.{l}.post_attention_layernorm.weight"),
            vec![d],
        );
        m.insert(
            format!("model.layers.{l}.mlp.gate.weight"),
            vec![cfg.n_experts, d],
        );
        for e in 0..cfg.n_experts {
            m.insert(expert_key(l, e, "gate_proj"), vec![h, d]);
            m.insert(expert_key(l, e, "up_proj"), vec![h, d]);
            m.insert(expert_key(l, e, "down_proj"), vec![d, h]);
        }
        if cfg.shared_expert {
            m.insert(shared_expert_key(l, "gate_proj"), vec![h, d]);
            m.insert(shared_expert_key(l, "up_proj"), vec![h, d]);
            m.insert(shared_expert_key(l, "down_proj"), vec![d, h]);
        }
    }
    m.insert("model.norm.weight".into(), vec![d]);
    m.insert("lm_head.weight".into(), vec![v, d]);
    m
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
                    0.5
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

/// Points each group's router rows at the centroid of its domain's token embeddings (minus the
/// centroid of all domains), scaled by `gain`, plus a little per-expert noise. A genesis router
/// warm-started this way sends a domain's tokens mostly to its own expert group, so groups trained
/// by different miners compose when merged. `domain_text[g]` is sample text of group `g`.
pub fn warm_start_router(
    cfg: &ModelConfig,
    sd: &mut StateDict,
    domain_text: &[Vec<u8>],
    gain: f32,
    seed: u64,
) {
    let d = cfg.d_model;
    let embed = &sd["model.embed_tokens.weight"].data;
    let centroid = |text: &[u8]| {
        let mut c = vec![0f32; d];
        let n = text.len().max(1) as f32;
        for &b in text {
            for (ci, e) in c
                .iter_mut()
                .zip(&embed[b as usize * d..(b as usize + 1) * d])
            {
                *ci += e / n;
            }
        }
        c
    };
    let cs: Vec<Vec<f32>> = domain_text.iter().map(|t| centroid(t)).collect();
    let mean: Vec<f32> = (0..d)
        .map(|i| cs.iter().map(|c| c[i]).sum::<f32>() / cs.len().max(1) as f32)
        .collect();
    let dirs: Vec<Vec<f32>> = cs
        .iter()
        .map(|c| {
            let v: Vec<f32> = c.iter().zip(&mean).map(|(a, m)| a - m).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            v.iter().map(|x| gain * x / norm).collect()
        })
        .collect();
    let mut r = SplitMix64::new(mix(&[seed, 0x726f_7574]));
    for l in 0..cfg.n_layers {
        let w = sd
            .get_mut(&format!("model.layers.{l}.mlp.gate.weight"))
            .expect("router exists");
        for e in 0..cfg.n_experts {
            let g = e / cfg.experts_per_group();
            let Some(dir) = dirs.get(g) else { continue };
            for (i, x) in w.data[e * d..(e + 1) * d].iter_mut().enumerate() {
                *x = dir[i] + 0.1 * r.normal_f32() / (d as f32).sqrt();
            }
        }
    }
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

/// Uploads a state dict to `device` as rank-2 tensors (rank-1 tensors become `[1, n]`).
pub fn to_params(sd: &StateDict, device: &Device) -> Params {
    sd.iter()
        .map(|(k, t)| (k.clone(), to_param(k, t, device)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_shapes_hold_exactly_the_groups_experts() {
        let cfg = ModelConfig::tiny();
        let g0 = group_shapes(&cfg, 0);
        let g1 = group_shapes(&cfg, 1);
        assert_eq!(g0.len(), cfg.n_layers * cfg.experts_per_group() * 3);
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
    }

    #[test]
    fn warm_started_router_sends_a_domain_to_its_group() {
        use crate::data::{Domain, Sampler, Split};
        let cfg = ModelConfig::tiny();
        let mut sd = init_state_dict(&cfg, 1);
        let text = |d: Domain| {
            (0..50)
                .map(|i| d.sample(1, i))
                .collect::<String>()
                .into_bytes()
        };
        warm_start_router(
            &cfg,
            &mut sd,
            &[text(Domain::Arithmetic), text(Domain::Sorting)],
            4.0,
            1,
        );
        // Routing of the embedding alone: group 0 experts win on arithmetic bytes.
        let d = cfg.d_model;
        let e = &sd["model.embed_tokens.weight"].data;
        let w = &sd["model.layers.0.mlp.gate.weight"].data;
        let logit = |b: u8, x: usize| {
            (0..d)
                .map(|i| e[b as usize * d + i] * w[x * d + i])
                .sum::<f32>()
        };
        let batch = Sampler::new(Domain::Arithmetic, 1, Split::Train, 8, 0).next_batch(1, 64);
        let own = batch
            .tokens
            .iter()
            .filter(|t| {
                logit(**t as u8, 0).max(logit(**t as u8, 1))
                    > logit(**t as u8, 2).max(logit(**t as u8, 3))
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
        let shared = ModelConfig {
            shared_expert: true,
            ..ModelConfig::tiny()
        };
        let with = init_state_dict(&shared, 4);
        assert_eq!(with.len(), plain.len() + 3 * shared.n_layers);
        for (k, t) in &plain {
            assert_eq!(&with[k], t, "{k}");
        }
    }

    #[test]
    fn expert_of_parses_names() {
        assert_eq!(
            expert_of("model.layers.1.mlp.experts.3.up_proj.weight"),
            Some(3)
        );
        assert_eq!(expert_of("model.layers.1.mlp.gate.weight"), None);
    }

    #[test]
    fn params_roundtrip_through_the_device() {
        let cfg = ModelConfig::tiny();
        let sd = init_state_dict(&cfg, 3);
        let back = from_params(&cfg, &to_params(&sd, &Device::flex()));
        assert_eq!(back, sd);
    }
}
