//! `connito devnet`: the dev chain behind Substrate JSON-RPC on 127.0.0.1, over WebSocket and
//! HTTP on one port. Blocks are sealed every `block_time_ms` and persisted in sled, so a restart
//! on the same data dir continues at the same block. Answers come from `connito::chain::dev::rpc`
//! (pure); this file holds the sockets and the head subscriptions.

mod ws;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use connito::chain::dev::rpc::{self, NodeView, RpcError, header_json, parse_request};
use connito::chain::substrate::extrinsic::extrinsic_hash;
use connito::chain::{DevChain, DevChainConfig};
use connito::store::Store;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, broadcast};

const MAX_HEAD: usize = 16 << 10;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Subscriptions one WebSocket may hold.
const MAX_SUBSCRIPTIONS: usize = 64;
/// Connections served at once (more are closed at once).
const MAX_CONNECTIONS: usize = 256;

pub struct DevnetOpts {
    pub port: u16,
    pub data_dir: PathBuf,
    pub block_time_ms: u64,
    pub chain: DevChainConfig,
    pub seed: u64,
    /// Stop after this many blocks (tests); `None`: until Ctrl-C.
    pub blocks: Option<u64>,
}

/// Runs devnet until Ctrl-C (or `blocks` blocks).
pub async fn run(o: DevnetOpts) -> anyhow::Result<()> {
    std::fs::create_dir_all(&o.data_dir)
        .with_context(|| format!("creating data dir {}", o.data_dir.display()))?;
    let store = Store::open(&o.data_dir.join("chain"))
        .context("opening devnet's database (is another devnet using this data dir?)")?;
    let chain = Arc::new(DevChain::open(o.chain, store, o.seed, 0)?);
    let listener = TcpListener::bind(("127.0.0.1", o.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", o.port))?;
    let addr = listener.local_addr()?;
    let (heads, _) = broadcast::channel::<u64>(64);
    eprintln!(
        "connito devnet: ws://{addr} and http://{addr}, data dir {}, block {}",
        o.data_dir.display(),
        chain.best().0
    );
    tokio::spawn(accept_loop(listener, chain.clone(), heads.clone()));
    let mut tick = tokio::time::interval(Duration::from_millis(o.block_time_ms.max(1)));
    let mut sealed = 0;
    // One signal future for the whole run, so a Ctrl-C during block production is not lost.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut ctrl_c => break,
        }
        let c = chain.clone();
        let head = tokio::task::spawn_blocking(move || c.produce_block_at(unix_now())).await??;
        let _ = heads.send(head.number);
        sealed += 1;
        if o.blocks.is_some_and(|b| sealed >= b) {
            break;
        }
    }
    eprintln!("connito devnet: stopped at block {}", chain.best().0);
    Ok(())
}

async fn accept_loop(listener: TcpListener, chain: Arc<DevChain>, heads: broadcast::Sender<u64>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("devnet accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "devnet: {MAX_CONNECTIONS} connections open, refusing one");
            continue;
        };
        let (chain, heads) = (chain.clone(), heads.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(sock, chain, heads).await {
                tracing::debug!(%peer, "devnet connection ended: {e}");
            }
            drop(slot);
        });
    }
}

/// The request head: method, header lines (lowercased names) and any bytes read past it.
struct Head {
    method: String,
    headers: Vec<(String, String)>,
    rest: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_head(sock: &mut TcpStream) -> anyhow::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        anyhow::ensure!(buf.len() <= MAX_HEAD, "request head over {MAX_HEAD} bytes");
        let mut chunk = [0u8; 2048];
        let n = sock.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed before the request head ended");
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = text.split("\r\n");
    let method = lines
        .next()
        .and_then(|l| l.split(' ').next())
        .unwrap_or_default()
        .to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Head {
        method,
        headers,
        rest: buf[end + 4..].to_vec(),
    })
}

