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

/// The callables and classes a file may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(PtDtype),
}

impl Global {
    fn resolve(module: &str, name: &str) -> Result<Self, PtError> {
        match (module, name) {
            ("collections", "OrderedDict") => Ok(Self::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Ok(Self::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Ok(Self::RebuildParameter),
            ("torch", class) => PtDtype::from_storage_class(class)
                .map(Self::Storage)
                .ok_or_else(|| PtError::ForbiddenGlobal(format!("{module}.{name}"))),
            _ => Err(PtError::ForbiddenGlobal(format!("{module}.{name}"))),
        }
    }
}

/// A dict under construction; `ordered` when made by `OrderedDict()`.
#[derive(Debug, Clone)]
struct Dict {
    ordered: bool,
    items: Vec<(Value, Value)>,
    depth: usize,
}

impl Dict {
    fn new(ordered: bool) -> Self {
        Self {
            ordered,
            items: Vec::new(),
            depth: 1,
        }
    }

    fn insert(&mut self, k: Value, v: Value) -> Result<(), PtError> {
        self.depth = self.depth.max(nesting([&k, &v])?);
        self.items.push((k, v));
        Ok(())
    }
}

/// Deepest nesting of tuples and dicts a file may build (a state dict needs 4): dropping a
/// value recurses as deep as it nests.
const MAX_DEPTH: usize = 32;

/// The depth of a container holding `children`, refused past [`MAX_DEPTH`].
fn nesting<'v>(children: impl IntoIterator<Item = &'v Value>) -> Result<usize, PtError> {
    let depth = 1 + children.into_iter().map(Value::depth).max().unwrap_or(0);
    if depth > MAX_DEPTH {
        return Err(PtError::NestingTooDeep(MAX_DEPTH));
    }
    Ok(depth)
}

/// Pickle values. Tuples are shared (`Rc`), so a memo fetched many times costs one slot each;
/// dicts are mutable and never enter the memo's readable side (see [`Memo`]).
#[derive(Debug, Clone)]
enum Value {
    None,
    /// True or False: nothing reads which.
    Bool,
    Int(i64),
    Str(Rc<str>),
    /// Items and nesting depth.
    Tuple(Rc<[Value]>, usize),
    Dict(Dict),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn tuple(items: Vec<Value>) -> Result<Self, PtError> {
        let depth = nesting(&items)?;
        Ok(Self::Tuple(items.into(), depth))
    }

    fn depth(&self) -> usize {
        match self {
            Self::Tuple(_, depth) => *depth,
            Self::Dict(d) => d.depth,
            _ => 0,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool => "bool",
            Self::Int(_) => "int",
            Self::Str(_) => "str",
            Self::Tuple(..) => "tuple",
            Self::Dict(_) => "dict",
            Self::Global(_) => "global",
            Self::Storage(_) => "storage",
            Self::Tensor(_) => "tensor",
        }
    }
}

/// A memo slot. A memoized dict is only a marker: fetching it again (an alias of a mutable
/// object, or a cycle) is refused rather than copied.
#[derive(Debug)]
enum Memo {
    Value(Value),
    Dict,
}

/// The opcodes this reader executes.
mod op {
    pub const PROTO: u8 = 0x80;
    pub const FRAME: u8 = 0x95;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const EMPTY_DICT: u8 = b'}';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const BINUNICODE: u8 = b'X';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const MEMOIZE: u8 = 0x94;
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const GLOBAL: u8 = b'c';
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const REDUCE: u8 = b'R';
    pub const BUILD: u8 = b'b';
    pub const BINPERSID: u8 = b'Q';
}

/// Most dims a tensor may have (torch's own limit is 64).
const MAX_NDIM: usize = 64;

/// The pickle machine: a stack, marks into it, a bounded memo; nothing is ever called.
struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Memo>,
    limits: &'a PtLimits,
}

fn malformed(what: impl Into<String>) -> PtError {
    PtError::Malformed(what.into())
}

