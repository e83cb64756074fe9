//! Substrate JSON-RPC for devnet: requests parsed and answered as pure functions of a
//! [`NodeView`] (the chain as a node exposes it). The socket server and subscriptions live in
//! `actors/devnet/mod.rs`.
//!
//! Errors use JSON-RPC's codes (-32700 parse error, -32600 invalid request, -32601 method not
//! found, -32602 invalid params) and, for a runtime call a node cannot execute, Substrate's 4003
//! with the node's message (`Client error: Execution failed: Other: Exported method X is not
//! found`), which the Python SDK recognizes.

use serde_json::{Value, json};

use crate::chain::dev::static_api::{RuntimeCallError, RuntimeVersion};
use crate::chain::substrate::extrinsic::ExtrinsicError;
use crate::submission::keys::ss58_decode;
use crate::tensors::Hash32;

/// Largest request body accepted (HTTP body or WebSocket message).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The JSON-RPC methods answered here (subscriptions are added by the server).
pub const METHODS: &[&str] = &[
    "rpc_methods",
    "system_chain",
    "system_name",
    "system_version",
    "system_properties",
    "system_health",
    "chain_getBlockHash",
    "chain_getHead",
    "chain_getFinalizedHead",
    "chain_getHeader",
    "state_getRuntimeVersion",
    "chain_getRuntimeVersion",
    "state_getMetadata",
    "state_call",
    "state_getStorage",
    "state_getStorageAt",
    "state_getKeys",
    "state_getKeysPaged",
    "state_getKeysPagedAt",
    "state_queryStorageAt",
    "chain_getBlock",
    "author_submitExtrinsic",
    "system_accountNextIndex",
    "account_nextIndex",
];

/// The subscriptions (and their unsubscribes) the WebSocket server serves (`actors/devnet`),
/// listed by `rpc_methods` with [`METHODS`] as a node lists them: polkadot.js deletes every
/// method `rpc_methods` does not name, `api.rpc.chain.subscribeNewHeads` and the
/// `author_submitAndWatchExtrinsic` behind `signAndSend` included.
pub const SUBSCRIPTION_METHODS: &[&str] = &[
    "chain_subscribeNewHeads",
    "chain_unsubscribeNewHeads",
    "chain_subscribeNewHead",
    "chain_unsubscribeNewHead",
    "chain_subscribeFinalizedHeads",
    "chain_unsubscribeFinalizedHeads",
    "chain_subscribeAllHeads",
    "chain_unsubscribeAllHeads",
    "author_submitAndWatchExtrinsic",
    "author_unwatchExtrinsic",
    "state_subscribeRuntimeVersion",
    "state_unsubscribeRuntimeVersion",
    "chain_subscribeRuntimeVersion",
    "chain_unsubscribeRuntimeVersion",
    "state_subscribeStorage",
    "state_unsubscribeStorage",
];

/// A block header as `chain_getHeader` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub parent_hash: Hash32,
    pub number: u64,
    pub state_root: Hash32,
    pub extrinsics_root: Hash32,
}

/// What a node exposes to RPC. `at: None` is the best block.
pub trait NodeView {
    fn genesis_hash(&self) -> Hash32;
    fn best(&self) -> (u64, Hash32);
    fn finalized(&self) -> (u64, Hash32);
    fn block_hash(&self, number: u64) -> Option<Hash32>;
    fn header(&self, at: Option<Hash32>) -> Option<Header>;
    fn storage(&self, key: &[u8], at: Option<Hash32>) -> Option<Vec<u8>>;
    /// Several keys at once (one read of the state for all of them).
    fn storage_many(&self, keys: &[Vec<u8>], at: Option<Hash32>) -> Vec<Option<Vec<u8>>> {
        keys.iter().map(|k| self.storage(k, at)).collect()
    }
    /// Up to `count` storage keys starting with `prefix`, in order, after `start` (exclusive).
    fn keys_paged(&self, prefix: &[u8], count: usize, start: Option<&[u8]>) -> Vec<Vec<u8>>;
    fn runtime_call(
        &self,
        method: &str,
        data: &[u8],
        at: Option<Hash32>,
    ) -> Result<Vec<u8>, RuntimeCallError>;
    fn runtime_version(&self) -> RuntimeVersion;
    /// Raw V14 metadata (`state_getMetadata`).
    fn metadata_v14(&self) -> Vec<u8>;
    /// The extrinsics of block `at` as submitted; `None` for an unknown block.
    fn block_extrinsics(&self, at: Hash32) -> Option<Vec<Vec<u8>>>;
    /// Checks an extrinsic and queues it for the next block; its hash.
    fn submit_extrinsic(&self, bytes: &[u8]) -> Result<Hash32, ExtrinsicError>;
    /// The nonce the next extrinsic of `account` must carry.
    fn account_next_index(&self, account: &[u8; 32]) -> u32;
}

