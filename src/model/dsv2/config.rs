//! The DeepSeek-V2 configuration, read from a Hugging Face `config.json`.
//!
//! Every key that changes the computation is either implemented or refused with a typed error;
//! keys that only describe (architectures, token ids, dtype, versions) are accepted and unused.
//! Both spellings of the rotary settings are read: `rope_theta` + `rope_scaling` (as published
//! with DeepSeek-V2-Lite) and `rope_parameters` (as `transformers` 5 writes it).

use serde_json::{Map, Value};

/// How a token's routed experts are chosen from the router's softmax.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TopkMethod {
    /// The `num_experts_per_tok` highest probabilities.
    Greedy,
    /// Experts split into `n_group` groups scored by their best expert; only the `topk_group`
    /// best groups compete.
    GroupLimited { n_group: usize, topk_group: usize },
}

/// YaRN rotary scaling (DeepSeek's `DeepseekV2YarnRotaryEmbedding`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Yarn {
    pub factor: f64,
    pub original_max_position_embeddings: usize,
    pub beta_fast: f64,
    pub beta_slow: f64,
    pub mscale: f64,
    pub mscale_all_dim: f64,
}

/// The rotary position embedding of the `qk_rope_head_dim` dimensions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    None,
    Yarn(Yarn),
}

/// A DeepSeek-V2 model's shape and numerics (`DeepseekV2ForCausalLM`).
#[derive(Debug, Clone, PartialEq)]
pub struct DsConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    /// Width of the dense MLP layers.
    pub intermediate_size: usize,
    /// Width of one routed expert.
    pub moe_intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Shared experts: one MLP of width `moe_intermediate_size · n_shared_experts` (0: none).
    pub n_shared_experts: usize,
    /// Routed experts per MoE layer (0: every layer is dense).
    pub n_routed_experts: usize,
    pub num_experts_per_tok: usize,
    pub routed_scaling_factor: f64,
    pub topk_method: TopkMethod,
    /// With more than one expert per token: renormalize the chosen probabilities to sum to 1
    /// instead of scaling them by `routed_scaling_factor` (DeepSeek's code does one or the other).
    pub norm_topk_prob: bool,
    /// Layers `l >= first_k_dense_replace` with `l % moe_layer_freq == 0` are MoE.
    pub first_k_dense_replace: usize,
    pub moe_layer_freq: usize,
    pub aux_loss_alpha: f64,
    /// The auxiliary loss per sequence (`true`) or over the whole batch.
    pub seq_aux: bool,
    pub kv_lora_rank: usize,
    /// Low-rank query projection (`None`: one `q_proj`).
    pub q_lora_rank: Option<usize>,
    pub qk_nope_head_dim: usize,
    pub qk_rope_head_dim: usize,
    pub v_head_dim: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DsConfigError {
    #[error("config.json is not a JSON object: {0}")]
    NotJson(String),
    #[error("config key {key}: {why}")]
    BadValue { key: String, why: String },
    #[error("config key {0} is required")]
    Missing(&'static str),
    #[error("config key {key} = {value} changes the computation and is not implemented: {why}")]
    Unsupported {
        key: String,
        value: String,
        why: &'static str,
    },
    #[error("config key {0} is unknown: it might change the computation, so it is refused")]
    Unknown(String),
    #[error("model_type {0:?} is not deepseek_v2")]
    WrongModelType(String),
    #[error("inconsistent config: {0}")]
    Inconsistent(String),
}

/// Keys that describe the file or generation and never change a forward or training step.
const DESCRIPTIVE: &[&str] = &[
    "architectures",
    "auto_map",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "dtype",
    "torch_dtype",
    "transformers_version",
    "initializer_range",
    "use_cache",
    "output_router_logits",
    "ep_size",
    "pretraining_tp",
    "_name_or_path",
    "return_dict",
    "output_attentions",
    "output_hidden_states",
];

type Obj = Map<String, Value>;

fn bad(key: &str, why: impl Into<String>) -> DsConfigError {
    DsConfigError::BadValue {
        key: key.into(),
        why: why.into(),
    }
}

fn take_usize(o: &mut Obj, key: &'static str) -> Result<Option<usize>, DsConfigError> {
    match o.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| bad(key, format!("{v} is not a non-negative integer"))),
    }
}

