//! The live SN102 shard file, `model_expgroup_{g}.safetensors`: a flat tensor dict (no wrapper,
//! no metadata) holding exactly the group's routed experts of every MoE layer, as
//! `model.layers.{L}.mlp.experts.{E}.gate_up_proj` (`[2·moe_intermediate, hidden]`, gate rows
//! first, then up) and `model.layers.{L}.mlp.experts.{E}.down_proj` (`[hidden,
//! moe_intermediate]`), `E` the global expert id, no `.weight` suffix; float16 by default,
//! bfloat16 also. (Reference: `connito/shared/checkpoint_helper.py`,
//! `save_state_dict_by_expert_group`; `custom_deepseek_v2_lite.py`, `CustomDeepseekV2Experts`.)
//!
//! A [`Shard`] keeps each tensor's stored bytes, so its [`super::hash::ContentHash`] is the
//! reference's; it converts to and from connito's state dict (Hugging Face names, separate gate
//! and up) losslessly for every finite or infinite f16 and bf16 value (NaN payloads are not
//! kept; a shard holding a NaN is refused anyway).

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::assignment::GroupExperts;
use crate::model::dsv2::weights::{f16_to_f32, f32_to_bf16, f32_to_f16};
use crate::model::expert_key;
use crate::tensors::{StateDict, TensorBlob};

/// The file name of group `g`'s shard.
pub fn file_name(group: u64) -> String {
    format!("model_expgroup_{group}.safetensors")
}

/// Dtypes a shard is written in (and read: the reference hashes whatever it stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardDtype {
    #[default]
    F16,
    BF16,
    F32,
}

impl ShardDtype {
    fn of(d: Dtype) -> Option<Self> {
        match d {
            Dtype::F16 => Some(Self::F16),
            Dtype::BF16 => Some(Self::BF16),
            Dtype::F32 => Some(Self::F32),
            _ => None,
        }
    }

    fn safetensors(self) -> Dtype {
        match self {
            Self::F16 => Dtype::F16,
            Self::BF16 => Dtype::BF16,
            Self::F32 => Dtype::F32,
        }
    }

    fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            _ => 2,
        }
    }

    fn to_f32(self, b: &[u8]) -> f32 {
        match self {
            Self::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            Self::BF16 => f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16),
            Self::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    }

    fn push_f32(self, x: f32, out: &mut Vec<u8>) {
        match self {
            Self::F16 => out.extend(f32_to_f16(x).to_le_bytes()),
            Self::BF16 => out.extend(f32_to_bf16(x).to_le_bytes()),
            Self::F32 => out.extend(x.to_le_bytes()),
        }
    }
}

/// One stored tensor: dtype, shape, little-endian row-major bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    pub dtype: ShardDtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl RawTensor {
    fn values(&self) -> Vec<f32> {
        let size = self.dtype.size();
        self.data
            .chunks_exact(size)
            .map(|c| self.dtype.to_f32(c))
            .collect()
    }

    fn from_values(dtype: ShardDtype, shape: Vec<usize>, values: &[f32]) -> Self {
        let mut data = Vec::with_capacity(values.len() * dtype.size());
        values.iter().for_each(|v| dtype.push_f32(*v, &mut data));
        Self { dtype, shape, data }
    }
}

/// Which of the two tensors of an expert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExpertTensor {
    GateUp,
    Down,
}

/// `(layer, global expert, tensor)` of a shard key, if it is one.
pub fn parse_key(name: &str) -> Option<(usize, usize, ExpertTensor)> {
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let rest = rest.strip_prefix("mlp.experts.")?;
    let (expert, tensor) = rest.split_once('.')?;
    let tensor = match tensor {
        "gate_up_proj" => ExpertTensor::GateUp,
        "down_proj" => ExpertTensor::Down,
        _ => return None,
    };
    // Decimal digits only, no leading zero (the reference's regex `layers\.(\d+)`; Rust's
    // `parse` would take a `+`).
    let number = |s: &str| {
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (digits && (!s.starts_with('0') || s == "0"))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((number(layer)?, number(expert)?, tensor))
}

/// The key of one expert tensor.
pub fn key(layer: usize, expert: usize, tensor: ExpertTensor) -> String {
    let t = match tensor {
        ExpertTensor::GateUp => "gate_up_proj",
        ExpertTensor::Down => "down_proj",
    };
    format!("model.layers.{layer}.mlp.experts.{expert}.{t}")
}

/// What a group's shard must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    pub hidden: usize,
    pub moe_intermediate: usize,
    pub experts: GroupExperts,
}