impl<'a> Vm<'a> {
    fn new(data: &'a [u8], limits: &'a PtLimits) -> Self {
        Self {
            data,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            limits,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PtError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| PtError::Truncated("data.pkl".into()))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PtError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn push(&mut self, v: Value) -> Result<(), PtError> {
        if self.stack.len() + self.marks.len() >= self.limits.max_stack {
            return Err(PtError::StackTooDeep(self.limits.max_stack));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, PtError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(malformed("pop across a mark"));
        }
        self.stack.pop().ok_or_else(|| malformed("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PtError> {
        let mark = self.marks.pop().ok_or_else(|| malformed("no mark"))?;
        Ok(self.stack.split_off(mark))
    }

    fn top_dict(&mut self) -> Result<&mut Dict, PtError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(malformed("dict behind a mark"));
        }
        match self.stack.last_mut() {
            Some(Value::Dict(d)) => Ok(d),
            Some(v) => Err(malformed(format!("SETITEM on a {}", v.kind()))),
            None => Err(malformed("stack underflow")),
        }
    }

    fn put(&mut self, index: u32) -> Result<(), PtError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(malformed("memoize across a mark"));
        }
        let slot = match self.stack.last() {
            Some(Value::Dict(_)) => Memo::Dict,
            Some(v) => Memo::Value(v.clone()),
            None => return Err(malformed("memoize on an empty stack")),
        };
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&index) {
            return Err(PtError::MemoTooLarge(self.limits.max_memo));
        }
        self.memo.insert(index, slot);
        Ok(())
    }

    fn get(&mut self, index: u32) -> Result<(), PtError> {
        let v = match self.memo.get(&index) {
            Some(Memo::Value(v)) => v.clone(),
            Some(Memo::Dict) => return Err(malformed("memo fetch of a dict")),
            None => return Err(malformed(format!("memo {index} unset"))),
        };
        self.push(v)
    }

    fn string(&mut self, len: usize) -> Result<Value, PtError> {
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| malformed("string not UTF-8"))?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn line(&mut self) -> Result<&'a str, PtError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .take(256)
            .position(|&b| b == b'\n')
            .ok_or_else(|| malformed("GLOBAL line unterminated or over 256 bytes"))?;
        let line = self.take(n + 1)?;
        std::str::from_utf8(&line[..n]).map_err(|_| malformed("GLOBAL not UTF-8"))
    }

    /// Runs to STOP and returns the pickled object.
    fn run(mut self) -> Result<Value, PtError> {
        loop {
            let code = self.array::<1>()?[0];
            match code {
                op::PROTO => {
                    let v = self.array::<1>()?[0];
                    if !(2..=5).contains(&v) {
                        return Err(malformed(format!("pickle protocol {v}")));
                    }
                }
                op::FRAME => {
                    self.take(8)?;
                }
                op::STOP => {
                    let top = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return Err(malformed("values left on the stack at STOP"));
                    }
                    if self.pos != self.data.len() {
                        return Err(malformed("bytes after STOP"));
                    }
                    return Ok(top);
                }
                op::MARK => {
                    if self.stack.len() + self.marks.len() >= self.limits.max_stack {
                        return Err(PtError::StackTooDeep(self.limits.max_stack));
                    }
                    self.marks.push(self.stack.len());
                }
                op::EMPTY_DICT => self.push(Value::Dict(Dict::new(false)))?,
                op::EMPTY_TUPLE => self.push(Value::tuple(Vec::new())?)?,
                op::BINUNICODE => {
                    let len = u32::from_le_bytes(self.array()?) as usize;
                    let v = self.string(len)?;
                    self.push(v)?;
                }
                op::SHORT_BINUNICODE => {
                    let len = self.array::<1>()?[0] as usize;
                    let v = self.string(len)?;
                    self.push(v)?;
                }
                op::BININT => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Value::Int(v.into()))?;
                }
                op::BININT1 => {
                    let v = self.array::<1>()?[0];
                    self.push(Value::Int(v.into()))?;
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Value::Int(v.into()))?;
                }
                op::LONG1 => {
                    let n = self.array::<1>()?[0] as usize;
                    if n > 8 {
                        return Err(malformed(format!("LONG1 of {n} bytes")));
                    }
                    let raw = self.take(n)?;
                    let fill = if raw.last().is_some_and(|&b| b & 0x80 != 0) {
                        0xff
                    } else {
                        0
                    };
                    let mut le = [fill; 8];
                    le[..n].copy_from_slice(raw);
                    self.push(Value::Int(i64::from_le_bytes(le)))?;
                }
                op::NONE => self.push(Value::None)?,
                op::NEWTRUE | op::NEWFALSE => self.push(Value::Bool)?,
                op::BINPUT => {
                    let i = self.array::<1>()?[0];
                    self.put(i.into())?;
                }
                op::LONG_BINPUT => {
                    let i = u32::from_le_bytes(self.array()?);
                    self.put(i)?;
                }
                op::MEMOIZE => {
                    let i = u32::try_from(self.memo.len()).map_err(|_| malformed("memo"))?;
                    self.put(i)?;
                }
                op::BINGET => {
                    let i = self.array::<1>()?[0];
                    self.get(i.into())?;
                }
                op::LONG_BINGET => {
                    let i = u32::from_le_bytes(self.array()?);
                    self.get(i)?;
                }
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push(Value::tuple(items)?)?;
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1) + 1;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::tuple(items)?)?;
                }
                op::SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.top_dict()?.insert(k, v)?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(malformed("SETITEMS with an odd count"));
                    }
                    let dict = self.top_dict()?;
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        dict.insert(k, v)?;
                    }
                }
                op::GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = Global::resolve(module, name)?;
                    self.push(Value::Global(g))?;
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(malformed("STACK_GLOBAL of non-strings"));
                    };
                    let g = Global::resolve(&module, &name)?;
                    self.push(Value::Global(g))?;
                }
                op::REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let (Value::Global(g), Value::Tuple(args, _)) = (&callable, &args) else {
                        return Err(malformed(format!(
                            "REDUCE of a {} with a {}",
                            callable.kind(),
                            args.kind()
                        )));
                    };
                    let v = reduce(*g, args)?;
                    self.push(v)?;
                }
                op::BUILD => {
                    let state = self.pop()?;
                    let target = self.top_dict().ok().filter(|d| d.ordered);
                    if target.is_none() {
                        return Err(PtError::UnsupportedOpcode(op::BUILD));
                    }
                    match &state {
                        Value::Dict(s)
                            if s.items.iter().all(
                                |(k, _)| matches!(k, Value::Str(k) if &**k == "_metadata"),
                            ) => {}
                        _ => {
                            return Err(PtError::BadCall(
                                "OrderedDict state other than _metadata".into(),
                            ));
                        }
                    }
                }
                op::BINPERSID => {
                    let pid = self.pop()?;
                    let storage = persistent_storage(&pid)?;
                    self.push(Value::Storage(Rc::new(storage)))?;
                }
                other => return Err(PtError::UnsupportedOpcode(other)),
            }
        }
    }
}

