//! `connito bench model`: training and evaluation throughput of a preset on one backend;
//! `connito bench yuma`: one Yuma Consensus epoch at a subnet's size.

use std::time::Instant;

use burn::tensor::Device;
use connito::consensus::{EpochInput, YumaParams, epoch};
use connito::data::{Domain, Sampler, Split};
use connito::model::{ModelConfig, WeightDtype, init_state_dict, loss_on_batch, to_params_as};
use connito::train::{GroupTrainer, TrainConfig};
use serde::Serialize;

/// What `connito bench model --json` prints (the PyTorch twin, benches/dsv2_torch.py, prints the
/// same keys).
#[derive(Debug, Serialize)]
pub struct ModelBench {
    pub preset: String,
    pub weight_dtype: String,
    pub backend: String,
    pub threads: usize,
    pub train_tokens_per_s: f64,
    pub eval_tokens_per_s: f64,
    pub params: usize,
}

pub struct BenchOpts {
    pub preset: String,
    pub weight_dtype: WeightDtype,
    pub backend_name: String,
    pub device: Device,
    pub threads: usize,
    pub batch_rows: usize,
    pub steps: usize,
}

/// Times `steps` training steps of group 0's partial model (a miner's job: only that group's
/// experts train) and `steps` forward passes of it with the loss (a validator's job), after one
/// untimed warm-up of each.
pub fn run(o: &BenchOpts) -> anyhow::Result<ModelBench> {
    let cfg = ModelConfig {
        weight_dtype: o.weight_dtype,
        ..ModelConfig::preset(&o.preset)?
    };
    let sd = init_state_dict(&cfg, 1);
    let params: usize = sd.values().map(|t| t.data.len()).sum();
    let tcfg = TrainConfig {
        batch_rows: o.batch_rows,
        ..TrainConfig::default()
    };
    let mut sampler = Sampler::new(Domain::Sorting, 1, Split::Train, 8, 0);
    let batches: Vec<_> = (0..o.steps + 1)
        .map(|_| sampler.next_batch(o.batch_rows, cfg.seq_len))
        .collect();
    let tokens = o.batch_rows * cfg.seq_len;

    let mut tr = GroupTrainer::new(&cfg, &tcfg, &sd, 0, &o.device);
    eprintln!(
        "bench: {} ({params} parameters) on {}, {} threads, {} tokens per step; warming up",
        o.preset, o.backend_name, o.threads, tokens
    );
    tr.step(&batches[0]);
    let t = Instant::now();
    for (i, b) in batches[1..].iter().enumerate() {
        let s = tr.step(b);
        eprintln!(
            "bench: train step {}/{} loss {:.3} ({:.1} s so far)",
            i + 1,
            o.steps,
            s.loss,
            t.elapsed().as_secs_f64()
        );
    }
    let train_tokens_per_s = (o.steps * tokens) as f64 / t.elapsed().as_secs_f64();

    let p = to_params_as(&sd, &o.device, cfg.weight_dtype);
    // A validator scores group 0's partial model.
    let routing = cfg.routing(Some(0));
    let _: f32 = loss_on_batch(&cfg, &p, &batches[0], &routing, &o.device).into_scalar();
    let t = Instant::now();
    for b in &batches[1..] {
        let _: f32 = loss_on_batch(&cfg, &p, b, &routing, &o.device).into_scalar();
    }
    let eval_tokens_per_s = (o.steps * tokens) as f64 / t.elapsed().as_secs_f64();
    Ok(ModelBench {
        preset: o.preset.clone(),
        weight_dtype: o.weight_dtype.name().into(),
        backend: o.backend_name.clone(),
        threads: o.threads,
        train_tokens_per_s,
        eval_tokens_per_s,
        params,
    })
}

/// What `connito bench yuma --json` prints: one Yuma Consensus epoch, timed.
#[derive(Debug, Serialize)]
pub struct YumaBench {
    pub uids: usize,
    pub validators: usize,
    /// Weight entries in the input (each validator weights about 95% of the miners).
    pub weight_entries: usize,
    pub iterations: usize,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// splitmix64: small, seeded, good enough for a benchmark's input.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, k: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % k
    }
}

/// The steady state of a subnet: uids `0..validators` are validators with distinct stakes, the
/// rest miners without stake; every validator weights about 95% of the miners (seeded random u16
/// weights) and holds the bonds of a previous epoch.
pub fn yuma_input(uids: usize, validators: usize, seed: u64) -> anyhow::Result<EpochInput> {
    const BLOCK: u64 = 10_000;
    anyhow::ensure!(
        validators <= uids && uids <= usize::from(u16::MAX),
        "need validators <= uids <= 65535 (got {validators} validators, {uids} uids)"
    );
    let mut rng = SplitMix(seed);
    let stake = (0..uids)
        .map(|i| {
            if i < validators {
                1_000.0 + rng.below(1_000_000) as f64
            } else {
                0.0
            }
        })
        .collect();
    let weights = (0..uids)
        .map(|i| {
            if i >= validators {
                return Vec::new();
            }
            (validators..uids)
                .filter_map(|j| {
                    let keep = rng.below(20) != 0;
                    let w = 1 + rng.below(65_535) as u16;
                    keep.then_some((j as u16, w))
                })
                .collect()
        })
        .collect();
    let params = YumaParams {
        max_validators: validators,
        ..YumaParams::default()
    };
    let last_update = (0..uids)
        .map(|i| if i < validators { BLOCK - 10 } else { 100 })
        .collect();
    let mut inp = EpochInput::new(
        stake,
        weights,
        vec![Vec::new(); uids],
        last_update,
        vec![10; uids],
        BLOCK,
        params,
    );
    // Steady state: last epoch's bonds as this epoch's input.
    inp.bonds = epoch(&inp)?.bonds;
    Ok(inp)
}

/// Times `iterations` epochs on [`yuma_input`] after `iterations / 10 + 1` untimed ones.
pub fn yuma(uids: usize, validators: usize, iterations: usize) -> anyhow::Result<YumaBench> {
    let inp = yuma_input(uids, validators, 102)?;
    let iterations = iterations.max(1);
    for _ in 0..iterations / 10 + 1 {
        std::hint::black_box(epoch(std::hint::black_box(&inp))?);
    }
    let mut ms: Vec<f64> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            let out = epoch(std::hint::black_box(&inp));
            let elapsed = t.elapsed().as_secs_f64() * 1e3;
            out.map(|o| {
                std::hint::black_box(o);
                elapsed
            })
        })
        .collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    Ok(YumaBench {
        uids,
        validators,
        weight_entries: inp.weights.iter().map(Vec::len).sum(),
        iterations,
        mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
        median_ms: ms[ms.len() / 2],
        min_ms: ms[0],
        max_ms: ms[ms.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuma_bench_input_has_the_documented_shape() {
        let inp = yuma_input(32, 8, 7).unwrap();
        assert_eq!(inp.stake.len(), 32);
        assert!(inp.weights[8..].iter().all(Vec::is_empty));
        let entries: usize = inp.weights.iter().map(Vec::len).sum();
        // About 95% of 8 × 24 entries.
        assert!((150..=192).contains(&entries), "{entries}");
        assert!(
            inp.bonds.iter().any(|r| !r.is_empty()),
            "steady state has bonds"
        );
        let r = yuma(32, 8, 3).unwrap();
        assert_eq!(r.iterations, 3);
        assert!(r.min_ms <= r.median_ms && r.median_ms <= r.max_ms);
    }

    #[test]
    fn yuma_bench_rejects_more_validators_than_uids() {
        assert!(yuma_input(4, 5, 1).is_err());
    }
}