/// A JSON-RPC error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("Parse error: {0}")]
    Parse(String),
    #[error("Invalid request: {0}")]
    InvalidRequest(String),
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    #[error("Invalid params: {0}")]
    InvalidParams(String),
    #[error("Client error: Execution failed: Other: {0}")]
    Execution(String),
    #[error("Request too large: {0} bytes, at most {MAX_REQUEST_BYTES}")]
    TooLarge(usize),
    /// An extrinsic refused at submission (codes 1001-1014, as a node's author API).
    #[error("{0}")]
    Extrinsic(ExtrinsicError),
}

impl RpcError {
    pub fn code(&self) -> i64 {
        match self {
            RpcError::Parse(_) => -32700,
            RpcError::InvalidRequest(_) | RpcError::TooLarge(_) => -32600,
            RpcError::MethodNotFound(_) => -32601,
            RpcError::InvalidParams(_) => -32602,
            RpcError::Execution(_) => 4003,
            RpcError::Extrinsic(e) => e.code(),
        }
    }

    /// The JSON-RPC error object (`data` only where a node sends one).
    pub fn error_object(&self) -> Value {
        match self {
            RpcError::Extrinsic(e) => match e.message_and_data() {
                (message, Some(data)) => {
                    json!({"code": self.code(), "message": message, "data": data})
                }
                (message, None) => json!({"code": self.code(), "message": message}),
            },
            other => json!({"code": other.code(), "message": other.to_string()}),
        }
    }

    /// The JSON-RPC error response for request `id`.
    pub fn response(&self, id: &Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "error": self.error_object()})
    }
}

/// One parsed call.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: Vec<Value>,
}

/// Parses one request object (`params` may be absent, an array, or null).
pub fn parse_request(v: &Value) -> Result<Request, (Value, RpcError)> {
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let fail = |why: &str| (id.clone(), RpcError::InvalidRequest(why.to_string()));
    let obj = v.as_object().ok_or_else(|| fail("not an object"))?;
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("no method"))?;
    let params = match obj.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(fail("params must be an array")),
    };
    Ok(Request {
        id,
        method: method.to_string(),
        params,
    })
}

/// `0x`-prefixed lowercase hex.
pub fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Hex with or without `0x` (the Python SDK sends runtime-call data without it); empty is empty.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, RpcError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(s).map_err(|e| RpcError::InvalidParams(format!("bad hex {s:?}: {e}")))
}

fn param(r: &Request, i: usize) -> Option<&Value> {
    r.params.get(i).filter(|v| !v.is_null())
}

fn hash_param(r: &Request, i: usize) -> Result<Option<Hash32>, RpcError> {
    let Some(v) = param(r, i) else {
        return Ok(None);
    };
    let s = v
        .as_str()
        .ok_or_else(|| RpcError::InvalidParams(format!("param {i} must be a hex hash")))?;
    let bytes = parse_hex(s)?;
    let h: Hash32 = bytes
        .try_into()
        .map_err(|_| RpcError::InvalidParams(format!("param {i} is not 32 bytes")))?;
    Ok(Some(h))
}

fn bytes_param(r: &Request, i: usize) -> Result<Vec<u8>, RpcError> {
    match param(r, i) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => parse_hex(s),
        Some(_) => Err(RpcError::InvalidParams(format!("param {i} must be hex"))),
    }
}

