//! `connito train`: one miner's training run outside the localnet, checkpointed into a data
//! directory so that a killed run (even `kill -9`) continues from its last checkpoint.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use burn::tensor::Device;
use connito::config::LocalnetConfig;
use connito::data::{Sampler, Split};
use connito::store::{Store, key};
use connito::tensors::{decode_safetensors, encode_safetensors, state_dict_hash};
use connito::train::{GroupTrainer, load_run, save_run};
use serde::Serialize;

const TREE: &str = "train_checkpoints";

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
    let k = key(&[o.group as u64]);
    let saved = load_run(&store, TREE, &k, start)?;
    let resumed_from = saved.as_ref().map(|s| s.checkpoint.steps);
    let (mut tr, cursor, mut attempts) = match saved {
        Some(s) => {
            eprintln!(
                "train: resuming group {} at step {} from the checkpoint in {}",
                o.group,
                s.checkpoint.steps,
                o.data_dir.display()
            );
            let tr = GroupTrainer::restore(
                &cfg.model,
                &cfg.train,
                &global,
                o.group,
                &o.device,
                &s.checkpoint,
            );
            (tr, s.cursor, s.attempts as u64)
        }
        None => (
            GroupTrainer::new(&cfg.model, &cfg.train, &global, o.group, &o.device),
            0,
            0,
        ),
    };
    let mut sampler = Sampler::new(
        cfg.domains[o.group as usize].clone(),
        cfg.seed,
        Split::Train,
        cfg.pol.heldout_every,
        cursor,
    );
    let mut skipped = attempts - tr.steps;
    let mut last = None;
    let t = Instant::now();
    let mut tokens = 0usize;
    while tr.steps < o.steps {
        let s = tr.run(&mut sampler, 1)[0];
        attempts += 1;
        if s.skipped {
            skipped += 1;
        } else {
            last = Some(s.loss);
            tokens += s.tokens;
        }
        if tr.steps.is_multiple_of(10) || tr.steps == o.steps {
            eprintln!(
                "train: step {}/{} loss {:.4} aux {:.3} lr {:.2e} {:.0} tokens/s",
                tr.steps,
                o.steps,
                s.loss,
                s.aux_loss,
                tr.lr(),
                tokens as f64 / t.elapsed().as_secs_f64().max(1e-9)
            );
        }
        if o.checkpoint_every > 0 && !s.skipped && tr.steps.is_multiple_of(o.checkpoint_every) {
            save_run(
                &store,
                TREE,
                &k,
                &tr,
                start,
                sampler.cursor,
                attempts as usize,
            )?;
            eprintln!("train: checkpoint at step {}", tr.steps);
        }
        if attempts > o.steps * 4 + 100 {
            anyhow::bail!("{skipped} of {attempts} steps were not finite; giving up");
        }
    }
    let shard = tr.shard();
    let bytes = encode_safetensors(&shard);
    std::fs::write(&o.out, &bytes).with_context(|| format!("writing {}", o.out.display()))?;
    Ok(TrainSummary {
        group: o.group,
        steps: tr.steps,
        resumed_from,
        skipped_steps: skipped,
        last_loss: last,
        shard: o.out.clone(),
        shard_hash: hex::encode(state_dict_hash(&shard)),
    })
}
