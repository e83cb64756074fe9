//! The pickle machine of the restricted `.pt` reader: only the opcodes and globals a
//! `torch.save`d tensor dict uses; everything else is refused, nothing is executed.

use super::*;

/// The callables and classes a file may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Global {
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
pub(super) struct Dict {
    ordered: bool,
    pub(super) items: Vec<(Value, Value)>,
    depth: usize,
}

impl Dict {
    pub(super) fn new(ordered: bool) -> Self {
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
pub(super) const MAX_DEPTH: usize = 32;

/// The depth of a container holding `children`, refused past [`MAX_DEPTH`].
pub(super) fn nesting<'v>(children: impl IntoIterator<Item = &'v Value>) -> Result<usize, PtError> {
    let depth = 1 + children.into_iter().map(Value::depth).max().unwrap_or(0);
    if depth > MAX_DEPTH {
        return Err(PtError::NestingTooDeep(MAX_DEPTH));
    }
    Ok(depth)
}

/// Pickle values. Tuples are shared (`Rc`), so a memo fetched many times costs one slot each;
/// dicts are mutable and never enter the memo's readable side (see [`Memo`]).
#[derive(Debug, Clone)]
pub(super) enum Value {
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
pub(super) enum Memo {
    Value(Value),
    Dict,
}

/// The opcodes this reader executes.
pub(super) mod op {
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
pub(super) const MAX_NDIM: usize = 64;

/// The pickle machine: a stack, marks into it, a bounded memo; nothing is ever called.
pub(super) struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Memo>,
    limits: &'a PtLimits,
}

pub(super) fn malformed(what: impl Into<String>) -> PtError {
    PtError::Malformed(what.into())
}

impl<'a> Vm<'a> {
    pub(super) fn new(data: &'a [u8], limits: &'a PtLimits) -> Self {
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
    pub(super) fn run(mut self) -> Result<Value, PtError> {
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
pub(super) fn persistent_storage(pid: &Value) -> Result<StorageRef, PtError> {
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
pub(super) fn reduce(g: Global, args: &[Value]) -> Result<Value, PtError> {
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
pub(super) fn dims(v: &Value) -> Option<Vec<u64>> {
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
