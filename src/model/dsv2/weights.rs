//! Hugging Face weights: safetensors in f32, f16 or bf16, one file (`model.safetensors`) or
//! sharded (`model.safetensors.index.json`), converted to f32 on the host at load. A load is
//! checked against the configuration: the first missing, unexpected or wrong-shaped tensor (by
//! name order) is a typed error. A partial model skips the routed experts outside its group.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::config::DsConfig;
use super::{DsConfigError, Routing};
use crate::tensors::{StateDict, TensorBlob};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {why}")]
    Io { path: PathBuf, why: String },
    #[error("{path}: not a safetensors file: {why}")]
    Malformed { path: PathBuf, why: String },
    #[error("{path}: the shard index is not valid: {why}")]
    Index { path: PathBuf, why: String },
    #[error("tensor {name} has dtype {dtype}; f32, f16 and bf16 are read")]
    Dtype { name: String, dtype: String },
    #[error("tensor {0} is missing")]
    Missing(String),
    #[error("tensor {0} is not part of this model")]
    Unexpected(String),
    #[error("tensor {name} has shape {got:?}, the config makes it {want:?}")]
    Shape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    #[error("config.json: {0}")]
    Config(#[from] DsConfigError),
}

/// How tensors are stored when saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDtype {
    F32,
    F16,
    Bf16,
}

/// Every tensor the model has, by name, with its shape: the routed experts only where
/// `routing` allows them.
pub fn expected_shapes(cfg: &DsConfig, routing: &Routing) -> BTreeMap<String, Vec<usize>> {
    let (h, v) = (cfg.hidden_size, cfg.vocab_size);
    let mut m = BTreeMap::new();
    m.insert("model.embed_tokens.weight".into(), vec![v, h]);
    m.insert("model.norm.weight".into(), vec![h]);
    if !cfg.tie_word_embeddings {
        m.insert("lm_head.weight".into(), vec![v, h]);
    }
    for l in 0..cfg.num_hidden_layers {
        let pre = format!("model.layers.{l}");
        m.insert(format!("{pre}.input_layernorm.weight"), vec![h]);
        m.insert(format!("{pre}.post_attention_layernorm.weight"), vec![h]);
        attention_shapes(cfg, &pre, &mut m);
        if cfg.is_moe_layer(l) {
            m.insert(
                format!("{pre}.mlp.gate.weight"),
                vec![cfg.n_routed_experts, h],
            );
            for e in 0..cfg.n_routed_experts {
                if routing.allowed(l).is_none_or(|a| a[e]) {
                    mlp_shapes(
                        &format!("{pre}.mlp.experts.{e}"),
                        h,
                        cfg.moe_intermediate_size,
                        &mut m,
                    );
                }
            }
            if cfg.n_shared_experts > 0 {
                mlp_shapes(
                    &format!("{pre}.mlp.shared_experts"),
                    h,
                    cfg.shared_width(),
                    &mut m,
                );
            }
        } else {
            mlp_shapes(&format!("{pre}.mlp"), h, cfg.intermediate_size, &mut m);
        }
    }
    m
}

fn attention_shapes(cfg: &DsConfig, pre: &str, m: &mut BTreeMap<String, Vec<usize>>) {
    let (h, heads) = (cfg.hidden_size, cfg.num_attention_heads);
    let mut put = |n: &str, s: Vec<usize>| m.insert(format!("{pre}.self_attn.{n}.weight"), s);
    let q_out = heads * cfg.q_head_dim();
    match cfg.q_lora_rank {
        None => put("q_proj", vec![q_out, h]),
        Some(r) => {
            put("q_a_proj", vec![r, h]);
            put("q_a_layernorm", vec![r]);
            put("q_b_proj", vec![q_out, r])
        }
    };
    let r = cfg.kv_lora_rank;
    put("kv_a_proj_with_mqa", vec![r + cfg.qk_rope_head_dim, h]);
    put("kv_a_layernorm", vec![r]);
    put(
        "kv_b_proj",
        vec![heads * (cfg.qk_nope_head_dim + cfg.v_head_dim), r],
    );
    put("o_proj", vec![h, heads * cfg.v_head_dim]);
}