/// `("storage", torch.<X>Storage, key, location, numel)`, as torch's `persistent_id` writes.
fn persistent_storage(pid: &Value) -> Result<StorageRef, PtError> {
    let bad = |what: &str| PtError::BadPersistentId(what.to_owned());
    let Value::Tuple(items, _) = pid else {
        return Err(bad("not a tuple"));
    };
    let [tag, class, key, location, numel] = &**items else {
        return Err(bad("not five fields"));
    };
    if !matches!(tag, Value::Str(t) if &**t == "storage") {
        return Err(bad("tag is not \"storage\""));
    }
    let Value::Global(Global::Storage(dtype)) = class else {
        return Err(bad("not a typed storage class"));
    };
    let Value::Str(key) = key else {
        return Err(bad("key is not a string"));
    };
    let key_ok = !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !key_ok {
        return Err(bad("key is not a short alphanumeric name"));
    }
    if !matches!(location, Value::Str(l) if l.len() <= 64) {
        return Err(bad("location is not a short string"));
    }
    let Value::Int(numel) = numel else {
        return Err(bad("numel is not an int"));
    };
    let numel = u64::try_from(*numel).map_err(|_| bad("negative numel"))?;
    Ok(StorageRef {
        key: key.to_string(),
        dtype: *dtype,
        numel,
    })
}

/// The result of calling an allowed global: only the shapes of arguments torch writes.
fn reduce(g: Global, args: &[Value]) -> Result<Value, PtError> {
    let bad = |what: &str| PtError::BadCall(format!("{g:?}: {what}"));
    let empty_dict = |v: &Value| matches!(v, Value::Dict(d) if d.items.is_empty());
    match g {
        Global::OrderedDict if args.is_empty() => Ok(Value::Dict(Dict::new(true))),
        Global::OrderedDict => Err(bad("called with arguments")),
        Global::RebuildTensorV2 => {
            let [storage, offset, shape, stride, requires_grad, hooks] = args else {
                return Err(bad("not six arguments (tensor metadata is not read)"));
            };
            let Value::Storage(storage) = storage else {
                return Err(bad("first argument is not a storage"));
            };
            let offset = match offset {
                Value::Int(o) => u64::try_from(*o).map_err(|_| bad("negative offset"))?,
                _ => return Err(bad("offset is not an int")),
            };
            let shape = dims(shape).ok_or_else(|| bad("size is not a tuple of ints >= 0"))?;
            let stride = dims(stride).ok_or_else(|| bad("stride is not a tuple of ints >= 0"))?;
            if shape.len() != stride.len() {
                return Err(bad("size and stride differ in length"));
            }
            if !matches!(requires_grad, Value::Bool) || !empty_dict(hooks) {
                return Err(bad("requires_grad or backward hooks"));
            }
            Ok(Value::Tensor(Rc::new(TensorRef {
                storage: storage.clone(),
                offset,
                shape,
                stride,
            })))
        }
        Global::RebuildParameter => match args {
            [Value::Tensor(t), Value::Bool, hooks] if empty_dict(hooks) => {
                Ok(Value::Tensor(t.clone()))
            }
            _ => Err(bad("not (tensor, requires_grad, {})")),
        },
        Global::Storage(_) => Err(bad("storage classes are not called")),
    }
}

/// A tuple of at most [`MAX_NDIM`] non-negative ints.
fn dims(v: &Value) -> Option<Vec<u64>> {
    let Value::Tuple(items, _) = v else {
        return None;
    };
    if items.len() > MAX_NDIM {
        return None;
    }
    items
        .iter()
        .map(|d| match d {
            Value::Int(d) => u64::try_from(*d).ok(),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[path = "pt_tests.rs"]
mod tests;
