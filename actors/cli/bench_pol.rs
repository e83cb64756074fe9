//! `connito bench pol`: a validator's evaluation capacity. One global model is put on the device
//! once; each candidate's group experts replace the model's in place (as the Evaluator does),
//! are evaluated on the round's batches, and are swapped back. Prints evaluations per minute and the process's peak resident memory
//! while the candidates are evaluated, against the size of one global model.

use std::time::Instant;

use burn::tensor::Device;
use connito::config::PolConfig;
use connito::data::{Domain, eval_batches};
use connito::model::{ModelConfig, extract_group, init_state_dict, to_params};
use connito::pol::{batch_losses, with_candidate};
use connito::rng::SplitMix64;
use connito::tensors::StateDict;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct PolBench {
    pub preset: String,
    pub backend: String,
    pub candidates: usize,
    /// Batches (of `batch_rows` × seq_len tokens) per evaluation, as `[pol]` sets them.
    pub batches: usize,
    pub tokens_per_evaluation: usize,
    pub evaluations_per_minute: f64,
    /// Bytes of one global model's f32 values.
    pub model_bytes: u64,
    /// Resident memory before the global model went to the device (the stored model and the
    /// candidates' shards already loaded, as in a validator).
    pub rss_before_bytes: u64,
    /// Peak resident memory while the global model was on the device and every candidate was
    /// evaluated.
    pub peak_rss_bytes: u64,
    /// `(peak − before) / model_bytes`: the device copy of the model plus everything the
    /// evaluations added; per-candidate model copies would add one model each.
    pub evaluation_memory_over_model: f64,
}

/// Runs the benchmark on `device`.
pub fn run(
    preset: &str,
    backend: &str,
    device: &Device,
    candidates: usize,
) -> anyhow::Result<PolBench> {
    let cfg = ModelConfig::preset(preset)?;
    let pol = PolConfig::default();
    let global = init_state_dict(&cfg, 1);
    let model_bytes: u64 = global.values().map(|t| 4 * t.data.len() as u64).sum();
    let shards: Vec<StateDict> = (0..candidates)
        .map(|i| {
            perturbed(
                extract_group(&cfg, &global, (i % cfg.n_groups) as u16),
                i as u64,
            )
        })
        .collect();
    let batches = eval_batches(
        &Domain::Sorting,
        1,
        7,
        pol.heldout_every,
        pol.eval_batches,
        pol.batch_rows,
        cfg.seq_len,
    );
    let rss_before_bytes = reset_peak_rss();
    let mut params = to_params(&global, device);
    let routing = |i: usize| cfg.routing(Some((i % cfg.n_groups) as u16));
    let base = batch_losses(&cfg, &params, &batches, &routing(0), device);
    eprintln!(
        "bench pol: {preset} on {backend}: baseline {:.4}; {candidates} candidates",
        base[0]
    );
    let t = Instant::now();
    for (i, shard) in shards.iter().enumerate() {
        let l = with_candidate(&mut params, &global, shard, device, |p| {
            batch_losses(&cfg, p, &batches, &routing(i), device)
        });
        eprintln!(
            "bench pol: candidate {}/{candidates} loss {:.4} ({:.1} s so far)",
            i + 1,
            l[0],
            t.elapsed().as_secs_f64()
        );
    }
    let secs = t.elapsed().as_secs_f64();
    let peak_rss_bytes = peak_rss();
    Ok(PolBench {
        preset: preset.into(),
        backend: backend.into(),
        candidates,
        batches: batches.len(),
        tokens_per_evaluation: batches.iter().map(|b| b.rows * b.seq_len).sum(),
        evaluations_per_minute: candidates as f64 * 60.0 / secs.max(1e-9),
        model_bytes,
        rss_before_bytes,
        peak_rss_bytes,
        evaluation_memory_over_model: peak_rss_bytes.saturating_sub(rss_before_bytes) as f64
            / model_bytes as f64,
    })
}

fn perturbed(mut sd: StateDict, seed: u64) -> StateDict {
    let mut r = SplitMix64::new(seed);
    for t in sd.values_mut() {
        t.data.iter_mut().for_each(|v| *v += r.normal_f32() * 1e-3);
    }
    sd
}

/// A `/proc/self/status` field in bytes (Linux; 0 elsewhere).
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resets the peak resident memory (Linux `clear_refs` 5) and returns the current one.
fn reset_peak_rss() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_bytes("VmRSS:")
}

fn peak_rss() -> u64 {
    status_bytes("VmHWM:")
}
