//! A restricted reader of PyTorch `.pt` files, as `torch.save` (>= 1.6, zip serialization) writes
//! a dict of tensors: the live SN102 reference still accepts legacy `model_expgroup_{g}.pt`
//! shards, `torch.save(sd)` or `torch.save({"model_state_dict": sd})`.
//!
//! It decides which files are a plain state dict and refuses the rest; it never runs code. The
//! pickle (`<prefix>/data.pkl`) goes through a tiny VM that knows only the opcodes torch writes
//! for a dict of tensors (protocol 2, and 4/5 for `pickle_protocol=`) and only these globals:
//! `collections.OrderedDict` (called with no arguments, and BUILD only with a `_metadata` state,
//! as `Module.state_dict()` writes), `torch._utils._rebuild_tensor_v2` (what torch 2.15 writes
//! for f16, bf16, f32 and the older dtypes; `_rebuild_tensor_v3` is for the new unsigned and
//! float8 dtypes, not read), `torch._utils._rebuild_parameter`, and the typed storage classes
//! (`torch.HalfStorage`, ...). Anything else is a typed refusal naming the opcode or global.
//!
//! Memory is bounded by what the file announces, checked before allocating: the pickle's size,
//! its stack, memo and nesting depth, and the tensors' (and storages') total bytes. Tensors must be contiguous and lie inside
//! their storage; each storage file (`<prefix>/data/<key>`, stored, CRC-checked) must be exactly
//! its announced size. Data comes back as stored: little-endian, row-major.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use std::rc::Rc;

use zip::{CompressionMethod, ZipArchive};

/// Element types of the typed storages torch writes with `_rebuild_tensor_v2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtDtype {
    F16,
    BF16,
    F32,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl PtDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    /// The dtype of `torch.<name>`, a typed storage class.
    fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }
}

/// One tensor of the state dict, its bytes contiguous, row-major, little-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtTensor {
    pub name: String,
    pub dtype: PtDtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// What a file may announce before anything is allocated for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtLimits {
    /// Total bytes of the tensors returned (and, separately, of the storages read).
    pub max_total_bytes: usize,
    /// Size of `data.pkl`.
    pub max_pickle_bytes: usize,
    /// Entries on the pickle stack (marks included).
    pub max_stack: usize,
    /// Distinct memo slots.
    pub max_memo: usize,
}

impl Default for PtLimits {
    fn default() -> Self {
        Self {
            max_total_bytes: 4 << 30,
            max_pickle_bytes: 1 << 20,
            max_stack: 1 << 16,
            max_memo: 1 << 16,
        }
    }
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PtError {
    #[error("not a zip archive: {0}")]
    NotAZip(String),
    #[error("zip entry {0} is missing")]
    MissingEntry(String),
    #[error("zip layout: {0}")]
    BadLayout(String),
    #[error("zip entry {0} is compressed (torch.save stores its entries)")]
    Compressed(String),
    #[error("zip entry {name}: {reason}")]
    BadEntry { name: String, reason: String },
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("byteorder {0:?}: only little-endian files are read")]
    BadByteOrder(String),
    #[error("data.pkl is {size} bytes, over the {limit}-byte limit")]
    PickleTooLarge { size: u64, limit: usize },
    #[error("pickle opcode 0x{0:02x} is not allowed")]
    UnsupportedOpcode(u8),
    #[error("pickle global {0} is not allowed")]
    ForbiddenGlobal(String),
    #[error("pickle call refused: {0}")]
    BadCall(String),
    #[error("malformed pickle: {0}")]
    Malformed(String),
    #[error("pickle stack over {0} entries")]
    StackTooDeep(usize),
    #[error("pickle memo over {0} entries")]
    MemoTooLarge(usize),
    #[error("pickle nests over {0} deep")]
    NestingTooDeep(usize),
    #[error("storage persistent id: {0}")]
    BadPersistentId(String),
    #[error("the pickle is not a dict")]
    NotAStateDict,
    #[error("state dict key is not a string")]
    NonStringKey,
    #[error("{0}: not a tensor")]
    NotATensor(String),
    #[error("duplicate tensor name {0}")]
    DuplicateName(String),
    #[error("{0}: not contiguous")]
    NonContiguous(String),
    #[error("{name}: offset {offset} + numel {numel} exceeds its storage's {storage_numel}")]
    StorageTooSmall {
        name: String,
        offset: u64,
        numel: u64,
        storage_numel: u64,
    },
    #[error("storage {0}: announced again with another dtype or size")]
    StorageConflict(String),
    #[error("storage {key}: file is {actual} bytes, announced {expected}")]
    StorageSizeMismatch {
        key: String,
        expected: u64,
        actual: u64,
    },
    #[error("announces {announced} bytes, over the {limit}-byte limit")]
    TooLarge { announced: u64, limit: u64 },
}

