use serde::{Deserialize, Serialize};

/// Shape of the MoE model. Presets: [`ModelConfig::tiny`] (tests, localnet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Byte vocabulary (256).
    pub vocab: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// Hidden width of one SwiGLU expert.
    pub d_expert: usize,
    pub n_experts: usize,
    pub n_groups: usize,
    /// Experts each token is routed to.
    pub top_k: usize,
    /// Context length of training and evaluation rows. Positions are rotary (RoPE), so no
    /// parameter depends on it.
    pub seq_len: usize,
    /// Base of the rotary position frequencies.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: u32,
    /// A shared SwiGLU expert (width `d_expert`) every token passes through besides its routed
    /// experts. It belongs to no expert group: like attention, it changes only by merge.
    #[serde(default)]
    pub shared_expert: bool,
}

fn default_rope_theta() -> u32 {
    10_000
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("d_model {d_model} is not divisible by n_heads {n_heads}")]
    HeadsDoNotDivide { d_model: usize, n_heads: usize },
    #[error("n_experts {n_experts} is not divisible by n_groups {n_groups}")]
    GroupsDoNotDivide { n_experts: usize, n_groups: usize },
    #[error("top_k {top_k} must be between 1 and n_experts {n_experts}")]
    BadTopK { top_k: usize, n_experts: usize },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("vocab must be at least 256 (bytes), got {0}")]
    VocabTooSmall(usize),
    #[error("head width d_model / n_heads = {0} must be even (rotary positions rotate pairs)")]
    OddHeadDim(usize),
    #[error("rope_theta must be at least 2, got {0}")]
    BadRopeTheta(u32),
    #[error("unknown model preset {0:?} (presets: tiny, small)")]
    UnknownPreset(String),
}

impl ModelConfig {
    /// A model that trains in seconds on a CPU.
    pub fn tiny() -> Self {
        Self {
            vocab: 256,
            d_model: 48,
            n_layers: 2,
            n_heads: 4,
            d_expert: 64,
            n_experts: 4,
            n_groups: 2,
            top_k: 2,
            seq_len: 32,
            rope_theta: default_rope_theta(),
            shared_expert: false,
        }
    }

    /// 20–50 M parameters, for real CPU/GPU runs and benchmarks.
    pub fn small() -> Self {
        Self {
            vocab: 256,
            d_model: 512,
            n_layers: 6,
            n_heads: 8,
            d_expert: 512,
            n_experts: 8,
            n_groups: 4,
            top_k: 2,
            seq_len: 256,
            rope_theta: default_rope_theta(),
            shared_expert: false,
        }
    }

    /// A preset by name (`tiny`, `small`).
    pub fn preset(name: &str) -> Result<Self, ModelError> {
        match name {
            "tiny" => Ok(Self::tiny()),
            "small" => Ok(Self::small()),
            other => Err(ModelError::UnknownPreset(other.to_string())),
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        for (v, name) in [
            (self.d_model, "d_model"),
            (self.n_layers, "n_layers"),
            (self.n_heads, "n_heads"),
            (self.d_expert, "d_expert"),
            (self.n_experts, "n_experts"),
            (self.n_groups, "n_groups"),
            (self.seq_len, "seq_len"),
        ] {
            if v == 0 {
                return Err(ModelError::Zero(name));
            }
        }
        if self.vocab < 256 {
            return Err(ModelError::VocabTooSmall(self.vocab));
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(ModelError::HeadsDoNotDivide {
                d_model: self.d_model,
                n_heads: self.n_heads,
            });
        }
        if !(self.d_model / self.n_heads).is_multiple_of(2) {
            return Err(ModelError::OddHeadDim(self.d_model / self.n_heads));
        }
        if self.rope_theta < 2 {
            return Err(ModelError::BadRopeTheta(self.rope_theta));
        }
        if !self.n_experts.is_multiple_of(self.n_groups) {
            return Err(ModelError::GroupsDoNotDivide {
                n_experts: self.n_experts,
                n_groups: self.n_groups,
            });
        }
        if self.top_k == 0 || self.top_k > self.n_experts {
            return Err(ModelError::BadTopK {
                top_k: self.top_k,
                n_experts: self.n_experts,
            });
        }
        Ok(())
    }

    pub fn experts_per_group(&self) -> usize {
        self.n_experts / self.n_groups
    }

    /// Expert indices of group `g` (contiguous).
    pub fn group_experts(&self, g: u16) -> std::ops::Range<usize> {
        let per = self.experts_per_group();
        let start = g as usize * per;
        start..start + per
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_is_valid() {
        ModelConfig::tiny().validate().unwrap();
    }

    #[test]
    fn every_bad_config_has_its_error() {
        let t = ModelConfig::tiny;
        let c = ModelConfig { n_heads: 5, ..t() };
        assert!(matches!(
            c.validate(),
            Err(ModelError::HeadsDoNotDivide { .. })
        ));
        let c = ModelConfig { n_groups: 3, ..t() };
        assert!(matches!(
            c.validate(),
            Err(ModelError::GroupsDoNotDivide { .. })
        ));
        let c = ModelConfig { top_k: 5, ..t() };
        assert!(matches!(c.validate(), Err(ModelError::BadTopK { .. })));
        let c = ModelConfig { n_layers: 0, ..t() };
        assert_eq!(c.validate(), Err(ModelError::Zero("n_layers")));
        let c = ModelConfig { vocab: 100, ..t() };
        assert_eq!(c.validate(), Err(ModelError::VocabTooSmall(100)));
        let c = ModelConfig {
            d_model: 44,
            n_heads: 4,
            ..t()
        };
        assert_eq!(c.validate(), Err(ModelError::OddHeadDim(11)));
        let c = ModelConfig {
            rope_theta: 1,
            ..t()
        };
        assert_eq!(c.validate(), Err(ModelError::BadRopeTheta(1)));
    }

    #[test]
    fn custom_sizes_come_from_toml_with_defaults_for_new_keys() {
        let c: ModelConfig = toml::from_str(
            "vocab = 256\nd_model = 64\nn_layers = 3\nn_heads = 4\nd_expert = 96\n\
             n_experts = 6\nn_groups = 3\ntop_k = 2\nseq_len = 48\nshared_expert = true\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.rope_theta, 10_000);
        assert!(c.shared_expert);
        assert_eq!(c.group_experts(2), 4..6);
        assert!(toml::from_str::<ModelConfig>("d_model = 64\nlayers = 3\n").is_err());
    }

    #[test]
    fn presets_by_name() {
        assert_eq!(ModelConfig::preset("tiny"), Ok(ModelConfig::tiny()));
        assert_eq!(ModelConfig::preset("small"), Ok(ModelConfig::small()));
        assert_eq!(
            ModelConfig::preset("huge"),
            Err(ModelError::UnknownPreset("huge".into()))
        );
    }

    #[test]
    fn groups_partition_experts() {
        let c = ModelConfig::tiny();
        assert_eq!(c.group_experts(0), 0..2);
        assert_eq!(c.group_experts(1), 2..4);
    }
}
