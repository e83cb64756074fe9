//! A live SN102 expert group: its `expert_assignment.json`, `{"<layer>": [[local, global],
//! ...]}` for every MoE layer, local ids in listed order, global ids the model's expert ids.
//! Groups may be uneven and non-contiguous. (Reference: `connito/shared/expert_manager.py`,
//! `load_expert_group_assignment`.)

use std::collections::{BTreeMap, BTreeSet};

use crate::model::dsv2::DsConfig;

/// Why an assignment file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    #[error("expert assignment is not JSON of {{layer: [[local, global], ...]}}: {0}")]
    Format(String),
    #[error("layer key {0:?} is not a number")]
    LayerKey(String),
    #[error("layer {layer}: expert {expert} does not exist (n_routed_experts is {n})")]
    ExpertOutOfRange {
        layer: usize,
        expert: usize,
        n: usize,
    },
    #[error("layer {layer} lists expert {expert} twice")]
    Duplicate { layer: usize, expert: usize },
}

/// The global expert ids of one group, per MoE layer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupExperts {
    pub layers: BTreeMap<usize, BTreeSet<usize>>,
}

impl GroupExperts {
    /// Parses `expert_assignment.json`, checking ids against `n_routed_experts`.
    pub fn parse(text: &str, n_routed_experts: usize) -> Result<Self, AssignmentError> {
        let raw: BTreeMap<String, Vec<(usize, usize)>> =
            serde_json::from_str(text).map_err(|e| AssignmentError::Format(e.to_string()))?;
        let mut layers = BTreeMap::new();
        for (key, pairs) in raw {
            let layer: usize = key
                .parse()
                .map_err(|_| AssignmentError::LayerKey(key.clone()))?;
            let mut experts = BTreeSet::new();
            for (_local, expert) in pairs {
                if expert >= n_routed_experts {
                    let n = n_routed_experts;
                    return Err(AssignmentError::ExpertOutOfRange { layer, expert, n });
                }
                if !experts.insert(expert) {
                    return Err(AssignmentError::Duplicate { layer, expert });
                }
            }
            layers.insert(layer, experts);
        }
        Ok(Self { layers })
    }

    /// Contiguous groups of `per_group` experts in every MoE layer (connito's default).
    pub fn contiguous(
        moe_layers: impl IntoIterator<Item = usize>,
        group: usize,
        per_group: usize,
    ) -> Self {
        let experts: BTreeSet<usize> = (group * per_group..(group + 1) * per_group).collect();
        Self {
            layers: moe_layers
                .into_iter()
                .map(|l| (l, experts.clone()))
                .collect(),
        }
    }

    /// Group `group` of `n_groups` contiguous groups of `arch`'s MoE layers (when no assignment
    /// file is given).
    pub fn contiguous_of(arch: &DsConfig, n_groups: usize, group: usize) -> Self {
        let moe = (0..arch.num_hidden_layers).filter(|l| arch.is_moe_layer(*l));
        Self::contiguous(moe, group, arch.n_routed_experts / n_groups.max(1))
    }

    pub fn contains(&self, layer: usize, expert: usize) -> bool {
        self.layers.get(&layer).is_some_and(|e| e.contains(&expert))
    }
}