fn mlp_shapes(pre: &str, h: usize, width: usize, m: &mut BTreeMap<String, Vec<usize>>) {
    m.insert(format!("{pre}.gate_proj.weight"), vec![width, h]);
    m.insert(format!("{pre}.up_proj.weight"), vec![width, h]);
    m.insert(format!("{pre}.down_proj.weight"), vec![h, width]);
}

/// Reads a model directory's `config.json`.
pub fn read_config(dir: &Path) -> Result<DsConfig, WeightsError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    Ok(DsConfig::from_hf_json(&text)?)
}

/// Reads `dir/config.json` and the weights beside it, as a partial model where `routing` says.
pub fn load_dir(dir: &Path, routing: &Routing) -> Result<(DsConfig, StateDict), WeightsError> {
    let cfg = read_config(dir)?;
    let sd = load_weights(dir, &cfg, routing)?;
    Ok((cfg, sd))
}

/// The weights in `dir` (one file or an index of shards), checked against `cfg`.
pub fn load_weights(
    dir: &Path,
    cfg: &DsConfig,
    routing: &Routing,
) -> Result<StateDict, WeightsError> {
    let want = expected_shapes(cfg, routing);
    let skipped = |name: &str| outside_group(cfg, routing, name);
    let mut sd = StateDict::new();
    for file in weight_files(dir)? {
        let bytes = std::fs::read(&file).map_err(|e| io(&file, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| WeightsError::Malformed {
            path: file.clone(),
            why: e.to_string(),
        })?;
        let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
        names.sort();
        for name in names {
            if skipped(&name) {
                continue;
            }
            let view = st.tensor(&name).map_err(|e| WeightsError::Malformed {
                path: file.clone(),
                why: e.to_string(),
            })?;
            sd.insert(name.clone(), to_f32(&name, &view)?);
        }
    }
    check(&sd, &want)?;
    Ok(sd)
}

/// A routed expert of an MoE layer that `routing` leaves out (another group's: not loaded).
fn outside_group(cfg: &DsConfig, routing: &Routing, name: &str) -> bool {
    let parsed = name
        .strip_prefix("model.layers.")
        .and_then(|r| r.split_once(".mlp.experts."))
        .and_then(|(l, r)| {
            Some((
                l.parse::<usize>().ok()?,
                r.split_once('.')?.0.parse::<usize>().ok()?,
            ))
        });
    parsed.is_some_and(|(l, e)| {
        cfg.is_moe_layer(l) && e < cfg.n_routed_experts && routing.allowed(l).is_some_and(|a| !a[e])
    })
}

fn io(path: &Path, e: std::io::Error) -> WeightsError {
    WeightsError::Io {
        path: path.to_path_buf(),
        why: e.to_string(),
    }
}

/// The files holding the weights: the shards an index names (sorted, each once) or the one file.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, WeightsError> {
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return Ok(vec![dir.join("model.safetensors")]);
    }
    let text = std::fs::read_to_string(&index).map_err(|e| io(&index, e))?;
    let bad = |why: String| WeightsError::Index {
        path: index.clone(),
        why,
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let map = v["weight_map"]
        .as_object()
        .ok_or_else(|| bad("no weight_map object".into()))?;
    let mut files: Vec<String> = map
        .values()
        .map(|f| {
            f.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(format!("{f} is not a file name")))
        })
        .collect::<Result<_, _>>()?;
    files.sort();
    files.dedup();
    for f in &files {
        if f.contains('/') || f.contains('\\') || f == ".." {
            return Err(bad(format!(
                "shard {f:?} is not a file name beside the index"
            )));
        }
    }
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

/// The first (by name) missing, unexpected or wrong-shaped tensor.
fn check(sd: &StateDict, want: &BTreeMap<String, Vec<usize>>) -> Result<(), WeightsError> {
    let missing = want.keys().find(|k| !sd.contains_key(*k));
    let unexpected = sd.keys().find(|k| !want.contains_key(*k));
    match (missing, unexpected) {
        (Some(m), Some(u)) if u < m => return Err(WeightsError::Unexpected(u.clone())),
        (Some(m), _) => return Err(WeightsError::Missing(m.clone())),
        (None, Some(u)) => return Err(WeightsError::Unexpected(u.clone())),
        (None, None) => {}
    }
    for (name, t) in sd {
        if t.shape != want[name] {
            return Err(WeightsError::Shape {
                name: name.clone(),
                got: t.shape.clone(),
                want: want[name].clone(),
            });
        }
    }
    Ok(())
}

