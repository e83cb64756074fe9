//! Config parsing, weights files and partial models (agreement with `transformers`:
//! tests/it/dsv2_fixtures.rs).

use std::collections::BTreeMap;

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::weights::{self, StoreDtype, WeightsError, expected_shapes};
use super::*;
use crate::model::to_params;
use crate::rng::SplitMix64;
use crate::tensors::{StateDict, TensorBlob};

/// V2-Lite's config.json as published (the keys that matter, in its spelling).
const LITE: &str = r#"{
  "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
  "aux_loss_alpha": 0.001, "bos_token_id": 100000, "eos_token_id": 100001,
  "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 2048,
  "initializer_range": 0.02, "intermediate_size": 10944, "kv_lora_rank": 512,
  "max_position_embeddings": 163840, "moe_intermediate_size": 1408, "moe_layer_freq": 1,
  "n_group": 1, "n_routed_experts": 64, "n_shared_experts": 2, "norm_topk_prob": false,
  "num_attention_heads": 16, "num_experts_per_tok": 6, "num_hidden_layers": 27,
  "num_key_value_heads": 16, "pretraining_tp": 1, "q_lora_rank": null, "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
    "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096, "type": "yarn"},
  "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax", "seq_aux": true,
  "tie_word_embeddings": false, "topk_group": 1, "topk_method": "greedy",
  "torch_dtype": "bfloat16", "transformers_version": "4.33.1", "use_cache": true,
  "v_head_dim": 128, "vocab_size": 102400
}"#;

#[test]
fn deepseek_v2_lite_config_parses_to_the_preset() {
    assert_eq!(
        DsConfig::from_hf_json(LITE).unwrap(),
        DsConfig::deepseek_v2_lite()
    );
    for c in [
        DsConfig::tiny(),
        DsConfig::small(),
        DsConfig::deepseek_v2_lite(),
    ] {
        assert_eq!(DsConfig::from_hf_json(&c.to_hf_json()).unwrap(), c);
    }
}

fn edited(f: impl FnOnce(&mut serde_json::Value)) -> Result<DsConfig, DsConfigError> {
    let mut v: serde_json::Value = serde_json::from_str(LITE).unwrap();
    f(&mut v);
    DsConfig::from_hf_json(&v.to_string())
}

/// An edit of V2-Lite's config.json.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
#[rustfmt::skip]
fn every_computation_key_is_implemented_or_refused() {
    use serde_json::json;
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("relu", Box::new(|v| v["hidden_act"] = json!("relu")), "hidden_act"),
        ("sigmoid scoring", Box::new(|v| v["scoring_func"] = json!("sigmoid")), "scoring_func"),
        ("noaux_tc", Box::new(|v| v["topk_method"] = json!("noaux_tc")), "topk_method"),
        ("attention bias", Box::new(|v| v["attention_bias"] = json!(true)), "attention_bias"),
        ("dropout", Box::new(|v| v["attention_dropout"] = json!(0.1)), "attention_dropout"),
        ("grouped kv", Box::new(|v| v["num_key_value_heads"] = json!(4)), "num_key_value_heads"),
        ("linear rope", Box::new(|v| v["rope_scaling"]["type"] = json!("linear")), "rope_scaling"),
        ("attention_factor", Box::new(|v| v["rope_scaling"]["attention_factor"] = json!(1.0)), "attention_factor"),
        ("unknown yarn key", Box::new(|v| v["rope_scaling"]["low_freq_factor"] = json!(1.0)), "low_freq_factor"),
        ("unknown key", Box::new(|v| v["sliding_window"] = json!(4096)), "sliding_window"),
        ("llama", Box::new(|v| v["model_type"] = json!("llama")), "llama"),
        ("no hidden size", Box::new(|v| { v.as_object_mut().unwrap().remove("hidden_size"); }), "hidden_size"),
        ("string layers", Box::new(|v| v["num_hidden_layers"] = json!("27")), "num_hidden_layers"),
        ("k > experts", Box::new(|v| v["num_experts_per_tok"] = json!(65)), "num_experts_per_tok"),
        ("odd rope dim", Box::new(|v| v["qk_rope_head_dim"] = json!(63)), "qk_rope_head_dim"),
        ("bad head_dim", Box::new(|v| v["head_dim"] = json!(128)), "head_dim"),
        ("groups do not divide", Box::new(|v| { v["topk_method"] = json!("group_limited_greedy"); v["n_group"] = json!(5); }), "n_group"),
        ("two rope spellings", Box::new(|v| v["rope_parameters"] = json!({"rope_type": "default"})), "rope_parameters"),
    ];
    for (name, edit, phrase) in cases {
        let err = edited(edit).expect_err(name).to_string();
        assert!(err.contains(phrase), "{name}: {err}");
    }
}

