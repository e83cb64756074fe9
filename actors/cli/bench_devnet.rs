//! `connito bench devnet`: the dev chain at subnet scale, as devnet runs it (sled, every block
//! durable). `uids` registered, the first `validators` staked; every tempo each validator
//! commits weights on all miners (commit-reveal on, period 1) and reveals the previous tempo's
//! commit, spread over the tempo, as signed extrinsics through devnet's JSON-RPC handler
//! (`author_submitExtrinsic`: hex and SCALE decoding, era, signature and nonce checks). Per
//! block it times submitting that block's extrinsics plus sealing it (their execution and
//! `System.Events`), against the block time; signing is the client's and is not timed. After
//! each epoch it times `get_metagraph`, `get_neurons_lite` and a `state_getKeysPaged` page.
//!
//! The socket is not in the figures (`tests/it/devnet.rs` drives the same handler over it).

use std::time::Instant;

use connito::chain::dev::calls::encode_call;
use connito::chain::dev::rpc::{NodeView, handle_body};
use connito::chain::substrate::dispatch::outcomes;
use connito::chain::substrate::extrinsic::{Era, sign};
use connito::chain::{DevChain, DevChainConfig, commit_hash};
use connito::store::Store;
use connito::submission::Hotkey;
use parity_scale_codec::Encode;
use serde::Serialize;
use serde_json::json;

pub struct DevnetBenchOpts {
    pub uids: u16,
    pub validators: u16,
    pub tempo: u64,
    pub epochs: u64,
    pub block_time_ms: f64,
}

