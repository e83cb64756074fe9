//! `connito devnet` as a process: JSON-RPC over HTTP and WebSocket on loopback, head
//! subscriptions, bad input answered with errors while blocks keep coming, and a restart on the
//! same data dir continuing at the same block. Every loop is bounded.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::start;

use serde_json::{Value, json};

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn http(port: u16, body: &str) -> Value {
    let mut s = connect(port);
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (_, json) = out.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(json).unwrap()
}

fn call(port: u16, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    http(port, &body.to_string())
}

fn best(port: u16) -> u64 {
    let h = call(port, "chain_getHeader", json!([]));
    u64::from_str_radix(
        h["result"]["number"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap()
}

/// A minimal WebSocket client: masked text frames out, unmasked frames in.
struct Ws(TcpStream);

impl Ws {
    fn open(port: u16) -> Self {
        let mut s = connect(port);
        s.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        Ws(s)
    }

    fn send(&mut self, text: &str) {
        let mask = [9u8, 8, 7, 6];
        let mut f = vec![0x81];
        match text.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend((n as u16).to_be_bytes());
            }
        }
        f.extend(mask);
        f.extend(text.bytes().enumerate().map(|(i, c)| c ^ mask[i % 4]));
        self.0.write_all(&f).unwrap();
    }

    fn recv(&mut self) -> Value {
        let mut h = [0u8; 2];
        self.0.read_exact(&mut h).unwrap();
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                self.0.read_exact(&mut l).unwrap();
                u16::from_be_bytes(l) as usize
            }
            127 => {
                let mut l = [0u8; 8];
                self.0.read_exact(&mut l).unwrap();
                u64::from_be_bytes(l) as usize
            }
            n => n as usize,
        };
        let mut p = vec![0u8; len];
        self.0.read_exact(&mut p).unwrap();
        serde_json::from_slice(&p).unwrap()
    }
}

/// Polkadot.js subscribes to the runtime version at connect (issue 23): devnet sends it once and
/// keeps the subscription until it is closed; closing it twice finds nothing the second time.
#[test]
fn devnet_serves_the_runtime_version_subscription_polkadot_js_opens() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let want = call(node.port, "state_getRuntimeVersion", json!([]))["result"].clone();
    let mut ws = Ws::open(node.port);
    ws.send(r#"{"jsonrpc":"2.0","id":1,"method":"state_subscribeRuntimeVersion","params":[]}"#);
    let sub = ws.recv()["result"].as_str().unwrap().to_string();
    let note = ws.recv();
    assert_eq!(note["method"], "state_runtimeVersion");
    assert_eq!(note["params"]["subscription"], sub.as_str());
    assert_eq!(note["params"]["result"], want);
    let close = |id: u32| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"state_unsubscribeRuntimeVersion","params":["{sub}"]}}"#
        )
    };
    ws.send(&close(2));
    assert_eq!(
        ws.recv(),
        json!({"jsonrpc": "2.0", "id": 2, "result": true})
    );
    ws.send(&close(3));
    assert_eq!(
        ws.recv(),
        json!({"jsonrpc": "2.0", "id": 3, "result": false})
    );
}

#[test]
fn devnet_serves_json_rpc_subscriptions_and_survives_bad_input_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let p = node.port;

    let v = call(p, "state_getRuntimeVersion", json!([]));
    assert_eq!(v["result"]["specVersion"], 425);
    let genesis = call(p, "chain_getBlockHash", json!([0]))["result"].clone();
    assert!(genesis.as_str().unwrap().starts_with("0x"));

    // WebSocket: a call, a head subscription delivering increasing blocks, bad input.
    let mut ws = Ws::open(p);
    ws.send(r#"{"jsonrpc":"2.0","id":7,"method":"chain_getBlockHash","params":[0]}"#);
    assert_eq!(
        ws.recv(),
        json!({"jsonrpc": "2.0", "id": 7, "result": genesis})
    );
    ws.send(r#"{"jsonrpc":"2.0","id":8,"method":"chain_subscribeNewHeads","params":[]}"#);
    let sub = ws.recv()["result"].as_str().unwrap().to_string();
    let mut numbers = Vec::new();
    while numbers.len() < 3 {
        let note = ws.recv();
        assert_eq!(note["method"], "chain_newHead");
        assert_eq!(note["params"]["subscription"], sub.as_str());
        let n = note["params"]["result"]["number"].as_str().unwrap();
        numbers.push(u64::from_str_radix(n.trim_start_matches("0x"), 16).unwrap());
    }
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    ws.send("{not json");
    // Notifications may interleave; find the answer to the malformed request.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no parse error");
        let m = ws.recv();
        if m.get("error").is_some() {
            assert_eq!(m["error"]["code"], -32700);
            break;
        }
    }

    // HTTP: bad input gets JSON-RPC errors, the node keeps sealing blocks.
    let before = best(p);
    assert_eq!(http(p, "nonsense")["error"]["code"], -32700);
    assert_eq!(
        call(p, "no_such_method", json!([]))["error"]["code"],
        -32601
    );
    let big = format!("[\"{}\"]", "x".repeat(1 << 21));
    assert_eq!(http(p, &big)["error"]["code"], -32600);
    let deadline = Instant::now() + Duration::from_secs(10);
    while best(p) <= before {
        assert!(Instant::now() < deadline, "blocks stopped after bad input");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Restart on the same data dir: same genesis, continues at the block it stopped at.
    let last = best(p);
    drop(ws);
    drop(node);
    let node = start(dir.path());
    let p = node.port;
    assert_eq!(call(p, "chain_getBlockHash", json!([0]))["result"], genesis);
    assert!(best(p) >= last, "restarted below block {last}");
}

fn hex_bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap().trim_start_matches("0x")).unwrap()
}

