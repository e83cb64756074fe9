//! The DeepSeek-V2 family (`DeepseekV2ForCausalLM`), SN102's model: multi-head latent
//! attention with optional query LoRA and decoupled rotary dimensions (default or YaRN), RMSNorm,
//! `first_k_dense_replace` dense layers, then DeepSeekMoE (shared experts plus routed experts,
//! greedy or group-limited top-k over a softmax router, DeepSeek's sequence auxiliary loss).
//!
//! Built from a Hugging Face `config.json` ([`DsConfig::from_hf_json`]), with Hugging Face's
//! parameter names and safetensors files ([`weights`]). An expert group is a per-layer list of
//! routed experts; a partial model holds only its group's experts and routes only to them
//! ([`Routing`], rule in [`route`]).

mod config;
mod forward;
mod presets;
pub mod rope;
pub mod route;
pub mod weights;

#[cfg(test)]
mod tests;

pub use config::{DsConfig, DsConfigError, RopeScaling, TopkMethod, Yarn};
pub use forward::{Output, forward, next_token_loss, row_losses};

use std::collections::BTreeMap;

/// Which routed experts each MoE layer may route to (and holds): all of them, or per layer a
/// mask over `n_routed_experts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    allowed: Option<BTreeMap<usize, Vec<bool>>>,
    /// Experts per token, where not the config's `num_experts_per_tok` (SN102's reference
    /// routes a partial model's tokens to one expert: `partial_topk`).
    top_k: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GroupError {
    #[error("layer {layer} is not an MoE layer of this model")]
    NotMoe { layer: usize },
    #[error("layer {layer}: expert {expert} does not exist (the model has {n})")]
    NoSuchExpert {
        layer: usize,
        expert: usize,
        n: usize,
    },
    #[error(
        "MoE layer {layer} has {have} experts in the group, fewer than num_experts_per_tok {k}"
    )]
    TooFew { layer: usize, have: usize, k: usize },
    #[error("expert assignment: {0}")]
    Assignment(String),
    #[error("top-k {k} must be between 1 and the smallest group's {smallest} experts")]
    BadTopK { k: usize, smallest: usize },
    #[error(
        "group {group} of {groups}: the {n} experts do not split into {groups} contiguous groups"
    )]
    Split {
        group: usize,
        groups: usize,
        n: usize,
    },
}

impl Routing {
    /// Every expert (a full model).
    pub fn all() -> Self {
        Self::default()
    }

    /// Only the listed experts of each MoE layer (an expert group). Every MoE layer must list
    /// at least `num_experts_per_tok` experts.
    pub fn group(cfg: &DsConfig, layers: &BTreeMap<usize, Vec<usize>>) -> Result<Self, GroupError> {
        let n = cfg.n_routed_experts;
        let mut allowed = BTreeMap::new();
        for l in (0..cfg.num_hidden_layers).filter(|l| cfg.is_moe_layer(*l)) {
            let mut mask = vec![false; n];
            for &e in layers.get(&l).map(Vec::as_slice).unwrap_or(&[]) {
                *mask.get_mut(e).ok_or(GroupError::NoSuchExpert {
                    layer: l,
                    expert: e,
                    n,
                })? = true;
            }
            let have = mask.iter().filter(|a| **a).count();
            if have < cfg.num_experts_per_tok {
                return Err(GroupError::TooFew {
                    layer: l,
                    have,
                    k: cfg.num_experts_per_tok,
                });
            }
            allowed.insert(l, mask);
        }
        if let Some(&layer) = layers.keys().find(|l| !cfg.is_moe_layer(**l)) {
            return Err(GroupError::NotMoe { layer });
        }
        Ok(Self {
            allowed: Some(allowed),
            top_k: None,
        })
    }

    /// The same experts, with `k` experts per token (at least 1, at most every group's size).
    pub fn with_top_k(self, cfg: &DsConfig, k: usize) -> Result<Self, GroupError> {
        let smallest = match &self.allowed {
            None => cfg.n_routed_experts,
            Some(m) => m
                .values()
                .map(|a| a.iter().filter(|x| **x).count())
                .min()
                .unwrap_or(0),
        };
        if k == 0 || k > smallest {
            return Err(GroupError::BadTopK { k, smallest });
        }
        Ok(Self {
            top_k: Some(k),
            ..self
        })
    }

    /// Experts per token under this routing.
    pub fn top_k(&self, cfg: &DsConfig) -> usize {
        self.top_k.unwrap_or(cfg.num_experts_per_tok)
    }

    /// Group `g` of `groups` contiguous equal ranges of experts, the same in every MoE layer.
    pub fn contiguous(cfg: &DsConfig, g: usize, groups: usize) -> Result<Self, GroupError> {
        let n = cfg.n_routed_experts;
        if groups == 0 || g >= groups || !n.is_multiple_of(groups) {
            return Err(GroupError::Split {
                group: g,
                groups,
                n,
            });
        }
        let size = n / groups;
        let layers = (0..cfg.num_hidden_layers)
            .filter(|l| cfg.is_moe_layer(*l))
            .map(|l| (l, (g * size..(g + 1) * size).collect()))
            .collect();
        Self::group(cfg, &layers)
    }

    /// An expert group from SN102's `expert_assignment.json`: `{"<layer>": [[local, original],
    /// ...]}`. The original ids are the model's experts; the local ids (ranks) are unused, as
    /// in the reference, and layers beyond the model are skipped.
    pub fn from_assignment_json(cfg: &DsConfig, text: &str) -> Result<Self, GroupError> {
        // One parser of the file: the sn102 profile's.
        let group =
            crate::protocol::sn102::assignment::GroupExperts::parse(text, cfg.n_routed_experts)
                .map_err(|e| GroupError::Assignment(e.to_string()))?;
        let layers = (group.layers.into_iter())
            .filter(|(l, _)| *l < cfg.num_hidden_layers)
            .map(|(l, ids)| (l, ids.into_iter().collect()))
            .collect();
        Self::group(cfg, &layers)
    }

    /// The mask of MoE layer `l` (`None`: every expert).
    pub fn allowed(&self, l: usize) -> Option<&[bool]> {
        self.allowed
            .as_ref()
            .and_then(|m| m.get(&l))
            .map(Vec::as_slice)
    }
}

/// Parameters a model holds (a partial model where `routing` says): in all, and in its routed
/// experts.
pub fn parameter_counts(cfg: &DsConfig, routing: &Routing) -> (usize, usize) {
    let shapes = weights::expected_shapes(cfg, routing);
    let count = |pred: &dyn Fn(&str) -> bool| -> usize {
        shapes
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    };
    (count(&|_| true), count(&|k| k.contains(".mlp.experts.")))
}