/// Milliseconds: mean, 99th percentile, max.
#[derive(Debug, Serialize)]
pub struct Timing {
    pub mean_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Timing {
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let n = ms.len().max(1);
        Self {
            mean_ms: ms.iter().sum::<f64>() / n as f64,
            p99_ms: ms
                .get((n * 99).div_ceil(100).saturating_sub(1))
                .copied()
                .unwrap_or(0.0),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DevnetBench {
    pub uids: u16,
    pub validators: u16,
    pub tempo: u64,
    pub blocks: u64,
    pub block_time_ms: f64,
    /// Submitting a block's extrinsics plus sealing it.
    pub block: Timing,
    /// One `author_submitExtrinsic` (a commit or a reveal).
    pub submit: Timing,
    pub blocks_over_budget: usize,
    pub commits: usize,
    pub reveals: usize,
    pub rejected: usize,
    pub metagraph_bytes: usize,
    pub get_metagraph: Timing,
    pub get_neurons_lite: Timing,
    pub keys_page: Timing,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Weights of validator `v` in epoch `e` on every miner (seeded, non-zero).
fn weights(v: u16, e: u64, uids: u16, validators: u16) -> (Vec<u16>, Vec<u16>) {
    let miners: Vec<u16> = (validators..uids).collect();
    let values = miners
        .iter()
        .map(|&m| 1 + ((u64::from(v) * 7919 + u64::from(m) * 104_729 + e * 31) % 65_535) as u16)
        .collect();
    (miners, values)
}

fn rpc_ms(chain: &DevChain, method: &str, params: serde_json::Value) -> (f64, usize) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let t = Instant::now();
    let out = handle_body(chain, body.as_bytes());
    let elapsed = ms(t);
    let len = out["result"]
        .as_str()
        .map_or(0, |h| h.len().saturating_sub(2) / 2);
    (elapsed, len)
}

/// A signed `SubtensorModule` call of validator `k` (mortal, 64 blocks, as clients sign).
fn extrinsic(chain: &DevChain, k: &Hotkey, nonce: u32, name: &str, args: impl Encode) -> String {
    let call = encode_call("SubtensorModule", name, args).expect("in finney");
    let best = chain.best().0;
    let era = Era::mortal(64, best);
    let birth = chain.block_hash_of(era.birth(best + 1));
    let bytes = sign(k, &call, era, nonce, &chain.signing_context(), &birth);
    format!("0x{}", hex::encode(bytes))
}

/// The extrinsics validator `v` sends at the start of `epoch`: a reveal of the last epoch's
/// commit (from epoch 1), then this epoch's commit; `true` marks the commit.
fn validator_extrinsics(
    chain: &DevChain,
    o: &DevnetBenchOpts,
    k: &Hotkey,
    v: u16,
    epoch: u64,
) -> Vec<(bool, String)> {
    let salt = vec![v, 1, 2, 3];
    let mut out = vec![];
    // The account's next nonce, as a client asks for it (`system_accountNextIndex`).
    let mut nonce = chain.next_index(&k.public());
    if epoch > 0 {
        let (u, w) = weights(v, epoch - 1, o.uids, o.validators);
        let args = (102_u16, u, w, salt.clone(), 0_u64);
        out.push((false, extrinsic(chain, k, nonce, "reveal_weights", args)));
        nonce += 1;
    }
    let (u, w) = weights(v, epoch, o.uids, o.validators);
    let h = commit_hash(&k.public(), 102, &u, &w, &salt, 0);
    let commit = extrinsic(chain, k, nonce, "commit_weights", (102_u16, h));
    out.push((true, commit));
    out
}

async fn setup(chain: &DevChain, o: &DevnetBenchOpts) -> anyhow::Result<Vec<Hotkey>> {
    let keys: Vec<Hotkey> = (0..o.uids)
        .map(|i| Hotkey::dev(&format!("bench-{i}")))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        chain.register(k, 102).await?;
        if i < usize::from(o.validators) {
            chain.add_stake(k, 102, 1_000.0 + i as f64).await?;
        }
    }
    Ok(keys)
}

/// Runs the benchmark in a fresh temporary directory.
/// What the run measured so far.
#[derive(Default)]
struct Tally {
    block_ms: Vec<f64>,
    submit_ms: Vec<f64>,
    metagraph_ms: Vec<f64>,
    neurons_ms: Vec<f64>,
    keys_ms: Vec<f64>,
    commits: usize,
    reveals: usize,
    rejected: usize,
    metagraph_bytes: usize,
}

impl Tally {
    /// Block `b`: the acting validators' extrinsics submitted, the block sealed, its events
    /// counted.
    fn block(
        &mut self,
        chain: &DevChain,
        o: &DevnetBenchOpts,
        keys: &[Hotkey],
        b: u64,
    ) -> anyhow::Result<()> {
        let (epoch, offset) = (b / o.tempo, b % o.tempo);
        // Validator v acts at offset v (mod tempo).
        let xts: Vec<(bool, String)> = (0..o.validators)
            .filter(|&v| u64::from(v) % o.tempo == offset)
            .flat_map(|v| validator_extrinsics(chain, o, &keys[usize::from(v)], v, epoch))
            .collect();
        let t = Instant::now();
        let mut accepted = vec![];
        for (is_commit, x) in xts {
            let (elapsed, hash_len) = rpc_ms(chain, "author_submitExtrinsic", json!([x]));
            self.submit_ms.push(elapsed);
            if hash_len == 32 {
                accepted.push(is_commit);
            } else {
                self.rejected += 1;
            }
        }
        let head = chain.produce_block()?;
        self.block_ms.push(ms(t));
        let results = outcomes(&chain.block_body(head.number).events).unwrap_or_default();
        for (r, is_commit) in results.iter().zip(accepted) {
            match (r, is_commit) {
                (Ok(()), true) => self.commits += 1,
                (Ok(()), false) => self.reveals += 1,
                (Err(_), _) => self.rejected += 1,
            }
        }
        Ok(())
    }

    /// The reads a validator makes once per epoch, through the RPC handler.
    fn epoch_reads(&mut self, chain: &DevChain) {
        let (t, len) = rpc_ms(
            chain,
            "state_call",
            json!(["SubnetInfoRuntimeApi_get_metagraph", "6600", null]),
        );
        self.metagraph_ms.push(t);
        self.metagraph_bytes = len;
        let neurons = json!(["NeuronInfoRuntimeApi_get_neurons_lite", "6600", null]);
        self.neurons_ms.push(rpc_ms(chain, "state_call", neurons).0);
        let keys = connito::chain::substrate::hashing::storage_prefix("SubtensorModule", "Keys");
        let prefix = format!("0x{}", hex::encode(keys));
        let page = json!([prefix, 1000, null]);
        self.keys_ms
            .push(rpc_ms(chain, "state_getKeysPaged", page).0);
    }
}

/// Runs the benchmark in a fresh temporary directory.
pub async fn run(o: &DevnetBenchOpts) -> anyhow::Result<DevnetBench> {
    anyhow::ensure!(
        o.validators <= o.uids && o.tempo > 0,
        "need validators <= uids, tempo > 0"
    );
    let dir = tempfile::tempdir()?;
    let cfg = DevChainConfig {
        tempo: o.tempo,
        max_uids: o.uids,
        weights_rate_limit: 0,
        commit_reveal_enabled: true,
        reveal_period_epochs: 1,
        ..Default::default()
    };
    let chain = DevChain::open(cfg, Store::open(&dir.path().join("chain"))?, 1, 0)?;
    let keys = setup(&chain, o).await?;
    let mut t = Tally::default();
    let blocks = o.tempo * o.epochs;
    for b in 0..blocks {
        t.block(&chain, o, &keys, b)?;
        if b % o.tempo == o.tempo - 1 {
            t.epoch_reads(&chain);
            eprintln!(
                "bench devnet: epoch {} of {}: block {}, last metagraph call {:.1} ms",
                b / o.tempo + 1,
                o.epochs,
                chain.best().0,
                t.metagraph_ms.last().copied().unwrap_or(0.0)
            );
        }
    }
    let over = t.block_ms.iter().filter(|&&m| m > o.block_time_ms).count();
    Ok(DevnetBench {
        uids: o.uids,
        validators: o.validators,
        tempo: o.tempo,
        blocks,
        block_time_ms: o.block_time_ms,
        block: Timing::of(t.block_ms),
        submit: Timing::of(t.submit_ms),
        blocks_over_budget: over,
        commits: t.commits,
        reveals: t.reveals,
        rejected: t.rejected,
        metagraph_bytes: t.metagraph_bytes,
        get_metagraph: Timing::of(t.metagraph_ms),
        get_neurons_lite: Timing::of(t.neurons_ms),
        keys_page: Timing::of(t.keys_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_commits_and_reveals_every_validator_every_tempo() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let o = DevnetBenchOpts {
            uids: 12,
            validators: 4,
            tempo: 5,
            epochs: 3,
            block_time_ms: 250.0,
        };
        let r = rt.block_on(run(&o)).unwrap();
        assert_eq!((r.blocks, r.commits, r.reveals, r.rejected), (15, 12, 8, 0));
        assert!(r.get_metagraph.mean_ms > 0.0);
        assert!(r.metagraph_bytes > 12 * 32 * 2, "{}", r.metagraph_bytes);
        let t = Timing::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((t.mean_ms, t.p99_ms, t.max_ms), (2.0, 3.0, 3.0));
    }
}
