//! The README's four terminals as four processes: `connito devnet`, one `connito validator` and
//! two `connito miner`s, each with its own wallet and data directory, talking only through the
//! chain (the subxt client) and HTTP. Incentive must appear in `connito chain metagraph`; then
//! devnet is killed for a few seconds and restarted on the same port and data: the daemons
//! reconnect, no supervisor gives up, every cycle's weights are committed at most once and the
//! cycles after the restart are committed and revealed exactly once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_connito");

/// devnet's config: 250 ms blocks, localnet's phases (a 60-block cycle = tempo).
const DEVNET: &str = "block_time_ms = 250\n";

/// The daemons' config: the same protocol (defaults), fast polling of the finalized head.
// Every process is on 127.0.0.1: the validator must be allowed to fetch from loopback.
const NODE: &str = "[node]\npoll_ms = 50\n\n[intake]\nallow_private_locations = true\n";

struct Proc(Child, &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn devnet(dir: &Path, port: u16, cfg: &Path) -> Proc {
    let child = Command::new(BIN)
        .args(["devnet", "--port", &port.to_string(), "--config"])
        .arg(cfg)
        .arg("--data-dir")
        .arg(dir.join("chain"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("devnet-{}.log", rand_tag()))).unwrap())
        .spawn()
        .unwrap();
    let url = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&url).is_err() {
        assert!(Instant::now() < deadline, "devnet did not listen on {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Proc(child, "devnet")
}

fn rand_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn wallet_args(dir: &Path, name: &str) -> Vec<String> {
    vec![
        "--wallet.path".into(),
        dir.join("wallets").to_str().unwrap().into(),
        "--wallet.name".into(),
        name.into(),
    ]
}

fn connito(args: &[String]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(args: &[String]) -> String {
    let out = connito(args);
    assert!(
        out.status.success(),
        "connito {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn daemon(dir: &Path, url: &str, role: &str, name: &str, extra: &[&str]) -> Proc {
    let mut args: Vec<String> = vec![role.into(), "--chain-endpoint".into(), url.into()];
    args.extend(wallet_args(dir, name));
    args.extend([
        "--config".into(),
        dir.join("node.toml").to_str().unwrap().into(),
    ]);
    args.extend(["--data-dir".into(), dir.join(name).to_str().unwrap().into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(BIN)
        .args(&args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(
        child,
        if role == "validator" {
            "validator"
        } else {
            "miner"
        },
    )
}

fn metagraph(url: &str) -> Option<serde_json::Value> {
    let out = connito(&[
        "chain".into(),
        "metagraph".into(),
        "--chain-endpoint".into(),
        url.into(),
        "--json".into(),
    ]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Polls the metagraph (bounded) until `done` says so; returns it.
fn wait_for(
    url: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(m) = metagraph(url).filter(|m| done(m)) {
            return m;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn stop(mut p: Proc) -> std::process::ExitStatus {
    let pid = p.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "{} did not stop on SIGTERM", p.1);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

#[test]
fn validator_and_miners_as_processes_survive_a_chain_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_path_buf();
    std::fs::write(dir.join("devnet.toml"), DEVNET).unwrap();
    std::fs::write(dir.join("node.toml"), NODE).unwrap();
    let port = free_port();
    let url = format!("ws://127.0.0.1:{port}");
    let node = devnet(&dir, port, &dir.join("devnet.toml"));

    let mut keys = vec![];
    for name in ["v", "m0", "m1"] {
        let mut args: Vec<String> = vec!["wallet".into(), "new".into()];
        args.extend(wallet_args(&dir, name));
        keys.push(ok(&args).trim().to_string());
        let mut reg: Vec<String> = vec![
            "chain".into(),
            "register".into(),
            "--chain-endpoint".into(),
            url.clone(),
        ];
        reg.extend(wallet_args(&dir, name));
        if name == "v" {
            reg.extend(["--stake".into(), "1000".into()]);
        }
        ok(&reg);
    }
    let v = daemon(&dir, &url, "validator", "v", &[]);
    let m0 = daemon(&dir, &url, "miner", "m0", &["--group", "0"]);
    let m1 = daemon(&dir, &url, "miner", "m1", &["--group", "1"]);

    // Once the validator holds its locks, a second validator on the same wallet refuses to start.
    let started = Instant::now();
    while !log_of(&dir, "v").contains("advertised as") {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the validator did not start: {}",
            log_of(&dir, "v")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let twin = {
        let mut args: Vec<String> =
            vec!["validator".into(), "--chain-endpoint".into(), url.clone()];
        args.extend(wallet_args(&dir, "v"));
        args.extend(["--data-dir".into(), dir.join("v2").to_str().unwrap().into()]);
        connito(&args)
    };
    assert!(!twin.status.success());
    assert!(
        String::from_utf8_lossy(&twin.stderr).contains("in use by another connito process"),
        "{}",
        String::from_utf8_lossy(&twin.stderr)
    );

    let incentive = |m: &serde_json::Value| -> f64 {
        m["neurons"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["hotkey"] != keys[0])
            .map(|n| n["incentive"].as_f64().unwrap())
            .sum()
    };
    let before = wait_for(&url, 240, "miner incentive", |m| incentive(m) > 0.0);
    eprintln!("incentive at block {}: {before}", before["block"]);

    // Kill the chain for a few seconds; the daemons wait it out.
    drop(node);
    let killed_at = before["block"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let node = devnet(&dir, port, &dir.join("devnet.toml"));
    let cycle_len = connito::config::LocalnetConfig::default()
        .phases
        .cycle_len();
    // Two more cycles' weights after the restart: a commit and its reveal each.
    let target = (killed_at / cycle_len + 4) * cycle_len;
    let after = wait_for(&url, 240, "two cycles after the restart", |m| {
        m["block"].as_u64().unwrap() >= target
    });
    eprintln!("after the restart, block {}: {after}", after["block"]);
    assert!(incentive(&after) > 0.0, "{after}");

    // Clean shutdown, and no supervisor gave up (that exits non-zero).
    for p in [v, m0, m1] {
        let name = p.1;
        let s = stop(p);
        assert!(s.success(), "{name} exited with {s}");
    }
    for name in ["v", "m0", "m1"] {
        let log = log_of(&dir, name);
        assert!(log.contains("stopped"), "{name}: {log}");
        assert!(!log.contains("gave up"), "{name}: {log}");
    }
    assert!(
        log_of(&dir, "v").contains("chain unreachable"),
        "the validator saw the outage"
    );
    drop(node);

    // The chain's own log of the validator's extrinsics.
    let cfg = connito::config::LocalnetConfig::default();
    let store = connito::store::Store::open(&dir.join("chain").join("chain")).unwrap();
    let chain = connito::chain::DevChain::open(cfg.chain.clone(), store, 0, 0).unwrap();
    let hotkey = connito::wallet::read_hotkey(&dir.join("wallets/v/hotkeys/default")).unwrap();
    let log = chain.extrinsics(&hotkey.public());
    let cycles_of = |call: &str| -> Vec<u64> {
        log.iter()
            .filter(|(_, c)| c == call)
            .map(|(b, _)| b / cycle_len)
            .collect()
    };
    let (commits, reveals) = (cycles_of("commit_weights"), cycles_of("reveal_weights"));
    eprintln!("commits in cycles {commits:?}, reveals in {reveals:?}");
    let mut dedup = commits.clone();
    dedup.dedup();
    assert_eq!(dedup, commits, "at most one commit per cycle: {log:?}");
    let restart_cycle = killed_at / cycle_len;
    for c in [restart_cycle + 1, restart_cycle + 2] {
        assert_eq!(
            commits.iter().filter(|&&x| x == c).count(),
            1,
            "cycle {c} committed once: {log:?}"
        );
        assert_eq!(
            reveals.iter().filter(|&&x| x == c + 1).count(),
            1,
            "cycle {c}'s commit revealed once, in cycle {}: {log:?}",
            c + 1
        );
    }
}