impl ShardSpec {
    /// The spec of `experts` in `arch`'s shapes.
    pub fn of(arch: &crate::model::dsv2::DsConfig, experts: GroupExperts) -> Self {
        Self {
            hidden: arch.hidden_size,
            moe_intermediate: arch.moe_intermediate_size,
            experts,
        }
    }

    fn shape(&self, t: ExpertTensor) -> Vec<usize> {
        match t {
            ExpertTensor::GateUp => vec![2 * self.moe_intermediate, self.hidden],
            ExpertTensor::Down => vec![self.hidden, self.moe_intermediate],
        }
    }
}

/// Why a shard is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("not a safetensors file: {0}")]
    Malformed(String),
    #[error("tensor {name}: dtype {dtype} (f16, bf16 and f32 are read)")]
    Dtype { name: String, dtype: String },
    #[error("tensor {0} is not an expert tensor of the sn102 layout")]
    UnexpectedTensor(String),
    #[error("tensor {0}: expert outside the group's assignment")]
    NotInGroup(String),
    #[error("tensor {name}: shape {actual:?}, expected {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tensor {0} is missing (the shard holds every expert of the group)")]
    Missing(String),
    #[error("tensor {0} holds a NaN or an infinity")]
    NotFinite(String),
    #[error("tensor {0}: stored bytes do not fill its shape")]
    Truncated(String),
}

/// A shard: tensors by name, in their stored dtype.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shard {
    tensors: BTreeMap<String, RawTensor>,
}