/// The tensors of the state dict in `bytes`, in the file's order, unwrapping a top-level
/// `{"model_state_dict": {...}}`.
pub fn read_pt(bytes: &[u8], limits: &PtLimits) -> Result<Vec<PtTensor>, PtError> {
    let mut archive = Archive::open(bytes)?;
    let prefix = archive.prefix.clone();

    let byteorder = format!("{prefix}/byteorder");
    if archive.contains(&byteorder) {
        let order = archive.read(&byteorder, None, 16).map_err(|e| match e {
            PtError::TooLarge { .. } => PtError::BadByteOrder("(over 16 bytes)".into()),
            e => e,
        })?;
        if order != b"little" {
            let order = String::from_utf8_lossy(&order).into_owned();
            return Err(PtError::BadByteOrder(order));
        }
    }

    let max_pickle = limits.max_pickle_bytes as u64;
    let pickle = archive
        .read(&format!("{prefix}/data.pkl"), None, max_pickle)
        .map_err(|e| match e {
            PtError::TooLarge { announced, .. } => PtError::PickleTooLarge {
                size: announced,
                limit: limits.max_pickle_bytes,
            },
            e => e,
        })?;
    let top = Vm::new(&pickle, limits).run()?;
    let tensors = state_dict(top)?;
    let plans = plan(&tensors, limits)?;

    // Read each storage once, handing its bytes over to its last user (whole when it is the
    // only one and covers it).
    let mut users: HashMap<&str, usize> = HashMap::new();
    for (_, t) in &tensors {
        *users.entry(t.storage.key.as_str()).or_default() += 1;
    }
    let mut storages: HashMap<&str, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(tensors.len());
    for ((name, t), p) in tensors.iter().zip(plans) {
        let key = t.storage.key.as_str();
        if !storages.contains_key(key) {
            let expected = t.storage.bytes();
            let entry = format!("{prefix}/data/{key}");
            storages.insert(key, archive.read(&entry, Some(expected), expected)?);
        }
        let left = users.get_mut(key).expect("counted above");
        *left -= 1;
        // In bounds: `plan` checked offset + numel against the announced storage numel, and
        // the file was read at exactly that size.
        let data = if *left == 0 {
            let mut whole = storages.remove(key).expect("read above");
            if p.start != 0 || p.len != whole.len() {
                whole.truncate(p.start + p.len);
                whole.drain(..p.start);
                whole.shrink_to_fit();
            }
            whole
        } else {
            storages[key][p.start..p.start + p.len].to_vec()
        };
        out.push(PtTensor {
            name: name.clone(),
            dtype: t.storage.dtype,
            shape: p.shape,
            data,
        });
    }
    Ok(out)
}

/// The zip container: entries by name, all under one top-level folder (torch names it after
/// the file). The `zip` crate parses it (no compression features: stored entries only).
struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    index: HashMap<String, usize>,
    prefix: String,
    input_len: u64,
}

impl<'a> Archive<'a> {
    fn open(bytes: &'a [u8]) -> Result<Self, PtError> {
        let mut zip =
            ZipArchive::new(Cursor::new(bytes)).map_err(|e| PtError::NotAZip(e.to_string()))?;
        let mut index = HashMap::with_capacity(zip.len());
        let mut prefix: Option<String> = None;
        for i in 0..zip.len() {
            let file = zip
                .by_index_raw(i)
                .map_err(|e| PtError::NotAZip(e.to_string()))?;
            let name = file.name().to_owned();
            let head = match name.split_once('/') {
                Some((head, _)) if !head.is_empty() => head,
                _ => {
                    let why = format!("entry {name:?} outside a folder");
                    return Err(PtError::BadLayout(why));
                }
            };
            match &prefix {
                None => prefix = Some(head.to_owned()),
                Some(p) if p == head => {}
                Some(p) => {
                    let why = format!("entries under both {p:?} and {head:?}");
                    return Err(PtError::BadLayout(why));
                }
            }
            if index.insert(name.clone(), i).is_some() {
                return Err(PtError::BadLayout(format!("entry {name:?} twice")));
            }
        }
        let prefix = prefix.ok_or_else(|| PtError::MissingEntry("data.pkl".into()))?;
        Ok(Self {
            zip,
            index,
            prefix,
            input_len: bytes.len() as u64,
        })
    }

    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Entry `name`'s bytes: stored, of size `expected` when given, at most `max` (both
    /// checked before allocating), CRC-checked by the zip reader.
    fn read(&mut self, name: &str, expected: Option<u64>, max: u64) -> Result<Vec<u8>, PtError> {
        let bad = |reason: String| PtError::BadEntry {
            name: name.to_owned(),
            reason,
        };
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| PtError::MissingEntry(name.to_owned()))?;
        let raw = self.zip.by_index_raw(i).map_err(|e| bad(e.to_string()))?;
        if raw.compression() != CompressionMethod::Stored {
            return Err(PtError::Compressed(name.to_owned()));
        }
        let size = raw.size();
        if raw.compressed_size() != size {
            return Err(bad("stored sizes disagree".into()));
        }
        drop(raw);
        if let Some(expected) = expected
            && size != expected
        {
            let key = name.rsplit('/').next().unwrap_or(name).to_owned();
            return Err(PtError::StorageSizeMismatch {
                key,
                expected,
                actual: size,
            });
        }
        if size > max {
            return Err(PtError::TooLarge {
                announced: size,
                limit: max,
            });
        }
        if size > self.input_len {
            return Err(PtError::Truncated(name.to_owned()));
        }
        let file = self.zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let mut data = Vec::with_capacity(size as usize);
        // Not `take(size)`: the entry reader is already bounded by its size, and the CRC is
        // checked only when that reader itself reaches its end.
        let mut file = file;
        file.read_to_end(&mut data)
            .map_err(|e| bad(e.to_string()))?;
        if data.len() as u64 != size {
            return Err(PtError::Truncated(name.to_owned()));
        }
        Ok(data)
    }
}