/// A block number given as a JSON number or a hex / decimal string.
fn number_param(r: &Request, i: usize) -> Result<Option<u64>, RpcError> {
    let bad = || RpcError::InvalidParams(format!("param {i} must be a block number"));
    match param(r, i) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).map(Some).map_err(|_| bad()),
            None => s.parse().map(Some).map_err(|_| bad()),
        },
        Some(_) => Err(bad()),
    }
}

impl Header {
    /// SCALE encoding (`parent_hash`, compact `number`, roots, an empty digest): the block hash
    /// is its blake2-256, as Substrate defines it and clients compute it.
    pub fn encode(&self) -> Vec<u8> {
        use parity_scale_codec::Encode as _;
        let mut out = self.parent_hash.to_vec();
        out.extend(parity_scale_codec::Compact(self.number).encode());
        out.extend(self.state_root);
        out.extend(self.extrinsics_root);
        out.push(0); // digest: no logs
        out
    }

    pub fn hash(&self) -> Hash32 {
        crate::chain::substrate::hashing::blake2_256(&self.encode())
    }
}

/// A header as `chain_getHeader` and the head subscriptions print it.
pub fn header_json(h: &Header) -> Value {
    json!({
        "parentHash": hex0x(&h.parent_hash),
        "number": format!("0x{:x}", h.number),
        "stateRoot": hex0x(&h.state_root),
        "extrinsicsRoot": hex0x(&h.extrinsics_root),
        "digest": {"logs": []},
    })
}

fn known(node: &dyn NodeView, at: Option<Hash32>) -> Result<Option<Hash32>, RpcError> {
    match at {
        Some(h) if node.header(Some(h)).is_none() => Err(RpcError::InvalidParams(format!(
            "unknown block {}",
            hex0x(&h)
        ))),
        other => Ok(other),
    }
}

/// Answers one request (everything but subscriptions and extrinsic submission).
pub fn answer(node: &dyn NodeView, r: &Request) -> Result<Value, RpcError> {
    Ok(match r.method.as_str() {
        "rpc_methods" => {
            let all: Vec<&str> = METHODS
                .iter()
                .chain(SUBSCRIPTION_METHODS)
                .copied()
                .collect();
            json!({"version": 1, "methods": all})
        }
        "system_chain" => json!("Bittensor (connito devnet)"),
        "system_name" => json!("connito-devnet"),
        "system_version" => json!(env!("CARGO_PKG_VERSION")),
        "system_properties" => json!({"ss58Format": 42, "tokenDecimals": 9, "tokenSymbol": "TAO"}),
        "system_health" => json!({"peers": 0, "isSyncing": false, "shouldHavePeers": false}),
        "chain_getBlockHash" => match number_param(r, 0)? {
            None => json!(hex0x(&node.best().1)),
            Some(n) => node.block_hash(n).map_or(Value::Null, |h| json!(hex0x(&h))),
        },
        "chain_getHead" => json!(hex0x(&node.best().1)),
        "chain_getFinalizedHead" => json!(hex0x(&node.finalized().1)),
        "chain_getHeader" => node
            .header(hash_param(r, 0)?)
            .map_or(Value::Null, |h| header_json(&h)),
        "state_getRuntimeVersion" | "chain_getRuntimeVersion" => {
            known(node, hash_param(r, 0)?)?;
            serde_json::to_value(node.runtime_version().to_json()).expect("plain struct")
        }
        "state_getMetadata" => {
            known(node, hash_param(r, 0)?)?;
            json!(hex0x(&node.metadata_v14()))
        }
        "state_call" => {
            let method = param(r, 0)
                .and_then(Value::as_str)
                .ok_or_else(|| RpcError::InvalidParams("param 0 must be a method name".into()))?;
            let data = bytes_param(r, 1)?;
            let at = known(node, hash_param(r, 2)?)?;
            let out = node
                .runtime_call(method, &data, at)
                .map_err(|e| RpcError::Execution(e.to_string()))?;
            json!(hex0x(&out))
        }
        "state_getStorage" | "state_getStorageAt" => {
            let key = bytes_param(r, 0)?;
            let at = known(node, hash_param(r, 1)?)?;
            node.storage(&key, at)
                .map_or(Value::Null, |v| json!(hex0x(&v)))
        }
        "state_getKeysPaged" | "state_getKeysPagedAt" => keys_paged(node, r)?,
        "state_getKeys" => {
            let prefix = bytes_param(r, 0)?;
            known(node, hash_param(r, 1)?)?;
            let keys = node.keys_paged(&prefix, MAX_KEYS_UNPAGED + 1, None);
            if keys.len() > MAX_KEYS_UNPAGED {
                return Err(RpcError::InvalidParams(format!(
                    "more than {MAX_KEYS_UNPAGED} keys: use state_getKeysPaged"
                )));
            }
            json!(keys.iter().map(|k| hex0x(k)).collect::<Vec<_>>())
        }
        "state_queryStorageAt" => query_storage_at(node, r)?,
        "chain_getBlock" => get_block(node, r)?,
        "author_submitExtrinsic" => json!(hex0x(&submit(node, r)?)),
        "system_accountNextIndex" | "account_nextIndex" => {
            json!(node.account_next_index(&account_param(r, 0)?))
        }
        other => return Err(RpcError::MethodNotFound(other.to_string())),
    })
}

