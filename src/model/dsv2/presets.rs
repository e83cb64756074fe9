//! Named configurations: SN102's `deepseek-v2-lite`, and `tiny` / `small` of the same
//! architecture for CPUs, localnet and tests (byte vocabulary: generated domains use bytes as
//! tokens).

use super::config::{DsConfig, DsConfigError, RopeScaling, TopkMethod, Yarn};

impl DsConfig {
    /// DeepSeek-V2-Lite as published (`deepseek-ai/DeepSeek-V2-Lite`, config.json).
    pub fn deepseek_v2_lite() -> Self {
        Self {
            vocab_size: 102_400,
            hidden_size: 2048,
            intermediate_size: 10_944,
            moe_intermediate_size: 1408,
            num_hidden_layers: 27,
            num_attention_heads: 16,
            n_shared_experts: 2,
            n_routed_experts: 64,
            num_experts_per_tok: 6,
            routed_scaling_factor: 1.0,
            topk_method: TopkMethod::Greedy,
            norm_topk_prob: false,
            first_k_dense_replace: 1,
            moe_layer_freq: 1,
            aux_loss_alpha: 0.001,
            seq_aux: true,
            kv_lora_rank: 512,
            q_lora_rank: None,
            qk_nope_head_dim: 128,
            qk_rope_head_dim: 64,
            v_head_dim: 128,
            max_position_embeddings: 163_840,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: RopeScaling::Yarn(Yarn {
                factor: 40.0,
                original_max_position_embeddings: 4096,
                beta_fast: 32.0,
                beta_slow: 1.0,
                mscale: 0.707,
                mscale_all_dim: 0.707,
            }),
            tie_word_embeddings: false,
        }
    }

    /// Trains in seconds on a CPU: a dense first layer, then two MoE layers of 8 experts
    /// (each `[64, 48]` / `[48, 64]`, the shapes the hostile-submission corpus is written for).
    pub fn tiny() -> Self {
        Self {
            vocab_size: 256,
            hidden_size: 48,
            intermediate_size: 128,
            moe_intermediate_size: 64,
            num_hidden_layers: 3,
            num_attention_heads: 2,
            n_shared_experts: 1,
            n_routed_experts: 8,
            num_experts_per_tok: 2,
            kv_lora_rank: 32,
            qk_nope_head_dim: 16,
            qk_rope_head_dim: 8,
            v_head_dim: 16,
            max_position_embeddings: 4096,
            rope_scaling: RopeScaling::None,
            ..Self::deepseek_v2_lite()
        }
    }

    /// About 39 M parameters: the benchmark model.
    pub fn small() -> Self {
        Self {
            hidden_size: 512,
            intermediate_size: 1408,
            moe_intermediate_size: 256,
            n_shared_experts: 1,
            num_hidden_layers: 6,
            num_attention_heads: 8,
            n_routed_experts: 16,
            kv_lora_rank: 128,
            qk_nope_head_dim: 32,
            qk_rope_head_dim: 16,
            v_head_dim: 32,
            ..Self::tiny()
        }
    }

    /// A preset by name: `tiny`, `small`, `deepseek-v2-lite`.
    pub fn preset(name: &str) -> Result<Self, DsConfigError> {
        match name {
            "tiny" => Ok(Self::tiny()),
            "small" => Ok(Self::small()),
            "deepseek-v2-lite" => Ok(Self::deepseek_v2_lite()),
            _ => Err(DsConfigError::BadValue {
                key: "preset".into(),
                why: format!("unknown preset {name:?} (tiny, small, deepseek-v2-lite)"),
            }),
        }
    }
}