/// A storage as its persistent id announces it.
#[derive(Debug, PartialEq, Eq)]
struct StorageRef {
    key: String,
    dtype: PtDtype,
    numel: u64,
}

impl StorageRef {
    fn bytes(&self) -> u64 {
        self.numel.saturating_mul(self.dtype.size() as u64)
    }
}

/// A tensor as `_rebuild_tensor_v2`'s arguments announce it, not yet checked.
#[derive(Debug)]
struct TensorRef {
    storage: Rc<StorageRef>,
    offset: u64,
    shape: Vec<u64>,
    stride: Vec<u64>,
}

/// Where a checked tensor's bytes lie in its storage.
struct Plan {
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

/// Checks every tensor (contiguous, inside its storage) and the announced totals.
fn plan(tensors: &[(String, Rc<TensorRef>)], limits: &PtLimits) -> Result<Vec<Plan>, PtError> {
    let limit = limits.max_total_bytes as u64;
    let too_large = |announced| PtError::TooLarge { announced, limit };
    let mut total = 0u64;
    let mut storage_total = 0u64;
    let mut seen: HashMap<&str, &StorageRef> = HashMap::new();
    let mut plans = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let numel = t
            .shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .ok_or(too_large(u64::MAX))?;
        if numel > 0 {
            let mut expected = 1u64;
            for (&d, &s) in t.shape.iter().zip(&t.stride).rev() {
                if d != 1 && s != expected {
                    return Err(PtError::NonContiguous(name.clone()));
                }
                expected = expected.saturating_mul(d);
            }
            if t.offset.saturating_add(numel) > t.storage.numel {
                return Err(PtError::StorageTooSmall {
                    name: name.clone(),
                    offset: t.offset,
                    numel,
                    storage_numel: t.storage.numel,
                });
            }
        }
        let size = t.storage.dtype.size() as u64;
        total = total.saturating_add(numel.saturating_mul(size));
        match seen.get(t.storage.key.as_str()) {
            Some(&first) if first != &*t.storage => {
                return Err(PtError::StorageConflict(t.storage.key.clone()));
            }
            Some(_) => {}
            None => {
                seen.insert(t.storage.key.as_str(), &t.storage);
                storage_total = storage_total.saturating_add(t.storage.bytes());
            }
        }
        for announced in [total, storage_total] {
            if announced > limit {
                return Err(too_large(announced));
            }
        }
        // Both fit in `max_total_bytes`, a usize.
        let start = if numel > 0 { t.offset * size } else { 0 };
        plans.push(Plan {
            shape: t.shape.iter().map(|&d| d as usize).collect(),
            start: start as usize,
            len: (numel * size) as usize,
        });
    }
    Ok(plans)
}

/// The (name, tensor) pairs of the top-level dict, or of its sole `model_state_dict`.
fn state_dict(top: Value) -> Result<Vec<(String, Rc<TensorRef>)>, PtError> {
    let Value::Dict(mut dict) = top else {
        return Err(PtError::NotAStateDict);
    };
    if let [(Value::Str(k), Value::Dict(_))] = dict.items.as_slice()
        && &**k == "model_state_dict"
    {
        let Some((_, Value::Dict(inner))) = dict.items.pop() else {
            unreachable!("matched above")
        };
        dict = inner;
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(dict.items.len());
    for (k, v) in dict.items {
        let Value::Str(name) = k else {
            return Err(PtError::NonStringKey);
        };
        let Value::Tensor(t) = v else {
            return Err(PtError::NotATensor(name.to_string()));
        };
        if !names.insert(name.clone()) {
            return Err(PtError::DuplicateName(name.to_string()));
        }
        out.push((name.to_string(), t));
    }
    Ok(out)
}

mod pickle;
use pickle::*;

#[cfg(test)]
mod tests;