/// An account given as an SS58 address (any prefix) or 32-byte hex.
pub fn account_param(r: &Request, i: usize) -> Result<[u8; 32], RpcError> {
    let s = param(r, i)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::InvalidParams(format!("param {i} must be an account")))?;
    if s.starts_with("0x") {
        return parse_hex(s)?
            .try_into()
            .map_err(|_| RpcError::InvalidParams(format!("param {i} is not 32 bytes")));
    }
    ss58_decode(s)
        .map(|(k, _)| k)
        .map_err(|e| RpcError::InvalidParams(format!("param {i}: {e}")))
}

/// `author_submitExtrinsic`'s work (also the first step of `author_submitAndWatchExtrinsic`).
pub fn submit(node: &dyn NodeView, r: &Request) -> Result<Hash32, RpcError> {
    let bytes = match param(r, 0) {
        Some(Value::String(s)) => parse_hex(s)?,
        _ => return Err(RpcError::InvalidParams("param 0 must be hex".into())),
    };
    node.submit_extrinsic(&bytes).map_err(RpcError::Extrinsic)
}

fn get_block(node: &dyn NodeView, r: &Request) -> Result<Value, RpcError> {
    let at = hash_param(r, 0)?.unwrap_or(node.best().1);
    let (Some(header), Some(xs)) = (node.header(Some(at)), node.block_extrinsics(at)) else {
        return Ok(Value::Null);
    };
    let xs: Vec<String> = xs.iter().map(|x| hex0x(x)).collect();
    Ok(json!({"block": {"header": header_json(&header), "extrinsics": xs}, "justifications": null}))
}

/// Most keys one `state_getKeysPaged` returns (a node's limit).
pub const MAX_KEYS_PAGE: usize = 1000;
/// Most keys `state_getKeys` (unpaged, deprecated on nodes) returns.
pub const MAX_KEYS_UNPAGED: usize = 10_000;

fn keys_paged(node: &dyn NodeView, r: &Request) -> Result<Value, RpcError> {
    let prefix = bytes_param(r, 0)?;
    let count = param(r, 1)
        .and_then(Value::as_u64)
        .ok_or_else(|| RpcError::InvalidParams("param 1 must be a count".into()))?;
    if count as usize > MAX_KEYS_PAGE {
        return Err(RpcError::InvalidParams(format!(
            "count {count} exceeds {MAX_KEYS_PAGE}"
        )));
    }
    let start = match param(r, 2) {
        Some(_) => Some(bytes_param(r, 2)?),
        None => None,
    };
    known(node, hash_param(r, 3)?)?;
    let keys = node.keys_paged(&prefix, count as usize, start.as_deref());
    Ok(json!(keys.iter().map(|k| hex0x(k)).collect::<Vec<_>>()))
}

/// Param 0 as a list of at most [`MAX_KEYS_PAGE`] hex storage keys.
fn keys_list(r: &Request) -> Result<Vec<Vec<u8>>, RpcError> {
    let keys = param(r, 0)
        .and_then(Value::as_array)
        .ok_or_else(|| RpcError::InvalidParams("param 0 must be a list of keys".into()))?;
    if keys.len() > MAX_KEYS_PAGE {
        return Err(RpcError::InvalidParams(format!(
            "{} keys, at most {MAX_KEYS_PAGE}",
            keys.len()
        )));
    }
    keys.iter()
        .map(|k| match k.as_str() {
            Some(s) => parse_hex(s),
            None => Err(RpcError::InvalidParams("a key must be hex".into())),
        })
        .collect()
}

