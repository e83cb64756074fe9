//! `connito bench model`: training and evaluation throughput of a preset on one backend.

use std::time::Instant;

use burn::tensor::Device;
use connito::data::{Domain, Sampler, Split};
use connito::model::{ModelConfig, init_state_dict, loss_on_batch, to_params};
use connito::train::{GroupTrainer, TrainConfig};
use serde::Serialize;

/// What `connito bench model --json` prints (the PyTorch twin, benches/moe_torch.py, prints the
/// same keys).
#[derive(Debug, Serialize)]
pub struct ModelBench {
    pub preset: String,
    pub backend: String,
    pub threads: usize,
    pub train_tokens_per_s: f64,
    pub eval_tokens_per_s: f64,
    pub params: usize,
}

pub struct BenchOpts {
    pub preset: String,
    pub backend_name: String,
    pub device: Device,
    pub threads: usize,
    pub batch_rows: usize,
    pub steps: usize,
}

/// Times `steps` training steps of group 0 (a miner's job: only that group's experts train) and
/// `steps` forward passes with the loss (a validator's job), after one untimed warm-up of each.
pub fn run(o: &BenchOpts) -> anyhow::Result<ModelBench> {
    let cfg = ModelConfig::preset(&o.preset)?;
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

    let p = to_params(&sd, &o.device);
    let _: f32 = loss_on_batch(&cfg, &p, &batches[0], &o.device).into_scalar();
    let t = Instant::now();
    for b in &batches[1..] {
        let _: f32 = loss_on_batch(&cfg, &p, b, &o.device).into_scalar();
    }
    let eval_tokens_per_s = (o.steps * tokens) as f64 / t.elapsed().as_secs_f64();
    Ok(ModelBench {
        preset: o.preset.clone(),
        backend: o.backend_name.clone(),
        threads: o.threads,
        train_tokens_per_s,
        eval_tokens_per_s,
        params,
    })
}
