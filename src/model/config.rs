//! The model a deployment trains: a DeepSeek-V2 architecture, split into expert groups, on rows
//! of `seq_len` tokens.
//!
//! In TOML: a preset (`tiny`, `small`, `deepseek-v2-lite`), optionally with Hugging Face
//! `config.json` keys overriding it (`[model.hf]`), the number of contiguous expert groups, the
//! row length and the experts per token of a partial (one-group) model.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::WeightDtype;
use super::dsv2::{DsConfig, DsConfigError, Routing};

/// The model of a deployment. Built (and checked) from [`ModelSpec`], its TOML form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ModelSpec", into = "ModelSpec")]
pub struct ModelConfig {
    /// The preset the architecture starts from.
    pub preset: String,
    /// Hugging Face config keys applied over the preset.
    pub hf: Map<String, Value>,
    /// Contiguous expert groups the routed experts of every MoE layer are split into.
    pub n_groups: usize,
    /// Predicted tokens per training and evaluation row (a row holds `seq_len + 1` tokens).
    pub seq_len: usize,
    /// Experts per token in a one-group (partial) model: SN102 routes to 1 (`partial_topk`).
    pub partial_top_k: usize,
    /// How weights are stored on the device (compute is f32): f32, bf16 or f16. The tensors a
    /// miner trains stay f32.
    pub weight_dtype: WeightDtype,
    /// The architecture: the preset with `hf` applied.
    pub arch: DsConfig,
}

/// The TOML form of [`ModelConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub preset: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub hf: Map<String, Value>,
    pub n_groups: usize,
    pub seq_len: usize,
    #[serde(default = "default_partial_top_k")]
    pub partial_top_k: usize,
    #[serde(default)]
    pub weight_dtype: WeightDtype,
}

fn default_partial_top_k() -> usize {
    1
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("unknown model preset {0:?} (presets: tiny, small, deepseek-v2-lite)")]
    UnknownPreset(String),
    #[error("model.hf: {0}")]
    Arch(#[from] DsConfigError),
    #[error("the model has no routed experts (n_routed_experts = 0): there is nothing to train")]
    NoExperts,
    #[error("n_routed_experts {n_experts} is not divisible by n_groups {n_groups}")]
    GroupsDoNotDivide { n_experts: usize, n_groups: usize },
    #[error("partial_top_k {k} must be between 1 and the {per_group} experts of a group")]
    BadPartialTopK { k: usize, per_group: usize },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("vocab_size must be at least 256 (generated domains use bytes as tokens), got {0}")]
    VocabTooSmall(usize),
}

impl TryFrom<ModelSpec> for ModelConfig {
    type Error = ModelError;

