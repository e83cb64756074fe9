//! What a model file holds: parameters per part and per expert group, and its content hash.

use std::collections::BTreeMap;

use serde::Serialize;

use super::expert_of;
use crate::tensors::{StateDict, state_dict_hash};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    pub tensors: usize,
    pub parameters: usize,
    /// Parameters by part: `embeddings`, `attention`, `router`, `norms`, `lm_head`, `experts`
    /// (routed), `shared_experts`, `dense_mlp` (the dense layers' MLPs).
    pub parts: BTreeMap<String, usize>,
    /// Expert parameters by expert group (given the number of groups).
    pub groups: BTreeMap<u16, usize>,
    /// BLAKE2b-256 of the canonical safetensors encoding, hex.
    pub hash: String,
}

fn part_of(name: &str) -> &'static str {
    if name.contains(".mlp.experts.") {
        "experts"
    } else if name.contains(".mlp.shared_experts.") {
        "shared_experts"
    } else if name.contains(".mlp.gate.") {
        "router"
    } else if name.contains(".mlp.") {
        "dense_mlp"
    } else if name.contains("self_attn") {
        "attention"
    } else if name.contains("embed") {
        "embeddings"
    } else if name.starts_with("lm_head") {
        "lm_head"
    } else if name.contains("norm") {
        "norms"
    } else {
        "other"
    }
}

/// Summarizes `sd`, attributing experts to `n_groups` contiguous groups of `n_experts`.
pub fn inspect(sd: &StateDict, n_experts: usize, n_groups: usize) -> Inspection {
    let mut parts = BTreeMap::new();
    let mut groups = BTreeMap::new();
    let per_group = (n_experts / n_groups.max(1)).max(1);
    for (name, t) in sd {
        let n = t.data.len();
        *parts.entry(part_of(name).to_string()).or_insert(0) += n;
        if let Some(e) = expert_of(name) {
            *groups.entry((e / per_group) as u16).or_insert(0) += n;
        }
    }
    Inspection {
        tensors: sd.len(),
        parameters: sd.values().map(|t| t.data.len()).sum(),
        parts,
        groups,
        hash: hex::encode(state_dict_hash(sd)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, init_state_dict};

    #[test]
    fn parts_and_groups_add_up() {
        let cfg = ModelConfig::tiny();
        let a = &cfg.arch;
        let sd = init_state_dict(&cfg, 1);
        let i = inspect(&sd, a.n_routed_experts, cfg.n_groups);
        assert_eq!(i.parts.values().sum::<usize>(), i.parameters);
        assert_eq!(i.groups.values().sum::<usize>(), i.parts["experts"]);
        assert_eq!(i.groups.len(), cfg.n_groups);
        let moe = cfg.moe_layers().count();
        let per_expert = 3 * a.hidden_size * a.moe_intermediate_size * moe;
        assert_eq!(i.groups[&0], per_expert * cfg.experts_per_group());
        assert_eq!(
            i.parts["shared_experts"],
            3 * a.hidden_size * a.shared_width() * moe
        );
        assert_eq!(i.parts["embeddings"], a.vocab_size * a.hidden_size);
        assert_eq!(
            i.parts["dense_mlp"],
            3 * a.hidden_size * a.intermediate_size * a.first_k_dense_replace
        );
        assert!(!i.parts.contains_key("other"));
    }

    #[test]
    fn small_preset_is_20_to_50_million_parameters() {
        let cfg = ModelConfig::small();
        cfg.validate().unwrap();
        let n: usize = crate::model::param_shapes(&cfg)
            .values()
            .map(|s| s.iter().product::<usize>())
            .sum();
        assert!(
            (20_000_000..=50_000_000).contains(&n),
            "small has {n} parameters"
        );
    }
}