async fn connection(
    mut sock: TcpStream,
    chain: Arc<DevChain>,
    heads: broadcast::Sender<u64>,
) -> anyhow::Result<()> {
    let head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut sock)).await??;
    let upgrade = head
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    match (
        head.method.as_str(),
        upgrade,
        head.header("sec-websocket-key"),
    ) {
        ("GET", true, Some(key)) => {
            let key = key.to_string();
            sock.write_all(ws::handshake_response(&key).as_bytes())
                .await?;
            websocket(sock, head.rest, chain, heads).await
        }
        ("POST", _, _) => http_post(sock, head, chain).await,
        _ => {
            let body = "connito devnet: POST JSON-RPC, or open a WebSocket\n";
            respond(&mut sock, "405 Method Not Allowed", "text/plain", body).await
        }
    }
}

async fn respond(sock: &mut TcpStream, status: &str, ty: &str, body: &str) -> anyhow::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ty}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    Ok(())
}

async fn http_post(mut sock: TcpStream, head: Head, chain: Arc<DevChain>) -> anyhow::Result<()> {
    let len: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(head.rest.len());
    let answer = if len > rpc::MAX_REQUEST_BYTES {
        // Read and drop the body (bounded) so the client sees the answer, not a reset.
        let mut left = len.saturating_sub(head.rest.len()).min(16 << 20);
        let mut sink = vec![0u8; 64 << 10];
        while left > 0 {
            match tokio::time::timeout(HEAD_TIMEOUT, sock.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
                _ => break,
            }
        }
        RpcError::TooLarge(len).response(&Value::Null)
    } else {
        let mut body = head.rest;
        while body.len() < len {
            let mut chunk = vec![0u8; (len - body.len()).min(64 << 10)];
            let n = tokio::time::timeout(HEAD_TIMEOUT, sock.read(&mut chunk)).await??;
            anyhow::ensure!(n > 0, "closed before the body ended");
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
        let c = chain.clone();
        tokio::task::spawn_blocking(move || rpc::handle_body(c.as_ref(), &body)).await?
    };
    respond(&mut sock, "200 OK", "application/json", &answer.to_string()).await
}

type Writer = Arc<Mutex<tokio::net::tcp::OwnedWriteHalf>>;

async fn send(w: &Writer, v: &Value) -> std::io::Result<()> {
    ws::send_text(&mut *w.lock().await, &v.to_string()).await
}

/// Which subscription a method opens or closes, and its notification's method name.
fn subscription_kind(method: &str) -> Option<(bool, &'static str)> {
    Some(match method {
        "chain_subscribeNewHeads" | "chain_subscribeNewHead" => (true, "chain_newHead"),
        "chain_subscribeFinalizedHeads" => (true, "chain_finalizedHead"),
        "chain_subscribeAllHeads" => (true, "chain_allHead"),
        "author_submitAndWatchExtrinsic" => (true, WATCH),
        "state_subscribeRuntimeVersion" | "chain_subscribeRuntimeVersion" => {
            (true, RUNTIME_VERSION)
        }
        "state_subscribeStorage" => (true, STORAGE),
        "chain_unsubscribeNewHeads" | "chain_unsubscribeNewHead" => (false, "chain_newHead"),
        "chain_unsubscribeFinalizedHeads" => (false, "chain_finalizedHead"),
        "chain_unsubscribeAllHeads" => (false, "chain_allHead"),
        "author_unwatchExtrinsic" => (false, WATCH),
        "state_unsubscribeRuntimeVersion" | "chain_unsubscribeRuntimeVersion" => {
            (false, RUNTIME_VERSION)
        }
        "state_unsubscribeStorage" => (false, STORAGE),
        _ => return None,
    })
}

const WATCH: &str = "author_extrinsicUpdate";
/// Polkadot.js subscribes to this at connect; devnet's runtime never upgrades, so the version is
/// sent once and the subscription then stays open, silent, until unsubscribed.
const RUNTIME_VERSION: &str = "state_runtimeVersion";
/// Storage values of given keys: all of them at once, then those that changed, per new block
/// (polkadot.js reads the nonce for `signAndSend` this way, and any `api.query.*(.., callback)`).
const STORAGE: &str = "state_storage";
/// Blocks a watched extrinsic may take to be included before it is reported `dropped` (it is
/// always in the next block; this bounds the task if it never is).
const WATCH_BLOCKS: u64 = 16;

struct Subs {
    next: u64,
    live: std::collections::HashMap<String, tokio::task::JoinHandle<()>>,
}

impl Drop for Subs {
    fn drop(&mut self) {
        self.live.values().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Requests of one WebSocket connection by method, logged when it closes (so an operator can
/// see what a client costs: `RUST_LOG=info connito devnet`).
struct ConnStats {
    counts: std::collections::BTreeMap<String, u64>,
    opened_at_block: u64,
    chain: Arc<DevChain>,
}

impl ConnStats {
    fn count(&mut self, text: &str) {
        let methods = match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(calls)) => calls,
            Ok(one) => vec![one],
            Err(_) => vec![],
        };
        for m in methods {
            let name = m["method"].as_str().unwrap_or("(invalid)").to_string();
            *self.counts.entry(name).or_default() += 1;
        }
    }
}

impl Drop for ConnStats {
    fn drop(&mut self) {
        let closed = rpc::NodeView::best(self.chain.as_ref()).0;
        let total: u64 = self.counts.values().sum();
        let by_method: Vec<String> = self
            .counts
            .iter()
            .map(|(m, n)| format!("{m}={n}"))
            .collect();
        tracing::info!(
            blocks = format!("{}..={closed}", self.opened_at_block),
            total,
            "connection closed: {}",
            by_method.join(" ")
        );
    }
}

async fn websocket(
    sock: TcpStream,
    pending: Vec<u8>,
    chain: Arc<DevChain>,
    heads: broadcast::Sender<u64>,
) -> anyhow::Result<()> {
    let (rd, wr) = sock.into_split();
    let w: Writer = Arc::new(Mutex::new(wr));
    let mut reader = ws::Reader::new(rd, pending, rpc::MAX_REQUEST_BYTES);
    let mut subs = Subs {
        next: 1,
        live: Default::default(),
    };
    let mut stats = ConnStats {
        counts: Default::default(),
        opened_at_block: rpc::NodeView::best(chain.as_ref()).0,
        chain: chain.clone(),
    };
    loop {
        let text = match reader.next().await {
            Ok(ws::Message::Text(t)) => t,
            Ok(ws::Message::Binary(b)) => String::from_utf8_lossy(&b).to_string(),
            Ok(ws::Message::Ping(p)) => {
                w.lock().await.write_all(&ws::frame(0xA, &p)).await?;
                continue;
            }
            Ok(ws::Message::Close) => {
                let _ = w.lock().await.write_all(&ws::frame(0x8, &[])).await;
                return Ok(());
            }
            Err(ws::WsError::TooLarge(n)) => {
                let _ = send(&w, &RpcError::TooLarge(n as usize).response(&Value::Null)).await;
                let _ = w
                    .lock()
                    .await
                    .write_all(&ws::frame(0x8, &1009_u16.to_be_bytes()))
                    .await;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        stats.count(&text);
        let (answer, go) = match subscription(&text, &mut subs, &chain, &heads, &w).await {
            Some(a) => a,
            None => {
                let c = chain.clone();
                let a = tokio::task::spawn_blocking(move || {
                    rpc::handle_body(c.as_ref(), text.as_bytes())
                })
                .await?;
                (a, None)
            }
        };
        send(&w, &answer).await?;
        // A new subscription's notifications start after the answer that names it.
        if let Some(go) = go {
            let _ = go.send(());
        }
    }
}

type Go = tokio::sync::oneshot::Sender<()>;

/// Handles a (un)subscribe call; `None` if `text` is something else. A new subscription's task
/// waits for the returned sender before it sends anything.
async fn subscription(
    text: &str,
    subs: &mut Subs,
    chain: &Arc<DevChain>,
    heads: &broadcast::Sender<u64>,
    w: &Writer,
) -> Option<(Value, Option<Go>)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let r = parse_request(&v).ok()?;
    let (open, notification) = subscription_kind(&r.method)?;
    if !open {
        let id = r.params.first().and_then(Value::as_str).unwrap_or_default();
        let found = subs.live.remove(id).map(|h| h.abort()).is_some();
        return Some((json!({"jsonrpc": "2.0", "id": r.id, "result": found}), None));
    }
    // Finished watches do not count against the limit.
    subs.live.retain(|_, h| !h.is_finished());
    if subs.live.len() >= MAX_SUBSCRIPTIONS {
        let e = RpcError::InvalidRequest(format!("at most {MAX_SUBSCRIPTIONS} subscriptions"));
        return Some((e.response(&r.id), None));
    }
    let storage_keys = match notification {
        STORAGE => match rpc::storage_subscription_keys(&r) {
            Ok(keys) => keys,
            Err(e) => return Some((e.response(&r.id), None)),
        },
        _ => Vec::new(),
    };
    // Listen before submitting, so the block that includes the extrinsic cannot be missed.
    let rx = heads.subscribe();
    let id = format!("{:016x}", subs.next);
    let (go, ready) = tokio::sync::oneshot::channel();
    let out = Out {
        w: w.clone(),
        sub: id.clone(),
        method: notification,
    };
    let task = if notification == WATCH {
        // Read before submitting: the extrinsic can only be in a block after this one.
        let from = chain.best().0;
        // Decoding and the signature check wait for the chain lock: off the socket's task.
        let (c, req) = (chain.clone(), r.clone());
        let submitted = tokio::task::spawn_blocking(move || rpc::submit(c.as_ref(), &req)).await;
        let hash = match submitted {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Some((e.response(&r.id), None)),
            Err(e) => {
                let e = RpcError::InvalidRequest(format!("submission task failed: {e}"));
                return Some((e.response(&r.id), None));
            }
        };
        tokio::spawn(watch_extrinsic(chain.clone(), rx, ready, out, hash, from))
    } else if notification == RUNTIME_VERSION {
        tokio::spawn(runtime_version(chain.clone(), ready, out))
    } else if notification == STORAGE {
        tokio::spawn(follow_storage(chain.clone(), rx, ready, out, storage_keys))
    } else {
        tokio::spawn(follow_heads(chain.clone(), rx, ready, out))
    };
    subs.next += 1;
    subs.live.insert(id.clone(), task);
    Some((
        json!({"jsonrpc": "2.0", "id": r.id, "result": id}),
        Some(go),
    ))
}

/// Where a subscription's notifications go.
struct Out {
    w: Writer,
    sub: String,
    method: &'static str,
}

impl Out {
    async fn send(&self, result: Value) -> bool {
        let note = json!({"jsonrpc": "2.0", "method": self.method,
            "params": {"subscription": self.sub, "result": result}});
        send(&self.w, &note).await.is_ok()
    }
}

/// A runtime-version subscription: the version once, then nothing until it is closed (the task
/// is aborted by the unsubscribe or when the connection ends).
async fn runtime_version(
    chain: Arc<DevChain>,
    ready: tokio::sync::oneshot::Receiver<()>,
    out: Out,
) {
    if ready.await.is_err() {
        return;
    }
    let v = serde_json::to_value(NodeView::runtime_version(chain.as_ref()).to_json())
        .expect("plain struct");
    if out.send(v).await {
        std::future::pending::<()>().await;
    }
}

/// A head subscription: the current head first, then every newer one (a lagging reader skips
/// to the newest; a head already sent is not sent again).
async fn follow_heads(
    chain: Arc<DevChain>,
    mut rx: broadcast::Receiver<u64>,
    ready: tokio::sync::oneshot::Receiver<()>,
    out: Out,
) {
    if ready.await.is_err() {
        return;
    }
    let mut number = Some(chain.best().0);
    let mut sent: Option<u64> = None;
    loop {
        if let Some(n) = number.take().filter(|&n| sent.is_none_or(|s| n > s)) {
            sent = Some(n);
            let hash = connito::chain::dev::rpc::NodeView::block_hash(&*chain, n);
            if let Some(h) = chain.header(hash)
                && !out.send(header_json(&h)).await
            {
                return;
            }
        }
        number = match rx.recv().await {
            Ok(n) => Some(n),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(chain.best().0),
            Err(broadcast::error::RecvError::Closed) => return,
        };
    }
}

/// A storage subscription: the values of `keys` at the best block, then, after each new block,
/// those that changed (a lagging reader reads the newest block once).
async fn follow_storage(
    chain: Arc<DevChain>,
    mut rx: broadcast::Receiver<u64>,
    ready: tokio::sync::oneshot::Receiver<()>,
    out: Out,
    keys: Vec<Vec<u8>>,
) {
    if ready.await.is_err() {
        return;
    }
    let keys = Arc::new(keys);
    let mut last: Option<Vec<Option<Vec<u8>>>> = None;
    loop {
        let (c, k) = (chain.clone(), keys.clone());
        // The state snapshot may be rebuilt under the chain lock: off the socket's task.
        let read = tokio::task::spawn_blocking(move || {
            let (_, block) = NodeView::best(c.as_ref());
            (block, c.storage_many(&k, Some(block)))
        });
        let Ok((block, now)) = read.await else {
            return;
        };
        if let Some(set) = rpc::storage_change_set(&block, &keys, last.as_deref(), &now)
            && !out.send(set).await
        {
            return;
        }
        last = Some(now);
        match rx.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// An extrinsic watch: `ready`, then `{"inBlock": h}` and `{"finalized": h}` (blocks are final
/// when sealed) once a block after `from` contains it, or `dropped` if none within
/// [`WATCH_BLOCKS`].
async fn watch_extrinsic(
    chain: Arc<DevChain>,
    mut rx: broadcast::Receiver<u64>,
    ready: tokio::sync::oneshot::Receiver<()>,
    out: Out,
    hash: [u8; 32],
    from: u64,
) {
    if ready.await.is_err() || !out.send(json!("ready")).await {
        return;
    }
    let mut checked = from;
    loop {
        let best = match rx.recv().await {
            Ok(n) => n,
            Err(broadcast::error::RecvError::Lagged(_)) => chain.best().0,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for n in checked + 1..=best {
            let body = chain.block_body(n);
            if body.extrinsics.iter().any(|x| extrinsic_hash(x) == hash) {
                let h = rpc::hex0x(&chain.block_hash_of(n));
                if out.send(json!({"inBlock": h})).await {
                    out.send(json!({"finalized": h})).await;
                }
                return;
            }
        }
        checked = checked.max(best);
        if checked >= from + WATCH_BLOCKS {
            let _ = out.send(json!("dropped")).await;
            return;
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it): the time a block is sealed at.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscription_rpc_methods_lists_is_served_and_closable() {
        for m in rpc::SUBSCRIPTION_METHODS {
            let (open, note) = subscription_kind(m).unwrap_or_else(|| panic!("{m} not served"));
            assert_eq!(
                open,
                !m.contains("_unsubscribe") && *m != "author_unwatchExtrinsic"
            );
            // Each kind opened is closed by a listed method, and the reverse.
            assert!(
                rpc::SUBSCRIPTION_METHODS
                    .iter()
                    .any(|o| subscription_kind(o) == Some((!open, note))),
                "{m}"
            );
        }
        assert_eq!(
            subscription_kind("state_subscribeStorage"),
            Some((true, "state_storage"))
        );
        assert_eq!(subscription_kind("state_getStorage"), None);
    }
}
