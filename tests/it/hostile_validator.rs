//! The hostile corpus through a running validator: `connito devnet` and `connito validator` as
//! processes, one registered hotkey per case. In one cycle each case's hotkey commits a hash in
//! MinerCommit1 and a location in MinerCommit2, and a loopback HTTP server in this test serves
//! the case's manifest and shard there. Once the validator's Intake has judged the round, its
//! stored verdict for every case must be the one the library gives with everything the
//! validator knows of the round (`round_verdict`), and that must be the case's own verdict but
//! where the table [`IN_A_ROUND`] says why a known round changes it. No actor may restart.

use crate::common;
use crate::hostile::{corpus, support};

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use connito::chain::subxt::SubxtClient;
use connito::chain::{BlockInfo, ChainClient};
use connito::config::LocalnetConfig;
use connito::daemon_config::DaemonConfig;
use connito::phase::{Phase, PhaseClock};
use connito::submission::check::{Expected, parse_manifest};
use connito::submission::{Commitment, Hotkey, Verdict, check_submission};
use connito::tensors::blake2b_256;
use connito::wallet::dev_key;

use rayon::prelude::*;
use support::{Case, Fx};

const BIN: &str = env!("CARGO_BIN_EXE_connito");

/// Cases whose verdict in a running round is not the one `submission verify` gives without
/// `--cycle`/`--version`/`--model`, and why: the validator knows the committer's hotkey, the
/// round and the global model.
const IN_A_ROUND: &[(&str, Verdict, &str)] = &[
    (
        "another_keys_own_manifest",
        Verdict::WrongHotkey,
        "the manifest names the forger, the commitment is the case's key",
    ),
    (
        "1e30_offline_has_no_bound",
        Verdict::OutOfRange,
        "a validator always bounds values against its global model",
    ),
    (
        "hotkey_zero",
        Verdict::WrongHotkey,
        "the committer is known, and the zero key is not it",
    ),
    (
        "cycle_edited_after_signing",
        Verdict::StaleManifest,
        "the round's cycle is checked before the signature",
    ),
    (
        "1mb_header_over_max_shard_bytes",
        Verdict::Malformed,
        "under the default pol.max_shard_bytes it is only of the wrong size",
    ),
    (
        "max_shard_bytes_below_canonical",
        Verdict::Accepted,
        "the default pol.max_shard_bytes is above the canonical size",
    ),
    (
        "cycle_mismatch",
        Verdict::Accepted,
        "its manifest is for the round the validator is in",
    ),
    (
        "version_mismatch",
        Verdict::Accepted,
        "its manifest is for the global version the validator holds",
    ),
];

/// The validator's config: longer commit windows than localnet's (93 hotkeys commit in each,
/// about 25 commitments a second through one client here, 10 per 400 ms block), the same
/// 60-block cycle, loopback locations allowed.
const NODE: &str = "[node]\npoll_ms = 50\n\n[intake]\nallow_private_locations = true\n\n\
[phases]\ndistribute = 2\ntrain = 2\nminer_commit1 = 20\nminer_commit2 = 20\nsubmission = 10\n\
validate = 2\nmerge = 2\nvalidator_commit1 = 1\nvalidator_commit2 = 1\n";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ok(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "connito {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The validator's log without its terminal colours.
fn log_of(dir: &Path) -> String {
    let raw = std::fs::read_to_string(dir.join("v.log")).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(ch);
        }
    }
    out
}