fn need_usize(o: &mut Obj, key: &'static str) -> Result<usize, DsConfigError> {
    take_usize(o, key)?.ok_or(DsConfigError::Missing(key))
}

fn take_f64(o: &mut Obj, key: &'static str) -> Result<Option<f64>, DsConfigError> {
    match o.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| bad(key, format!("{v} is not a finite number"))),
    }
}

fn take_bool(o: &mut Obj, key: &'static str) -> Result<Option<bool>, DsConfigError> {
    match o.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| bad(key, format!("{v} is not a boolean"))),
    }
}

fn take_str(o: &mut Obj, key: &'static str) -> Result<Option<String>, DsConfigError> {
    match o.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(bad(key, format!("{v} is not a string"))),
    }
}

fn unsupported(key: &str, value: impl ToString, why: &'static str) -> DsConfigError {
    DsConfigError::Unsupported {
        key: key.into(),
        value: value.to_string(),
        why,
    }
}

impl DsConfig {
    /// Parses a Hugging Face `config.json` of `DeepseekV2ForCausalLM`.
    pub fn from_hf_json(text: &str) -> Result<Self, DsConfigError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| DsConfigError::NotJson(e.to_string()))?;
        let Value::Object(mut o) = v else {
            return Err(DsConfigError::NotJson("not an object".into()));
        };
        if let Some(t) = take_str(&mut o, "model_type")?
            && t != "deepseek_v2"
        {
            return Err(DsConfigError::WrongModelType(t));
        }
        refuse_unimplemented(&mut o)?;
        let cfg = Self::read_shape(&mut o)?;
        for key in o.keys() {
            if !DESCRIPTIVE.contains(&key.as_str()) {
                return Err(DsConfigError::Unknown(key.clone()));
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn read_shape(o: &mut Obj) -> Result<Self, DsConfigError> {
        let heads = need_usize(o, "num_attention_heads")?;
        if let Some(kv) = take_usize(o, "num_key_value_heads")?
            && kv != heads
        {
            return Err(unsupported(
                "num_key_value_heads",
                kv,
                "MLA has one key/value head per attention head",
            ));
        }
        let qk_rope_head_dim = need_usize(o, "qk_rope_head_dim")?;
        let qk_nope_head_dim = need_usize(o, "qk_nope_head_dim")?;
        check_derived(o, "head_dim", qk_rope_head_dim)?;
        check_derived(o, "qk_head_dim", qk_nope_head_dim + qk_rope_head_dim)?;
        let max_position_embeddings = take_usize(o, "max_position_embeddings")?.unwrap_or(2048);
        let (rope_theta, rope_scaling) = read_rope(o)?;
        let n_routed_experts = take_usize(o, "n_routed_experts")?.unwrap_or(0);
        Ok(Self {
            vocab_size: need_usize(o, "vocab_size")?,
            hidden_size: need_usize(o, "hidden_size")?,
            intermediate_size: need_usize(o, "intermediate_size")?,
            moe_intermediate_size: take_usize(o, "moe_intermediate_size")?.unwrap_or(0),
            num_hidden_layers: need_usize(o, "num_hidden_layers")?,
            num_attention_heads: heads,
            n_shared_experts: take_usize(o, "n_shared_experts")?.unwrap_or(0),
            n_routed_experts,
            num_experts_per_tok: take_usize(o, "num_experts_per_tok")?.unwrap_or(0),
            routed_scaling_factor: take_f64(o, "routed_scaling_factor")?.unwrap_or(1.0),
            topk_method: read_topk_method(o)?,
            norm_topk_prob: take_bool(o, "norm_topk_prob")?.unwrap_or(false),
            first_k_dense_replace: take_usize(o, "first_k_dense_replace")?.unwrap_or(0),
            moe_layer_freq: take_usize(o, "moe_layer_freq")?.unwrap_or(1),
            aux_loss_alpha: take_f64(o, "aux_loss_alpha")?.unwrap_or(0.001),
            seq_aux: take_bool(o, "seq_aux")?.unwrap_or(true),
            kv_lora_rank: need_usize(o, "kv_lora_rank")?,
            q_lora_rank: take_usize(o, "q_lora_rank")?,
            qk_nope_head_dim,
            qk_rope_head_dim,
            v_head_dim: need_usize(o, "v_head_dim")?,
            max_position_embeddings,
            rms_norm_eps: take_f64(o, "rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            tie_word_embeddings: take_bool(o, "tie_word_embeddings")?.unwrap_or(false),
        })
    }

    /// Whether layer `l` is a DeepSeekMoE layer (DeepSeek's rule; `transformers` ignores
    /// `moe_layer_freq`, which is 1 in every published config).
    pub fn is_moe_layer(&self, l: usize) -> bool {
        self.n_routed_experts > 0
            && l >= self.first_k_dense_replace
            && l.is_multiple_of(self.moe_layer_freq)
    }

    /// Width of a query/key head: the non-rotary and the rotary part.
    pub fn q_head_dim(&self) -> usize {
        self.qk_nope_head_dim + self.qk_rope_head_dim
    }

    /// The attention logits' scale: `q_head_dim^-1/2`, times `mscale²` under YaRN with
    /// `mscale_all_dim` (DeepSeek's code; `transformers` before 5.16 leaves the factor out).
    pub fn softmax_scale(&self) -> f64 {
        let base = (self.q_head_dim() as f64).powf(-0.5);
        match self.rope_scaling {
            RopeScaling::Yarn(y) if y.mscale_all_dim != 0.0 => {
                let m = super::rope::yarn_mscale(y.factor, y.mscale_all_dim);
                base * m * m
            }
            _ => base,
        }
    }

    /// Width of the shared experts' MLP (0: none).
    pub fn shared_width(&self) -> usize {
        self.moe_intermediate_size * self.n_shared_experts
    }

    pub fn validate(&self) -> Result<(), DsConfigError> {
        let inc = |s: String| Err(DsConfigError::Inconsistent(s));
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("kv_lora_rank", self.kv_lora_rank),
            ("v_head_dim", self.v_head_dim),
            ("moe_layer_freq", self.moe_layer_freq),
        ] {
            if v == 0 {
                return inc(format!("{name} must be at least 1"));
            }
        }
        if self.qk_rope_head_dim == 0 || !self.qk_rope_head_dim.is_multiple_of(2) {
            return inc("qk_rope_head_dim must be even and at least 2 (rotary pairs)".into());
        }
        if self.q_lora_rank == Some(0) {
            return inc("q_lora_rank must be null or at least 1".into());
        }
        if self.n_routed_experts > 0 {
            self.validate_moe()?;
        }
        if let RopeScaling::Yarn(y) = self.rope_scaling
            && (y.factor <= 0.0 || y.original_max_position_embeddings == 0)
        {
            return inc(
                "rope_scaling.factor and original_max_position_embeddings must be positive".into(),
            );
        }
        Ok(())
    }

    fn validate_moe(&self) -> Result<(), DsConfigError> {
        let inc = |s: String| Err(DsConfigError::Inconsistent(s));
        let (e, k) = (self.n_routed_experts, self.num_experts_per_tok);
        if k == 0 || k > e {
            return inc(format!(
                "num_experts_per_tok {k} must be between 1 and n_routed_experts {e}"
            ));
        }
        if self.moe_intermediate_size == 0 {
            return inc("moe_intermediate_size must be at least 1".into());
        }
        if let TopkMethod::GroupLimited {
            n_group,
            topk_group,
        } = self.topk_method
        {
            if n_group == 0 || !e.is_multiple_of(n_group) {
                return inc(format!(
                    "n_group {n_group} must divide n_routed_experts {e}"
                ));
            }
            if topk_group == 0 || topk_group > n_group || topk_group * (e / n_group) < k {
                return inc(format!(
                    "topk_group {topk_group} of {n_group} groups leaves fewer than {k} experts"
                ));
            }
        }
        Ok(())
    }
}

/// Keys whose only implemented value is the default; anything else is refused.
fn refuse_unimplemented(o: &mut Obj) -> Result<(), DsConfigError> {
    if let Some(a) = take_str(o, "hidden_act")?
        && a != "silu"
    {
        return Err(unsupported("hidden_act", a, "only silu is implemented"));
    }
    if let Some(s) = take_str(o, "scoring_func")?
        && s != "softmax"
    {
        return Err(unsupported(
            "scoring_func",
            s,
            "only softmax is implemented",
        ));
    }
    for key in ["attention_bias", "mlp_bias"] {
        if let Some(true) = take_bool(o, key)? {
            return Err(unsupported(key, true, "biases are not implemented"));
        }
    }
    if let Some(p) = take_f64(o, "attention_dropout")?
        && p != 0.0
    {
        return Err(unsupported(
            "attention_dropout",
            p,
            "dropout is not implemented",
        ));
    }
    Ok(())
}

/// A key `transformers` derives from others: if present it must agree.
fn check_derived(o: &mut Obj, key: &'static str, want: usize) -> Result<(), DsConfigError> {
    match take_usize(o, key)? {
        Some(v) if v != want => Err(DsConfigError::Inconsistent(format!(
            "{key} is {v}, but the other keys make it {want}"
        ))),
        _ => Ok(()),
    }
}

fn read_topk_method(o: &mut Obj) -> Result<TopkMethod, DsConfigError> {
    let n_group = take_usize(o, "n_group")?;
    let topk_group = take_usize(o, "topk_group")?;
    let method = take_str(o, "topk_method")?.unwrap_or_else(|| "greedy".into());
    match method.as_str() {
        // DeepSeek's published default is spelled "gready".
        "greedy" | "gready" => Ok(TopkMethod::Greedy),
        "group_limited_greedy" => Ok(TopkMethod::GroupLimited {
            n_group: n_group.ok_or(DsConfigError::Missing("n_group"))?,
            topk_group: topk_group.ok_or(DsConfigError::Missing("topk_group"))?,
        }),
        _ => Err(unsupported(
            "topk_method",
            method,
            "only greedy and group_limited_greedy are implemented",
        )),
    }
}

/// `rope_theta` and the scaling, from `rope_parameters` or from `rope_theta` + `rope_scaling`.
fn read_rope(o: &mut Obj) -> Result<(f64, RopeScaling), DsConfigError> {
    let legacy_theta = take_f64(o, "rope_theta")?;
    let (key, params) = match (o.remove("rope_parameters"), o.remove("rope_scaling")) {
        (Some(p), None) | (Some(p), Some(Value::Null)) => ("rope_parameters", p),
        (None, Some(s)) | (Some(Value::Null), Some(s)) => ("rope_scaling", s),
        (None, None) => ("rope_scaling", Value::Null),
        (Some(_), Some(_)) => {
            return Err(DsConfigError::Inconsistent(
                "both rope_parameters and rope_scaling are set".into(),
            ));
        }
    };
    let mut p = match params {
        Value::Null => Obj::new(),
        Value::Object(m) => m,
        v => return Err(bad(key, format!("{v} is not an object"))),
    };
    let theta = match (take_f64(&mut p, "rope_theta")?, legacy_theta) {
        (Some(a), Some(b)) if a != b => {
            return Err(DsConfigError::Inconsistent(format!(
                "rope_theta {b} and {key}.rope_theta {a} differ"
            )));
        }
        (a, b) => a.or(b).unwrap_or(10_000.0),
    };
    let kind = match (take_str(&mut p, "rope_type")?, take_str(&mut p, "type")?) {
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => "default".into(),
    };
    let scaling = match kind.as_str() {
        "default" => RopeScaling::None,
        "yarn" => RopeScaling::Yarn(read_yarn(&mut p)?),
        _ => {
            return Err(unsupported(
                key,
                kind,
                "only default and yarn rotary embeddings are implemented",
            ));
        }
    };
    if let Some(k) = p.keys().next() {
        return Err(DsConfigError::Unknown(format!("{key}.{k}")));
    }
    Ok((theta, scaling))
}

/// YaRN's keys, with DeepSeek's defaults.
fn read_yarn(p: &mut Obj) -> Result<Yarn, DsConfigError> {
    if p.contains_key("attention_factor") {
        return Err(unsupported(
            "rope_scaling.attention_factor",
            &p["attention_factor"],
            "DeepSeek's YaRN derives it from mscale and mscale_all_dim",
        ));
    }
    if let Some(false) = take_bool(p, "truncate")? {
        return Err(unsupported(
            "rope_scaling.truncate",
            false,
            "YaRN's correction range is truncated",
        ));
    }
    Ok(Yarn {
        factor: take_f64(p, "factor")?.ok_or(DsConfigError::Missing("rope_scaling.factor"))?,
        original_max_position_embeddings: take_usize(p, "original_max_position_embeddings")?
            .unwrap_or(4096),
        beta_fast: take_f64(p, "beta_fast")?.unwrap_or(32.0),
        beta_slow: take_f64(p, "beta_slow")?.unwrap_or(1.0),
        mscale: take_f64(p, "mscale")?.unwrap_or(1.0),
        mscale_all_dim: take_f64(p, "mscale_all_dim")?.unwrap_or(0.0),
    })
}

impl DsConfig {
    /// The config as a Hugging Face `config.json` (DeepSeek-V2-Lite's spelling: `rope_theta`
    /// and `rope_scaling`), which [`DsConfig::from_hf_json`] reads back unchanged.
    pub fn to_hf_json(&self) -> String {
        let (topk_method, n_group, topk_group) = match self.topk_method {
            TopkMethod::Greedy => ("greedy", None, None),
            TopkMethod::GroupLimited {
                n_group,
                topk_group,
            } => ("group_limited_greedy", Some(n_group), Some(topk_group)),
        };
        let rope_scaling = match self.rope_scaling {
            RopeScaling::None => Value::Null,
            RopeScaling::Yarn(y) => serde_json::json!({
                "type": "yarn",
                "factor": y.factor,
                "original_max_position_embeddings": y.original_max_position_embeddings,
                "beta_fast": y.beta_fast,
                "beta_slow": y.beta_slow,
                "mscale": y.mscale,
                "mscale_all_dim": y.mscale_all_dim,
            }),
        };
        let v = serde_json::json!({
            "architectures": ["DeepseekV2ForCausalLM"],
            "model_type": "deepseek_v2",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "moe_intermediate_size": self.moe_intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_attention_heads,
            "n_shared_experts": self.n_shared_experts,
            "n_routed_experts": self.n_routed_experts,
            "num_experts_per_tok": self.num_experts_per_tok,
            "routed_scaling_factor": self.routed_scaling_factor,
            "topk_method": topk_method,
            "n_group": n_group,
            "topk_group": topk_group,
            "norm_topk_prob": self.norm_topk_prob,
            "first_k_dense_replace": self.first_k_dense_replace,
            "moe_layer_freq": self.moe_layer_freq,
            "aux_loss_alpha": self.aux_loss_alpha,
            "seq_aux": self.seq_aux,
            "scoring_func": "softmax",
            "hidden_act": "silu",
            "kv_lora_rank": self.kv_lora_rank,
            "q_lora_rank": self.q_lora_rank,
            "qk_nope_head_dim": self.qk_nope_head_dim,
            "qk_rope_head_dim": self.qk_rope_head_dim,
            "v_head_dim": self.v_head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": rope_scaling,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": false,
            "attention_dropout": 0.0,
        });
        serde_json::to_string_pretty(&v).expect("a JSON value serializes")
    }
}
