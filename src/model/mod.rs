//! A small decoder-only mixture-of-experts language model on burn.
//!
//! Byte-level vocabulary, learned positions, pre-norm blocks of causal multi-head attention and
//! an MoE feed-forward (top-k softmax router over `n_experts` SwiGLU experts). Experts are
//! partitioned into `n_groups` contiguous expert groups; miners train one group each.
//!
//! Parameters are plain named tensors (Hugging Face names, `[out, in]` layout), so the model,
//! a group shard and the outer-optimizer state are all [`StateDict`]s. The device is an argument:
//! the same code runs on burn's Flex CPU backend and on wgpu.

mod config;
mod forward;

pub use config::{ModelConfig, ModelError};
pub use forward::{Params, batch_tensors, forward_logits, loss_on_batch};

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};

use crate::rng::{SplitMix64, mix};
use crate::tensors::{StateDict, TensorBlob};

/// Names of expert tensors of one expert in one layer.
pub const EXPERT_TENSORS: [&str; 3] = ["gate_proj", "up_proj", "down_proj"];

pub fn expert_key(layer: usize, expert: usize, tensor: &str) -> String {
    format!("model.layers.{layer}.mlp.experts.{expert}.{tensor}.weight")
}

/// Expected names and shapes of every parameter.
pub fn param_shapes(cfg: &ModelConfig) -> BTreeMap<String, Vec<usize>> {
    let (d, v, t, h) = (cfg.d_model, cfg.vocab, cfg.seq_len, cfg.d_expert);
    let mut m = BTreeMap::new();
    m.insert("model.embed_tokens.weight".into(), vec![v, d]);
    m.insert("model.embed_positions.weight".into(), vec![t, d]);
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

/// A fresh model from a seed: deterministic, scaled normal init, norms at 1.
pub fn init_state_dict(cfg: &ModelConfig, seed: u64) -> StateDict {
    param_shapes(cfg)
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n: usize = shape.iter().product();
            let data = if name.ends_with("layernorm.weight") || name == "model.norm.weight" {
                vec![1.0; n]
            } else {
                let fan_in = *shape.last().expect("rank >= 1") as f32;
                let scale = if name.contains("embed") {
                    0.5
                } else {
                    1.0 / fan_in.sqrt()
                };
                let mut r = SplitMix64::new(mix(&[seed, i as u64]));
                (0..n).map(|_| r.normal_f32() * scale).collect()
            };
            (name, TensorBlob { shape, data })
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

/// Uploads a state dict to `device` as rank-2 tensors (rank-1 tensors become `[1, n]`).
pub fn to_params(sd: &StateDict, device: &Device) -> Params {
    sd.iter()
        .map(|(k, t)| {
            let shape2 = match t.shape.as_slice() {
                [n] => [1, *n],
                [a, b] => [*a, *b],
                other => panic!(
                    "tensor {k} has rank {} (only 1 and 2 are used)",
                    other.len()
                ),
            };
            let tensor = Tensor::<2>::from_data(TensorData::new(t.data.clone(), shape2), device);
            (k.clone(), tensor)
        })
        .collect()
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