#[test]
fn devnet_takes_signed_extrinsics_and_refuses_bad_ones() {
    use connito::chain::substrate::extrinsic::{Era, SigningContext, extrinsic_hash, sign};
    use connito::submission::Hotkey;

    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let p = node.port;
    let genesis: [u8; 32] = hex_bytes(&call(p, "chain_getBlockHash", json!([0]))["result"])
        .try_into()
        .unwrap();
    let version = &call(p, "state_getRuntimeVersion", json!([]))["result"];
    let ctx = SigningContext {
        spec_version: version["specVersion"].as_u64().unwrap() as u32,
        transaction_version: version["transactionVersion"].as_u64().unwrap() as u32,
        genesis,
    };
    let key = Hotkey::dev("devnet-rpc-test");
    // SubtensorModule.burned_register(999, key): valid extrinsic, fails in the block.
    let mut c = vec![7, 7];
    c.extend(999_u16.to_le_bytes());
    c.extend(key.public());
    let xt = sign(&key, &c, Era::Immortal, 0, &ctx, &genesis);

    let mut ws = Ws::open(p);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "author_submitAndWatchExtrinsic",
        "params": [format!("0x{}", hex::encode(&xt))]});
    ws.send(&body.to_string());
    let sub = ws.recv()["result"].as_str().unwrap().to_string();
    let mut statuses = vec![];
    while statuses.len() < 3 {
        let note = ws.recv();
        assert_eq!(note["method"], "author_extrinsicUpdate");
        assert_eq!(note["params"]["subscription"], sub.as_str());
        statuses.push(note["params"]["result"].clone());
    }
    assert_eq!(statuses[0], "ready");
    let block = statuses[1]["inBlock"].clone();
    assert_eq!(statuses[2]["finalized"], block);

    // The block holds the exact bytes; its events say the call failed with SubnetNotExists.
    let b = call(p, "chain_getBlock", json!([block]));
    let xs = b["result"]["block"]["extrinsics"].as_array().unwrap();
    assert!(xs.iter().any(|x| hex_bytes(x) == xt));
    let events_key = "0x26aa394eea5630e07c48ae0c9558cef780d41e5e16056765bc8461851072c9d7";
    let events = hex_bytes(&call(p, "state_getStorage", json!([events_key, block]))["result"]);
    // One record: ApplyExtrinsic(i), System.ExtrinsicFailed, Module { index 7, error 73 }.
    assert_eq!(events[0], 4);
    assert_eq!(&events[6..13], &[0, 1, 3, 7, 73, 0, 0]);
    let next = call(p, "system_accountNextIndex", json!([key.address()]));
    assert_eq!(next["result"], 1);

    // Refusals, with the codes and texts of a Substrate node; blocks keep coming.
    let before = best(p);
    let mut tampered = sign(&key, &c, Era::Immortal, 1, &ctx, &genesis);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let stale = xt.clone();
    let table: Vec<(&str, String, i64, Option<&str>)> = vec![
        ("not hex", "0xzz".into(), -32602, None),
        ("garbage", "0x0102".into(), 1001, None),
        (
            "bad signature",
            format!("0x{}", hex::encode(&tampered)),
            1010,
            Some("Transaction has a bad signature"),
        ),
        (
            "used nonce",
            format!("0x{}", hex::encode(&stale)),
            1010,
            Some("Transaction is outdated"),
        ),
    ];
    for (name, hex, code, data) in table {
        let r = call(p, "author_submitExtrinsic", json!([hex]));
        assert_eq!(r["error"]["code"], code, "{name}: {r}");
        if let Some(d) = data {
            assert_eq!(r["error"]["data"], d, "{name}");
        }
    }
    let ok = sign(&key, &c, Era::Immortal, 1, &ctx, &genesis);
    let r = call(
        p,
        "author_submitExtrinsic",
        json!([format!("0x{}", hex::encode(&ok))]),
    );
    assert_eq!(hex_bytes(&r["result"]), extrinsic_hash(&ok));
    let deadline = Instant::now() + Duration::from_secs(10);
    while best(p) <= before + 1 {
        assert!(Instant::now() < deadline, "blocks stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        call(p, "account_nextIndex", json!([key.address()]))["result"],
        2
    );
}