#[test]
fn new_transformers_rope_parameters_read_as_the_legacy_keys() {
    let cfg = edited(|v| {
        let o = v.as_object_mut().unwrap();
        let mut rope = o.remove("rope_scaling").unwrap();
        rope["rope_type"] = rope.as_object_mut().unwrap().remove("type").unwrap();
        rope["rope_theta"] = o.remove("rope_theta").unwrap();
        o.insert("rope_parameters".into(), rope);
        o.insert("head_dim".into(), 64.into());
        o.insert("qk_head_dim".into(), 192.into());
    })
    .unwrap();
    assert_eq!(cfg, DsConfig::deepseek_v2_lite());
    let gready = edited(|v| v["topk_method"] = "gready".into()).unwrap();
    assert_eq!(gready.topk_method, TopkMethod::Greedy);
}

/// A random tiny model's state dict.
fn random_sd(cfg: &DsConfig, seed: u64) -> StateDict {
    let mut r = SplitMix64::new(seed);
    expected_shapes(cfg, &Routing::all())
        .into_iter()
        .map(|(k, shape)| {
            let n = shape.iter().product();
            let data = (0..n).map(|_| r.normal_f32() * 0.3).collect();
            (k, TensorBlob::new(shape, data).unwrap())
        })
        .collect()
}

fn tokens(cfg: &DsConfig, b: usize, t: usize, seed: u64) -> Tensor<2, Int> {
    let mut r = SplitMix64::new(seed);
    let ids: Vec<i64> = (0..b * t)
        .map(|_| (r.next_u64() % cfg.vocab_size as u64) as i64)
        .collect();
    Tensor::from_data(TensorData::new(ids, [b, t]), &Device::flex())
}

fn loss_of(cfg: &DsConfig, sd: &StateDict, routing: &Routing, inputs: Tensor<2, Int>) -> f32 {
    let params = to_params(sd, &Device::flex());
    let out = forward(cfg, &params, inputs.clone(), routing);
    next_token_loss(out.logits, inputs).into_scalar()
}

#[test]
fn a_partial_model_equals_the_full_model_masked_the_same_way() {
    let cfg = DsConfig::tiny();
    let dir = tempfile::tempdir().unwrap();
    let sd = random_sd(&cfg, 3);
    weights::save_dir(dir.path(), &cfg, &sd, StoreDtype::F32).unwrap();
    let group = Routing::contiguous(&cfg, 1, 2).unwrap();
    let (_, partial) = weights::load_dir(dir.path(), &group).unwrap();
    assert!(partial.len() < sd.len());
    assert!(!partial.contains_key("model.layers.1.mlp.experts.0.gate_proj.weight"));
    assert!(partial.contains_key("model.layers.1.mlp.experts.4.gate_proj.weight"));
    let inputs = tokens(&cfg, 2, 16, 5);
    let masked = loss_of(&cfg, &sd, &group, inputs.clone());
    let part = loss_of(&cfg, &partial, &group, inputs.clone());
    assert_eq!(masked, part);
    let full = loss_of(&cfg, &sd, &Routing::all(), inputs.clone());
    assert_ne!(full, masked, "the mask changes the routing");
    // SN102's reference routes a partial model's tokens to one expert.
    let top1 = group.clone().with_top_k(&cfg, 1).unwrap();
    assert_eq!(
        loss_of(&cfg, &sd, &top1, inputs.clone()),
        loss_of(&cfg, &partial, &top1, inputs)
    );
    assert!(group.clone().with_top_k(&cfg, 5).is_err());
    assert!(group.with_top_k(&cfg, 0).is_err());
}

