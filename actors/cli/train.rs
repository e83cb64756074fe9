//! `connito train`: one miner's training run outside the localnet, checkpointed into a data
//! directory so that a killed run (even `kill -9`) continues from its last checkpoint.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use burn::tensor::Device;
use connito::config::LocalnetConfig;
use connito::data::{Sampler, Split};
use connito::store::Store;
use connito::store::tables::TRAIN_CHECKPOINTS;
use connito::tensors::{decode_safetensors, encode_safetensors, state_dict_hash};
use connito::train::{RunOptions, TrainRun};
use serde::Serialize;

pub struct TrainOpts {
    pub cfg: LocalnetConfig,
    pub device: Device,
    pub group: u16,
    pub steps: u64,
    pub checkpoint_every: u64,
    pub data_dir: PathBuf,
    pub model: Option<PathBuf>,
    pub out: PathBuf,
}

/// The summary printed on stdout when the run ends.
#[derive(Debug, Serialize)]
pub struct TrainSummary {
    pub group: u16,
    pub steps: u64,
    pub resumed_from: Option<u64>,
    pub skipped_steps: u64,
    pub last_loss: Option<f32>,
    pub shard: PathBuf,
    pub shard_hash: String,
}

pub fn run(o: &TrainOpts) -> anyhow::Result<TrainSummary> {
    let cfg = &o.cfg;
    if o.group as usize >= cfg.model.n_groups {
        anyhow::bail!(
            "--group {} is not a group (the model has {})",
            o.group,
            cfg.model.n_groups
        );
    }
    let global = match &o.model {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            decode_safetensors(&bytes).with_context(|| format!("{} is not a model", p.display()))?
        }
        None => connito::genesis::genesis_model(cfg),
    };
    let shapes = connito::model::param_shapes(&cfg.model);
    for (name, shape) in &shapes {
        match global.get(name) {
            Some(t) if &t.shape == shape => {}
            Some(t) => anyhow::bail!(
                "model tensor {name} has shape {:?}, the config's model needs {shape:?}",
                t.shape
            ),
            None => anyhow::bail!("the model lacks {name}: it does not match the config's model"),
        }
    }
    if let Some(extra) = global.keys().find(|k| !shapes.contains_key(*k)) {
        anyhow::bail!("the model has a tensor the config's model does not: {extra}");
    }
    // A checkpoint belongs to the run that started from this model.
    let start = connito::tensors::hash_u64(&state_dict_hash(&global));
    std::fs::create_dir_all(&o.data_dir)
        .with_context(|| format!("creating {}", o.data_dir.display()))?;
    let store = Store::open(&o.data_dir.join("state"))?;
    let opts = RunOptions {
        model: &cfg.model,
        train: &cfg.train,
        global: &global,
        group: o.group,
        device: &o.device,
        budget: o.steps,
        checkpoint_every: o.checkpoint_every,
        store: &store,
        table: &TRAIN_CHECKPOINTS,
        key: u64::from(o.group),
        start,
    };
    let domain = cfg.domains[o.group as usize].clone();
    let mut run = TrainRun::start_or_resume(opts, |cursor| {
        Sampler::new(
            domain,
            cfg.seed,
            Split::Train,
            cfg.pol.heldout_every,
            cursor.unwrap_or(0),
        )
    })?;
    if let Some(step) = run.resumed_from {
        eprintln!(
            "train: resuming group {} at step {step} from the checkpoint in {}",
            o.group,
            o.data_dir.display()
        );
    }
    let t = Instant::now();
    let mut tokens = 0usize;
    while !run.done() {
        let out = run.step()?;
        let s = out.stats;
        if !s.skipped {
            tokens += s.tokens;
        }
        let step = run.steps();
        if !s.skipped && (step.is_multiple_of(10) || run.done()) {
            eprintln!(
                "train: step {step}/{} loss {:.4} aux {:.3} lr {:.2e} {:.0} tokens/s",
                o.steps,
                s.loss,
                s.aux_loss,
                run.trainer.lr(),
                tokens as f64 / t.elapsed().as_secs_f64().max(1e-9)
            );
        }
        if out.checkpointed {
            eprintln!("train: checkpoint at step {step}");
        }
    }
    let tr = &run.trainer;
    let shard = tr.shard();
    let bytes = encode_safetensors(&shard);
    std::fs::write(&o.out, &bytes).with_context(|| format!("writing {}", o.out.display()))?;
    Ok(TrainSummary {
        group: o.group,
        steps: tr.steps,
        resumed_from: run.resumed_from,
        skipped_steps: run.skipped(),
        last_loss: run.last_loss,
        shard: o.out.clone(),
        shard_hash: hex::encode(state_dict_hash(&shard)),
    })
}