fn query_storage_at(node: &dyn NodeView, r: &Request) -> Result<Value, RpcError> {
    let keys = keys_list(r)?;
    let at = known(node, hash_param(r, 1)?)?;
    let (_, best) = node.best();
    let block = at.unwrap_or(best);
    let values = node.storage_many(&keys, at);
    let changes: Vec<Value> = keys
        .iter()
        .zip(values)
        .map(|(k, v)| json!([hex0x(k), v.map(|v| hex0x(&v))]))
        .collect();
    Ok(json!([{"block": hex0x(&block), "changes": changes}]))
}

/// `state_subscribeStorage`'s keys: a non-empty list (a node also follows every key when given
/// none; devnet does not).
pub fn storage_subscription_keys(r: &Request) -> Result<Vec<Vec<u8>>, RpcError> {
    let keys = keys_list(r)?;
    if keys.is_empty() {
        return Err(RpcError::InvalidParams(
            "state_subscribeStorage needs at least one key".into(),
        ));
    }
    Ok(keys)
}

/// A `state_storage` notification's result (a `StorageChangeSet`) for `block`, whose values of
/// `keys` are `now`: every key at first (`last` is `None`), then only the keys whose value
/// changed since `last`; `None` when none did.
pub fn storage_change_set(
    block: &Hash32,
    keys: &[Vec<u8>],
    last: Option<&[Option<Vec<u8>>]>,
    now: &[Option<Vec<u8>>],
) -> Option<Value> {
    let changes: Vec<Value> = keys
        .iter()
        .zip(now)
        .enumerate()
        .filter(|(i, (_, v))| last.is_none_or(|l| l.get(*i) != Some(*v)))
        .map(|(_, (k, v))| json!([hex0x(k), v.as_ref().map(|v| hex0x(v))]))
        .collect();
    (last.is_none() || !changes.is_empty())
        .then(|| json!({"block": hex0x(block), "changes": changes}))
}

/// Most calls in one batch.
pub const MAX_BATCH: usize = 64;
/// Largest response body (a batch past it is cut off with an error per remaining call).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Handles one request body (a single call or a batch) and returns the response body. Never
/// panics on input: anything malformed gets a JSON-RPC error.
pub fn handle_body(node: &dyn NodeView, body: &[u8]) -> Value {
    if body.len() > MAX_REQUEST_BYTES {
        return RpcError::TooLarge(body.len()).response(&Value::Null);
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return RpcError::Parse(e.to_string()).response(&Value::Null),
    };
    let one = |v: &Value| match parse_request(v) {
        Ok(r) => match answer(node, &r) {
            Ok(result) => json!({"jsonrpc": "2.0", "id": r.id, "result": result}),
            Err(e) => e.response(&r.id),
        },
        Err((id, e)) => e.response(&id),
    };
    match &v {
        Value::Array(calls) if calls.is_empty() => {
            RpcError::InvalidRequest("empty batch".into()).response(&Value::Null)
        }
        Value::Array(calls) if calls.len() > MAX_BATCH => RpcError::InvalidRequest(format!(
            "batch of {} calls, at most {MAX_BATCH}",
            calls.len()
        ))
        .response(&Value::Null),
        Value::Array(calls) => {
            let mut size = 0;
            let answers = calls.iter().map(|c| {
                if size > MAX_RESPONSE_BYTES {
                    let id = c.get("id").cloned().unwrap_or(Value::Null);
                    let why = format!("batch response over {MAX_RESPONSE_BYTES} bytes");
                    return RpcError::InvalidRequest(why).response(&id);
                }
                let a = one(c);
                size += a.to_string().len();
                a
            });
            Value::Array(answers.collect())
        }
        _ => one(&v),
    }
}

#[cfg(test)]
#[path = "rpc_tests.rs"]
mod tests;
