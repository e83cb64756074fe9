//! Named f32 tensors (a state dict) and their canonical safetensors encoding.
//!
//! Everything that crosses a process boundary — shards, global models, outer-optimizer
//! momentum — is a [`StateDict`]. The encoding is canonical: keys sorted, little-endian F32,
//! no metadata, so equal contents always give equal bytes and equal hashes.

use std::collections::BTreeMap;

use blake2::{Blake2b, Digest, digest::consts::U32};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// One dense f32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorBlob {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl TensorBlob {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, TensorError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(TensorError::ShapeMismatch {
                name: String::new(),
                expected,
                actual: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    fn le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() * 4);
        for v in &self.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// Tensors by Hugging Face style name (`model.layers.0.mlp.experts.3.up_proj.weight`).
pub type StateDict = BTreeMap<String, TensorBlob>;

/// A 32-byte BLAKE2b digest.
pub type Hash32 = [u8; 32];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TensorError {
    #[error("not a safetensors file: {0}")]
    Malformed(String),
    #[error("tensor {name}: dtype {dtype} is not F32")]
    WrongDtype { name: String, dtype: String },
    #[error("tensor {name}: shape holds {expected} elements, data {actual}")]
    ShapeMismatch {
        name: String,
        expected: usize,
        actual: usize,
    },
    #[error("file is not in canonical form (re-encoding changes its bytes)")]
    NotCanonical,
}

/// BLAKE2b with a 32-byte digest.
pub fn blake2b_256(bytes: &[u8]) -> Hash32 {
    let mut h = Blake2b::<U32>::new();
    h.update(bytes);
    h.finalize().into()
}

/// The first 8 bytes of a BLAKE2b-256 hash as a little-endian integer: a seed or bucket derived
/// from content.
pub fn hash_u64(hash: &Hash32) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(word)
}

/// Canonical safetensors bytes of a state dict.
pub fn encode_safetensors(sd: &StateDict) -> Vec<u8> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = sd
        .iter()
        .map(|(k, t)| (k.clone(), t.le_bytes(), t.shape.clone()))
        .collect();
    let views = bytes.iter().map(|(k, b, s)| {
        (
            k.as_str(),
            TensorView::new(Dtype::F32, s.clone(), b)
                .expect("shape and data agree by construction"),
        )
    });
    safetensors::serialize(views, None).expect("f32 tensors with valid shapes always serialize")
}

/// Exact byte length of [`encode_safetensors`] for a state dict with exactly these names and
/// shapes, computed from the header alone (no tensor data is built): an 8-byte header length,
/// the JSON header padded with spaces to a multiple of 8, then 4 bytes per f32 element.
pub fn canonical_size(expected: &BTreeMap<String, Vec<usize>>) -> usize {
    let mut header = ByteCount(0);
    let mut offset = 0;
    for (i, (name, shape)) in expected.iter().enumerate() {
        let end = offset + 4 * shape.iter().product::<usize>();
        let info = HeaderEntry {
            dtype: "F32",
            shape,
            data_offsets: (offset, end),
        };
        header.0 += usize::from(i > 0);
        serde_json::to_writer(&mut header, name).expect("counting never fails");
        header.0 += 1;
        serde_json::to_writer(&mut header, &info).expect("counting never fails");
        offset = end;
    }
    let json_len = header.0 + 2;
    8 + json_len.next_multiple_of(8) + offset
}

/// One tensor's entry in the safetensors JSON header, field for field as the crate writes it.
#[derive(serde::Serialize)]
struct HeaderEntry<'a> {
    dtype: &'static str,
    shape: &'a [usize],
    data_offsets: (usize, usize),
}

/// An `io::Write` that only counts bytes.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Parses safetensors bytes; only F32 tensors are accepted.
pub fn decode_safetensors(bytes: &[u8]) -> Result<StateDict, TensorError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| TensorError::Malformed(e.to_string()))?;
    let mut out = StateDict::new();
    for (name, view) in st.iter() {
        if view.dtype() != Dtype::F32 {
            return Err(TensorError::WrongDtype {
                name: name.to_string(),
                dtype: format!("{:?}", view.dtype()),
            });
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(
            name.to_string(),
            TensorBlob {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Parses and insists the bytes are exactly the canonical encoding of what they hold.
pub fn decode_canonical(bytes: &[u8]) -> Result<StateDict, TensorError> {
    let sd = decode_safetensors(bytes)?;
    if encode_safetensors(&sd) != bytes {
        return Err(TensorError::NotCanonical);
    }
    Ok(sd)
}

/// Content hash of a state dict: BLAKE2b-256 of its canonical safetensors bytes (covers names,
/// shapes, dtype and values).
pub fn state_dict_hash(sd: &StateDict) -> Hash32 {
    blake2b_256(&encode_safetensors(sd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StateDict {
        let mut sd = StateDict::new();
        sd.insert(
            "b".into(),
            TensorBlob::new(vec![2], vec![1.0, -2.0]).unwrap(),
        );
        sd.insert(
            "a".into(),
            TensorBlob::new(vec![1, 3], vec![0.5, 0.25, 3.0]).unwrap(),
        );
        sd
    }

    #[test]
    fn roundtrip_is_exact_and_canonical() {
        let sd = sample();
        let bytes = encode_safetensors(&sd);
        assert_eq!(decode_canonical(&bytes).unwrap(), sd);
        assert_eq!(encode_safetensors(&sd), bytes, "encoding is deterministic");
    }

    #[test]
    fn hash_covers_shape() {
        let sd = sample();
        let mut reshaped = sd.clone();
        reshaped.get_mut("a").unwrap().shape = vec![3, 1];
        assert_ne!(state_dict_hash(&sd), state_dict_hash(&reshaped));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            decode_safetensors(b"not a file"),
            Err(TensorError::Malformed(_))
        ));
    }

    #[test]
    fn canonical_size_matches_the_encoding() {
        let long = "long.name.".repeat(30);
        let specs: Vec<Vec<(&str, Vec<usize>)>> = vec![
            vec![],
            vec![("a", vec![])],
            vec![("a", vec![0])],
            vec![("a", vec![3, 0, 2]), ("b", vec![1])],
            vec![("b", vec![2]), ("a", vec![1, 3])],
            vec![("x\"y\\z\n", vec![4]), ("\u{e9}t\u{e9}", vec![2, 2])],
            vec![(long.as_str(), vec![1000, 10]), ("s", vec![7])],
        ];
        for spec in specs {
            let shapes: BTreeMap<String, Vec<usize>> = spec
                .iter()
                .map(|(k, s)| (k.to_string(), s.clone()))
                .collect();
            assert_eq!(
                canonical_size(&shapes),
                encode_safetensors(&zeros(&shapes)).len(),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn canonical_size_matches_the_models_groups() {
        let cfg = crate::model::ModelConfig::tiny();
        for group in 0..cfg.n_groups as u16 {
            let shapes = crate::model::group_shapes(&cfg, group);
            assert!(!shapes.is_empty());
            assert_eq!(
                canonical_size(&shapes),
                encode_safetensors(&zeros(&shapes)).len()
            );
        }
    }

    fn zeros(shapes: &BTreeMap<String, Vec<usize>>) -> StateDict {
        shapes
            .iter()
            .map(|(k, s)| (k.clone(), TensorBlob::zeros(s.clone())))
            .collect()
    }

    #[test]
    fn shape_data_mismatch_is_rejected() {
        assert!(TensorBlob::new(vec![2, 2], vec![1.0]).is_err());
    }
}