impl Shard {
    /// Tensors in name order (the hash's order).
    pub fn tensors(&self) -> impl Iterator<Item = (&String, &RawTensor)> {
        self.tensors.iter()
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// A shard of these tensors, each checked to fill its shape.
    pub fn from_tensors(
        tensors: impl IntoIterator<Item = (String, RawTensor)>,
    ) -> Result<Self, ShardError> {
        let tensors: BTreeMap<String, RawTensor> = tensors.into_iter().collect();
        for (name, t) in &tensors {
            let bytes = (t.shape.iter()).try_fold(t.dtype.size(), |n, d| n.checked_mul(*d));
            if bytes != Some(t.data.len()) {
                return Err(ShardError::Truncated(name.clone()));
            }
        }
        Ok(Self { tensors })
    }

    /// Reads a safetensors file (any tensor names; [`Self::check`] decides what they may be).
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, ShardError> {
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| ShardError::Malformed(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.iter() {
            let dtype = ShardDtype::of(view.dtype()).ok_or_else(|| ShardError::Dtype {
                name: name.to_string(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            let t = RawTensor {
                dtype,
                shape: view.shape().to_vec(),
                data: view.data().to_vec(),
            };
            tensors.insert(name.to_string(), t);
        }
        Ok(Self { tensors })
    }

    /// The safetensors file (no metadata, as the reference's `save_file` writes).
    pub fn to_safetensors(&self) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> = (self.tensors.iter())
            .map(|(k, t)| {
                let v = TensorView::new(t.dtype.safetensors(), t.shape.clone(), &t.data)
                    .expect("a shard's tensors fill their shapes");
                (k.clone(), v)
            })
            .collect();
        safetensors::serialize(views, None).expect("valid tensor views serialize")
    }

    /// Checks the shard holds exactly the group's expert tensors of `spec`, shaped, finite.
    pub fn check(&self, spec: &ShardSpec) -> Result<(), ShardError> {
        for (name, t) in &self.tensors {
            let (layer, expert, which) =
                parse_key(name).ok_or_else(|| ShardError::UnexpectedTensor(name.clone()))?;
            if !spec.experts.contains(layer, expert) {
                return Err(ShardError::NotInGroup(name.clone()));
            }
            let expected = spec.shape(which);
            if t.shape != expected {
                let actual = t.shape.clone();
                return Err(ShardError::Shape {
                    name: name.clone(),
                    expected,
                    actual,
                });
            }
            if t.values().iter().any(|v| !v.is_finite()) {
                return Err(ShardError::NotFinite(name.clone()));
            }
        }
        for (layer, experts) in &spec.experts.layers {
            for e in experts {
                for which in [ExpertTensor::GateUp, ExpertTensor::Down] {
                    let k = key(*layer, *e, which);
                    if !self.tensors.contains_key(&k) {
                        return Err(ShardError::Missing(k));
                    }
                }
            }
        }
        Ok(())
    }

    /// connito's tensors of this shard (`gate_proj`, `up_proj`, `down_proj` `.weight`), as f32.
    pub fn to_state_dict(&self) -> Result<StateDict, ShardError> {
        let mut sd = StateDict::new();
        for (name, t) in &self.tensors {
            let (layer, expert, which) =
                parse_key(name).ok_or_else(|| ShardError::UnexpectedTensor(name.clone()))?;
            let values = t.values();
            match which {
                ExpertTensor::Down => {
                    let blob = TensorBlob {
                        shape: t.shape.clone(),
                        data: values,
                    };
                    sd.insert(expert_key(layer, expert, "down_proj"), blob);
                }
                ExpertTensor::GateUp => {
                    let (rows, cols) = match t.shape[..] {
                        [r, c] if r % 2 == 0 => (r / 2, c),
                        _ => {
                            let (expected, actual) = (vec![0, 0], t.shape.clone());
                            let name = name.clone();
                            return Err(ShardError::Shape {
                                name,
                                expected,
                                actual,
                            });
                        }
                    };
                    let (gate, up) = values.split_at(rows * cols);
                    for (part, data) in [("gate_proj", gate), ("up_proj", up)] {
                        let blob = TensorBlob {
                            shape: vec![rows, cols],
                            data: data.to_vec(),
                        };
                        sd.insert(expert_key(layer, expert, part), blob);
                    }
                }
            }
        }
        Ok(sd)
    }

    /// The group's shard of connito's state dict `sd` in `dtype` (gate and up fused, gate
    /// first); every expert of `spec` must be in `sd` with its shapes.
    pub fn from_state_dict(
        sd: &StateDict,
        spec: &ShardSpec,
        dtype: ShardDtype,
    ) -> Result<Self, ShardError> {
        let get = |layer, expert, part: &str| {
            let k = expert_key(layer, expert, part);
            let t = sd.get(&k).ok_or_else(|| ShardError::Missing(k.clone()))?;
            let expected = match part {
                "down_proj" => spec.shape(ExpertTensor::Down),
                _ => vec![spec.moe_intermediate, spec.hidden],
            };
            match t.shape == expected {
                true => Ok(t),
                false => Err(ShardError::Shape {
                    name: k,
                    expected,
                    actual: t.shape.clone(),
                }),
            }
        };
        let mut tensors = BTreeMap::new();
        for (layer, experts) in &spec.experts.layers {
            for &e in experts {
                let (gate, up) = (get(*layer, e, "gate_proj")?, get(*layer, e, "up_proj")?);
                let down = get(*layer, e, "down_proj")?;
                let fused: Vec<f32> = gate.data.iter().chain(&up.data).copied().collect();
                let gate_up =
                    RawTensor::from_values(dtype, spec.shape(ExpertTensor::GateUp), &fused);
                let down = RawTensor::from_values(dtype, down.shape.clone(), &down.data);
                tensors.insert(key(*layer, e, ExpertTensor::GateUp), gate_up);
                tensors.insert(key(*layer, e, ExpertTensor::Down), down);
            }
        }
        let shard = Self { tensors };
        shard.check(spec)?;
        Ok(shard)
    }
}