    fn try_from(s: ModelSpec) -> Result<Self, ModelError> {
        let base =
            DsConfig::preset(&s.preset).map_err(|_| ModelError::UnknownPreset(s.preset.clone()))?;
        let arch = if s.hf.is_empty() {
            base
        } else {
            let mut o: Map<String, Value> =
                serde_json::from_str(&base.to_hf_json()).expect("to_hf_json writes an object");
            o.extend(s.hf.clone());
            DsConfig::from_hf_json(&Value::Object(o).to_string())?
        };
        let cfg = Self {
            preset: s.preset,
            hf: s.hf,
            n_groups: s.n_groups,
            seq_len: s.seq_len,
            partial_top_k: s.partial_top_k,
            weight_dtype: s.weight_dtype,
            arch,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl From<ModelConfig> for ModelSpec {
    fn from(c: ModelConfig) -> Self {
        Self {
            preset: c.preset,
            hf: c.hf,
            n_groups: c.n_groups,
            seq_len: c.seq_len,
            partial_top_k: c.partial_top_k,
            weight_dtype: c.weight_dtype,
        }
    }
}

impl ModelConfig {
    fn of(preset: &str, n_groups: usize, seq_len: usize) -> Self {
        Self::try_from(ModelSpec {
            preset: preset.into(),
            hf: Map::new(),
            n_groups,
            seq_len,
            partial_top_k: 1,
            weight_dtype: WeightDtype::F32,
        })
        .expect("presets are valid")
    }

    /// Trains in seconds on a CPU (tests, localnet): 2 groups of 4 experts, rows of 32 bytes.
    pub fn tiny() -> Self {
        Self::of("tiny", 2, 32)
    }

    /// About 39 M parameters (benchmarks): 4 groups of 4 experts, rows of 256 bytes.
    pub fn small() -> Self {
        Self::of("small", 4, 256)
    }

    /// DeepSeek-V2-Lite as SN102 trains it: 8 groups of 8 experts, rows of 4096 tokens.
    pub fn deepseek_v2_lite() -> Self {
        Self::of("deepseek-v2-lite", 8, 4096)
    }

    /// A preset by name with its default groups and row length.
    pub fn preset(name: &str) -> Result<Self, ModelError> {
        match name {
            "tiny" => Ok(Self::tiny()),
            "small" => Ok(Self::small()),
            "deepseek-v2-lite" => Ok(Self::deepseek_v2_lite()),
            other => Err(ModelError::UnknownPreset(other.to_string())),
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        self.arch.validate()?;
        for (v, name) in [(self.n_groups, "n_groups"), (self.seq_len, "seq_len")] {
            if v == 0 {
                return Err(ModelError::Zero(name));
            }
        }
        let n = self.arch.n_routed_experts;
        if n == 0 || !(0..self.arch.num_hidden_layers).any(|l| self.arch.is_moe_layer(l)) {
            return Err(ModelError::NoExperts);
        }
        if self.arch.vocab_size < 256 {
            return Err(ModelError::VocabTooSmall(self.arch.vocab_size));
        }
        if !n.is_multiple_of(self.n_groups) {
            return Err(ModelError::GroupsDoNotDivide {
                n_experts: n,
                n_groups: self.n_groups,
            });
        }
        let per_group = n / self.n_groups;
        if self.partial_top_k == 0 || self.partial_top_k > per_group {
            return Err(ModelError::BadPartialTopK {
                k: self.partial_top_k,
                per_group,
            });
        }
        Ok(())
    }

    pub fn experts_per_group(&self) -> usize {
        self.arch.n_routed_experts / self.n_groups
    }

    /// Routed expert ids of group `g` (contiguous, the same in every MoE layer).
    pub fn group_experts(&self, g: u16) -> std::ops::Range<usize> {
        let per = self.experts_per_group();
        let start = g as usize * per;
        start..start + per
    }

    /// The MoE layers.
    pub fn moe_layers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.arch.num_hidden_layers).filter(|l| self.arch.is_moe_layer(*l))
    }

    /// How tokens are routed: over every expert with the architecture's top-k (`None`, the
    /// whole model), or only to group `g`'s experts with `partial_top_k` per token (the partial
    /// model a miner trains and a validator scores the group on).
    pub fn routing(&self, group: Option<u16>) -> Routing {
        match group {
            None => Routing::all(),
            Some(g) => Routing::contiguous(&self.arch, g as usize, self.n_groups)
                .and_then(|r| r.with_top_k(&self.arch, self.partial_top_k))
                .expect("a validated config splits into groups of at least partial_top_k"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> Result<ModelConfig, String> {
        toml::from_str::<ModelConfig>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn presets_are_valid_and_named() {
        for name in ["tiny", "small", "deepseek-v2-lite"] {
            let c = ModelConfig::preset(name).unwrap();
            c.validate().unwrap();
            assert_eq!(c.preset, name);
        }
        assert_eq!(ModelConfig::deepseek_v2_lite().experts_per_group(), 8);
        assert_eq!(
            ModelConfig::preset("huge"),
            Err(ModelError::UnknownPreset("huge".into()))
        );
    }

    #[test]
    fn toml_round_trips_and_applies_hf_keys() {
        let c = spec(
            "preset = \"tiny\"\nn_groups = 4\nseq_len = 48\nweight_dtype = \"bf16\"\n\
             [hf]\nhidden_size = 96\nn_routed_experts = 12\n",
        )
        .unwrap();
        assert_eq!(c.weight_dtype, WeightDtype::Bf16);
        assert_eq!(c.arch.hidden_size, 96);
        assert_eq!(c.arch.n_routed_experts, 12);
        assert_eq!(c.group_experts(3), 9..12);
        assert_eq!(c.partial_top_k, 1);
        let back = toml::to_string(&c).unwrap();
        assert_eq!(spec(&back).unwrap(), c);
    }

    #[test]
    fn every_bad_config_has_its_error() {
        let base = "preset = \"tiny\"\nseq_len = 32\n";
        let cases: &[(&str, &str)] = &[
            ("n_groups = 3\n", "not divisible by n_groups 3"),
            ("n_groups = 0\n", "n_groups must be at least 1"),
            ("n_groups = 2\npartial_top_k = 5\n", "partial_top_k 5"),
            ("n_groups = 2\npartial_top_k = 0\n", "partial_top_k 0"),
            ("n_groups = 2\n[hf]\nvocab_size = 100\n", "at least 256"),
            (
                "n_groups = 2\n[hf]\nn_routed_experts = 0\n",
                "no routed experts",
            ),
            (
                "n_groups = 2\n[hf]\nfrobnicate = 1\n",
                "frobnicate is unknown",
            ),
            ("n_groups = 2\n[hf]\nhidden_act = \"gelu\"\n", "hidden_act"),
            ("n_groups = 2\nlayers = 3\n", "unknown field"),
        ];
        for (extra, want) in cases {
            let err = spec(&format!("{base}{extra}")).unwrap_err();
            assert!(err.contains(want), "{extra:?}: {err}");
        }
        let err = spec("preset = \"huge\"\nn_groups = 2\nseq_len = 8\n").unwrap_err();
        assert!(err.contains("unknown model preset"), "{err}");
    }

    #[test]
    fn groups_partition_experts_and_route_to_their_own() {
        let c = ModelConfig::tiny();
        assert_eq!(c.group_experts(0), 0..4);
        assert_eq!(c.group_experts(1), 4..8);
        let r = c.routing(Some(1));
        assert_eq!(r.top_k(&c.arch), 1);
        for l in c.moe_layers() {
            let allowed = r.allowed(l).unwrap();
            assert_eq!(
                allowed.iter().positions_true(),
                vec![4, 5, 6, 7],
                "layer {l}"
            );
        }
        assert_eq!(c.routing(None).top_k(&c.arch), c.arch.num_experts_per_tok);
    }

    trait PositionsTrue {
        fn positions_true(self) -> Vec<usize>;
    }

    impl<'a, I: Iterator<Item = &'a bool>> PositionsTrue for I {
        fn positions_true(self) -> Vec<usize> {
            self.enumerate()
                .filter(|(_, a)| **a)
                .map(|(i, _)| i)
                .collect()
        }
    }
}