fn to_f32(name: &str, view: &TensorView<'_>) -> Result<TensorBlob, WeightsError> {
    let b = view.data();
    let data: Vec<f32> = match view.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        other => {
            return Err(WeightsError::Dtype {
                name: name.into(),
                dtype: format!("{other:?}"),
            });
        }
    };
    Ok(TensorBlob {
        shape: view.shape().to_vec(),
        data,
    })
}

/// IEEE half to single precision (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let man = (h & 0x3ff) as f32;
    match exp {
        0 => sign * man * 2f32.powi(-24),
        0x1f if man == 0.0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        e => sign * (1.0 + man / 1024.0) * 2f32.powi(e as i32 - 15),
    }
}

/// Single to half precision, rounding to nearest even (overflow to infinity).
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    if x.is_nan() {
        return sign | 0x7e00;
    }
    let a = x.abs();
    if a >= 65520.0 {
        return sign | 0x7c00;
    }
    if a < 2f32.powi(-14) {
        // Subnormal (or zero): units of 2^-24, rounded to nearest even.
        let units = a * 2f32.powi(24);
        return sign | round_even(units) as u16;
    }
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let man = bits & 0x7f_ffff;
    let half = ((exp as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    let up = rest > 0x1000 || (rest == 0x1000 && half & 1 == 1);
    sign | (half + up as u32) as u16
}

fn round_even(v: f32) -> u32 {
    let f = v.floor();
    let d = v - f;
    let n = f as u32;
    if d > 0.5 || (d == 0.5 && n % 2 == 1) {
        n + 1
    } else {
        n
    }
}

/// Single precision to bfloat16, rounding to nearest even.
pub fn f32_to_bf16(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7fc0;
    }
    let bits = x.to_bits();
    let round = ((bits >> 16) & 1) + 0x7fff;
    ((bits + round) >> 16) as u16
}

/// Safetensors bytes of `sd` stored as `dtype`.
pub fn encode(sd: &StateDict, dtype: StoreDtype) -> Vec<u8> {
    let encoded: Vec<(&String, Vec<u8>, &Vec<usize>)> = sd
        .iter()
        .map(|(k, t)| {
            let bytes = match dtype {
                StoreDtype::F32 => t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                StoreDtype::F16 => t
                    .data
                    .iter()
                    .flat_map(|v| f32_to_f16(*v).to_le_bytes())
                    .collect(),
                StoreDtype::Bf16 => t
                    .data
                    .iter()
                    .flat_map(|v| f32_to_bf16(*v).to_le_bytes())
                    .collect(),
            };
            (k, bytes, &t.shape)
        })
        .collect();
    let st = match dtype {
        StoreDtype::F32 => Dtype::F32,
        StoreDtype::F16 => Dtype::F16,
        StoreDtype::Bf16 => Dtype::BF16,
    };
    let views = encoded.iter().map(|(k, b, s)| {
        (
            k.as_str(),
            TensorView::new(st, (*s).clone(), b).expect("shape and data agree by construction"),
        )
    });
    safetensors::serialize(views, None).expect("tensors with valid shapes serialize")
}

/// Writes `dir/config.json` and `dir/model.safetensors` (one file), as `save_pretrained` lays
/// them out.
pub fn save_dir(
    dir: &Path,
    cfg: &DsConfig,
    sd: &StateDict,
    dtype: StoreDtype,
) -> Result<(), WeightsError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let cfg_path = dir.join("config.json");
    std::fs::write(&cfg_path, cfg.to_hf_json()).map_err(|e| io(&cfg_path, e))?;
    let path = dir.join("model.safetensors");
    let tmp = dir.join("model.safetensors.tmp");
    std::fs::write(&tmp, encode(sd, dtype)).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
}
