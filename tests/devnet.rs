//! `connito devnet` as a process: JSON-RPC over HTTP and WebSocket on loopback, head
//! subscriptions, bad input answered with errors while blocks keep coming, and a restart on the
//! same data dir continuing at the same block. Every loop is bounded.

mod common;

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

#[test]
fn devnet_serves_json_rpc_subscriptions_and_survives_bad_input_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let p = node.port;

    let v = call(p, "state_getRuntimeVersion", json!([]));
    assert_eq!(v["result"]["specVersion"], 365);
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