/// The validator daemon on `url` with the wallet `v`, logging to `v.log`.
fn validator(dir: &Path, url: &str) -> Proc {
    let (wallets, cfg, data) = (dir.join("wallets"), dir.join("node.toml"), dir.join("v"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    for args in [
        vec![
            "wallet",
            "new",
            "--wallet.path",
            &s(&wallets),
            "--wallet.name",
            "v",
        ],
        vec![
            "chain",
            "register",
            "--chain-endpoint",
            url,
            "--wallet.path",
            &s(&wallets),
            "--wallet.name",
            "v",
            "--stake",
            "1000",
        ],
    ] {
        ok(&args);
    }
    let log = std::fs::File::create(dir.join("v.log")).unwrap();
    let child = Command::new(BIN)
        .args(["validator", "--chain-endpoint", url, "--wallet.path"])
        .arg(&wallets)
        .args(["--wallet.name", "v", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !log_of(dir).contains("advertised as") {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the validator did not start: {}",
            log_of(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Proc(child)
}

/// Serves `{base}/c{i}/manifest` and `/c{i}/shard` of every case on a loopback port until
/// `stop` (or five minutes): one thread per connection, `Connection: close`.
fn serve(cases: Arc<Vec<Case>>, stop: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            match listener.accept() {
                Ok((sock, _)) => {
                    let cases = cases.clone();
                    std::thread::spawn(move || answer(sock, &cases));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    port
}

fn answer(mut sock: TcpStream, cases: &[Case]) {
    sock.set_nonblocking(false).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let body = path
        .strip_prefix("/c")
        .and_then(|p| p.split_once('/'))
        .and_then(|(i, leaf)| Some((cases.get(i.parse::<usize>().ok()?)?, leaf)))
        .and_then(|(c, leaf)| match leaf {
            "manifest" => Some(&c.manifest),
            "shard" => Some(&c.shard),
            _ => None,
        });
    let _ = match body {
        Some(b) => sock
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .as_bytes(),
            )
            .and_then(|_| sock.write_all(b)),
        None => sock.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    };
}

/// What case `c`'s hotkey commits: the manifest's group and binding hash where it parses,
/// otherwise group 0 and a hash of the bytes.
fn commitment_of(c: &Case) -> (u16, [u8; 32]) {
    match parse_manifest(&c.manifest) {
        Ok(s) => (s.manifest.group, s.manifest.binding_hash()),
        Err(_) => (0, blake2b_256(&c.manifest)),
    }
}

/// The verdict the library gives with what the validator knows of the round: its cycle and
/// version, the committer and its hash, the committed group and the global model.
fn round_verdict(fx: &Fx, c: &Case) -> Verdict {
    let (group, committed) = commitment_of(c);
    if group as usize >= fx.cfg.model.n_groups {
        return Verdict::WrongGroup;
    }
    let exp = Expected {
        committed: Some(committed),
        ..fx.validator_view()
    };
    let r = check_submission(
        &c.manifest,
        &c.shard,
        &exp,
        &fx.spec(group),
        Some(&fx.global),
        &fx.cfg.pol.screen(),
    );
    r.map_or_else(|e| e.verdict, |_| Verdict::Accepted)
}

/// Waits (bounded) until the finalized head reaches `block`.
async fn until_block(c: &SubxtClient, block: u64) -> BlockInfo {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let f = c.finalized_block().await.unwrap();
        if f.number >= block {
            return f;
        }
        assert!(Instant::now() < deadline, "the chain did not reach {block}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every key sets its commitment at once; each must be included before `by`.
async fn commit_all(
    client: &Arc<SubxtClient>,
    netuid: u16,
    items: Vec<(Hotkey, Commitment)>,
    by: u64,
) {
    let mut set = tokio::task::JoinSet::new();
    for (key, c) in items {
        let client = client.clone();
        set.spawn(async move {
            client
                .set_commitment(&key, netuid, c.to_bytes().unwrap())
                .await
        });
    }
    let mut blocks = vec![];
    while let Some(r) = set.join_next().await {
        blocks.push(r.unwrap().unwrap().block);
    }
    let (first, last) = (blocks.iter().min().unwrap(), blocks.iter().max().unwrap());
    eprintln!("{} commitments in blocks {first}..={last}", blocks.len());
    assert!(
        *last < by,
        "commitments landed in blocks {first}..={last}, not all before {by}"
    );
}

#[test]
fn every_hostile_case_gets_its_verdict_from_a_running_validator() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("devnet.toml"), "block_time_ms = 400\n").unwrap();
    std::fs::write(dir.join("node.toml"), NODE).unwrap();
    let cfg: LocalnetConfig = DaemonConfig::parse(NODE, dir, &[]).unwrap().protocol;
    let node = common::start_with(
        &dir.join("chain"),
        &["--config", dir.join("devnet.toml").to_str().unwrap()],
    );
    let url = format!("ws://127.0.0.1:{}", node.port);
    let v = validator(dir, &url);
    let clock = PhaseClock::new(cfg.phases.clone()).unwrap();
    let netuid = cfg.chain.netuid;
    let global = connito::genesis::genesis_model(&cfg);
    // Each case is rebuilt from its part of the corpus for its own key and the round.
    let slots: Vec<(usize, usize)> = corpus::PARTS
        .iter()
        .enumerate()
        .flat_map(|(p, part)| (0..part(&Fx::new()).len()).map(move |j| (p, j)))
        .collect();
    let n = slots.len();
    let key_of = |i: usize| format!("hostile-case-{i}");

    rt().block_on(async {
        let client = Arc::new(SubxtClient::new(&url));
        let alice = dev_key("//Alice").unwrap();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let (client, alice) = (client.clone(), alice.clone());
            let key = Hotkey::dev(&key_of(i)).public();
            set.spawn(async move { client.burned_register(&alice, netuid, &key).await });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        // The round: the first cycle whose MinerCommit1 is far enough ahead to build the cases.
        let now = client.finalized_block().await.unwrap().number;
        let mut cycle = clock.position(now).cycle + 1;
        while clock.phase_start(cycle, Phase::MinerCommit1) < now + 40 {
            cycle += 1;
        }
        let built = Instant::now();
        let fxs: Vec<Fx> = (0..n)
            .into_par_iter()
            .map(|i| Fx::at(cfg.clone(), &key_of(i), cycle, 0, global.clone()))
            .collect();
        let cases: Vec<Case> = fxs
            .par_iter()
            .zip(&slots)
            .map(|(fx, &(part, j))| corpus::PARTS[part](fx).swap_remove(j))
            .collect();
        eprintln!(
            "{n} cases for cycle {cycle} built in {:.1} s",
            built.elapsed().as_secs_f64()
        );
        let cases = Arc::new(cases);
        let stop = Arc::new(AtomicBool::new(false));
        let port = serve(cases.clone(), stop.clone());

        let (c1, c2) = (
            clock.phase_start(cycle, Phase::MinerCommit1),
            clock.phase_start(cycle, Phase::MinerCommit2),
        );
        let at = until_block(&client, c1).await;
        assert!(
            at.number + 2 < c2,
            "cases built too late: block {} of {c1}..{c2}",
            at.number
        );
        let hashes = cases.iter().enumerate().map(|(i, c)| {
            let (group, hash) = commitment_of(c);
            (
                Hotkey::dev(&key_of(i)),
                Commitment::Hash {
                    group,
                    hash,
                    version: 0,
                },
            )
        });
        commit_all(&client, netuid, hashes.collect(), c2).await;
        until_block(&client, c2).await;
        let end = clock.phase_start(cycle, Phase::Submission);
        let locations = cases.iter().enumerate().map(|(i, c)| {
            let (group, hash) = commitment_of(c);
            let url = format!("http://127.0.0.1:{port}/c{i}");
            (
                Hotkey::dev(&key_of(i)),
                Commitment::Location {
                    group,
                    hash,
                    version: 0,
                    url,
                },
            )
        });
        commit_all(&client, netuid, locations.collect(), end).await;

        let judged = format!("cycle={cycle}");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !log_of(dir)
            .lines()
            .any(|l| l.contains("intake judged") && l.contains(&judged))
        {
            assert!(
                Instant::now() < deadline,
                "intake did not finish: {}",
                log_of(dir)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop.store(true, Ordering::SeqCst);
        check_verdicts(dir, v, &fxs, &cases, cycle);
    });
    drop(node);
}

/// Stops the validator and compares its stored verdicts with the expected ones.
fn check_verdicts(dir: &Path, v: Proc, fxs: &[Fx], cases: &[Case], cycle: u64) {
    let pid = v.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    drop(v);
    let log = log_of(dir);
    for bad in ["panicked", "restarting", "gave up"] {
        assert!(!log.contains(bad), "the validator log says {bad:?}: {log}");
    }
    let store = connito::store::Store::open(&dir.join("v").join("state")).unwrap();
    let stored: BTreeMap<[u8; 32], (String, String)> = store
        .scan(&connito::store::tables::SUBMISSIONS.as_json(), &[cycle])
        .unwrap()
        .into_iter()
        .map(|(_, s)| {
            let hotkey: [u8; 32] = serde_json::from_value(s["hotkey"].clone()).unwrap();
            let text = |f: &str| s[f].as_str().unwrap_or("").to_string();
            (hotkey, (text("verdict"), text("detail")))
        })
        .collect();
    let overrides: BTreeMap<&str, Verdict> = IN_A_ROUND.iter().map(|(n, v, _)| (*n, *v)).collect();
    let mut wrong = vec![];
    for (fx, c) in fxs.iter().zip(cases) {
        let want = overrides.get(c.name).copied().unwrap_or(c.want);
        let library = round_verdict(fx, c);
        let (got, detail) = stored
            .get(&fx.key.public())
            .cloned()
            .unwrap_or_else(|| ("(none)".into(), String::new()));
        // An accepted shard goes on to the Evaluator, which may refuse it as a near-copy of
        // an earlier case (they are all near-copies of one honest shard).
        let accepted = want == Verdict::Accepted && got == Verdict::NearDuplicate.label();
        if library != want || (got != want.label() && !accepted) {
            wrong.push(format!(
                "{}: want {}, library in the round {}, validator {got} ({detail})",
                c.name,
                want.label(),
                library.label()
            ));
        }
    }
    eprintln!(
        "{} cases judged by the validator, {} wrong",
        cases.len(),
        wrong.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