#[test]
fn sn102_expert_assignment_files_name_original_ids() {
    let cfg = DsConfig::tiny();
    let text = r#"{"1": [[0, 6], [1, 2], [2, 5]], "2": [[0, 0], [1, 7]], "40": [[0, 1]]}"#;
    let r = Routing::from_assignment_json(&cfg, text).unwrap();
    let ids = |l| -> Vec<usize> { (0..8).filter(|e| r.allowed(l).unwrap()[*e]).collect() };
    assert_eq!(ids(1), vec![2, 5, 6]);
    assert_eq!(ids(2), vec![0, 7]);
    for (bad, phrase) in [
        (r#"{"x": [[0, 1]]}"#, "not a number"),
        (r#"{"1": [[0, 1], [1, 1]], "2": [[0, 1], [1, 2]]}"#, "twice"),
        (r#"{"1": [1, 2]}"#, "expert assignment"),
        (
            r#"{"1": [[0, 1], [1, 9]], "2": [[0, 1], [1, 2]]}"#,
            "expert 9 does not exist",
        ),
    ] {
        let err = Routing::from_assignment_json(&cfg, bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains(phrase), "{bad}: {err}");
    }
}

#[test]
fn groups_must_hold_top_k_experts_of_every_moe_layer() {
    let cfg = DsConfig::tiny();
    assert_eq!(
        Routing::contiguous(&cfg, 0, 8),
        Err(GroupError::TooFew {
            layer: 1,
            have: 1,
            k: 2
        })
    );
    assert!(matches!(
        Routing::contiguous(&cfg, 0, 3),
        Err(GroupError::Split { .. })
    ));
    let layers = BTreeMap::from([(0, vec![0, 1])]);
    assert!(matches!(
        Routing::group(&cfg, &layers),
        Err(GroupError::TooFew { layer: 1, .. })
    ));
    let layers = BTreeMap::from([(1, vec![0, 9]), (2, vec![0, 1])]);
    assert!(matches!(
        Routing::group(&cfg, &layers),
        Err(GroupError::NoSuchExpert { expert: 9, .. })
    ));
    let layers = BTreeMap::from([(0, vec![0, 1]), (1, vec![0, 1]), (2, vec![0, 1])]);
    assert_eq!(
        Routing::group(&cfg, &layers),
        Err(GroupError::NotMoe { layer: 0 })
    );
}

#[test]
fn weights_round_trip_in_every_dtype_and_bad_files_are_named() {
    let cfg = DsConfig::tiny();
    let sd = random_sd(&cfg, 4);
    for dtype in [StoreDtype::F32, StoreDtype::F16, StoreDtype::Bf16] {
        let dir = tempfile::tempdir().unwrap();
        weights::save_dir(dir.path(), &cfg, &sd, dtype).unwrap();
        let (c, back) = weights::load_dir(dir.path(), &Routing::all()).unwrap();
        assert_eq!(c, cfg);
        let tol = match dtype {
            StoreDtype::F32 => 0.0,
            StoreDtype::F16 => 1e-3,
            StoreDtype::Bf16 => 8e-3,
        };
        for (k, t) in &sd {
            let err = t
                .data
                .iter()
                .zip(&back[k].data)
                .map(|(a, b)| (a - b).abs() / a.abs().max(1e-2))
                .fold(0f32, f32::max);
            assert!(err <= tol, "{dtype:?} {k}: {err}");
        }
    }
    let check = |edit: &dyn Fn(&mut StateDict), want: &str| {
        let mut bad = sd.clone();
        edit(&mut bad);
        let dir = tempfile::tempdir().unwrap();
        weights::save_dir(dir.path(), &cfg, &bad, StoreDtype::F32).unwrap();
        let err = weights::load_dir(dir.path(), &Routing::all()).unwrap_err();
        assert_eq!(err.to_string(), want);
    };
    check(
        &|s| {
            s.remove("model.norm.weight");
        },
        "tensor model.norm.weight is missing",
    );
    check(
        &|s| {
            s.insert(
                "model.layers.0.mlp.experts.0.gate_proj.weight".into(),
                TensorBlob::zeros(vec![2, 2]),
            );
        },
        "tensor model.layers.0.mlp.experts.0.gate_proj.weight is not part of this model",
    );
    check(
        &|s| {
            s.insert("model.norm.weight".into(), TensorBlob::zeros(vec![3]));
        },
        "tensor model.norm.weight has shape [3], the config makes it [48]",
    );
    let dir = tempfile::tempdir().unwrap();
    weights::save_dir(dir.path(), &cfg, &sd, StoreDtype::F32).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"junk").unwrap();
    assert!(matches!(
        weights::load_dir(dir.path(), &Routing::all()),
        Err(WeightsError::Malformed { .. })
    ));
}

#[test]
fn half_precision_conversions_are_exact_where_they_must_be() {
    for (bits, v) in [
        (0x0000u16, 0.0f32),
        (0x3c00, 1.0),
        (0xc000, -2.0),
        (0x7bff, 65504.0),
        (0x0001, 5.960_464_5e-8),
        (0x0400, 6.103_515_6e-5),
        (0x7c00, f32::INFINITY),
    ] {
        assert_eq!(weights::f16_to_f32(bits), v, "{bits:#x}");
        assert_eq!(weights::f32_to_f16(v), bits, "{v}");
    }
    assert!(weights::f16_to_f32(0x7e00).is_nan());
    // Every f16 survives the round trip.
    for bits in 0..=u16::MAX {
        let v = weights::f16_to_f32(bits);
        if !v.is_nan() {
            assert_eq!(weights::f32_to_f16(v), bits, "{bits:#x}");
        }
    }
    assert_eq!(
        weights::f32_to_f16(1.0 + 1.0 / 2048.0),
        0x3c00,
        "a tie rounds to even"
    );
    assert_eq!(weights::f32_to_f16(1e6), 0x7c00);
    assert_eq!(weights::f32_to_bf16(1.0), 0x3f80);
    assert_eq!(
        weights::f32_to_bf16(f32::from_bits(0x3f80_8000)),
        0x3f80,
        "a tie rounds to even"
    );
    assert_eq!(weights::f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
}

#[test]
fn deepseek_v2_lite_and_one_group_of_eight_experts() {
    let cfg = DsConfig::deepseek_v2_lite();
    let (all, routed) = parameter_counts(&cfg, &Routing::all());
    assert_eq!(all, 15_706_484_224);
    assert_eq!(routed, 26 * 64 * 3 * 1408 * 2048);
    let group = Routing::contiguous(&cfg, 0, 8).unwrap();
    let (part, routed) = parameter_counts(&cfg, &group);
    assert_eq!(routed, 26 * 8 * 3 * 1408 * 2048);
    eprintln!(
        "deepseek-v2-lite: {all} parameters; one group of 8 experts per layer: {part} ({:.1} GB in bf16)",
        part as f64 * 2.0 / 1e9
    );
}
