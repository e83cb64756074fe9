//! Trainer (miner): at Distribute/Train, get the current global model (from the validator's
//! commitment, or the genesis model before the first merge), train this miner's expert group on
//! its domain until the Train phase is about to end, and store the resulting shard. Training runs
//! on a blocking thread and stops when told; the actor stays responsive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use connito::data::{Sampler, Split, TokenBatch};
use connito::model::extract_group;
use connito::phase::Phase;
use connito::rng::mix;
use connito::submission::Commitment;
use connito::tensors::{StateDict, blake2b_256, decode_canonical, hash_u64};
use connito::train::{BatchSource, RunOptions, TrainRun};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::miner::adversary::Strategy;
use crate::node::context::{Ctx, GLOBAL_GROUP, Tick, blocking};
use crate::node::http;
use connito::store::records::TrainRecord;
use connito::store::tables::{TRAINER, TRAINER_CHECKPOINTS};

pub struct Trainer;

pub enum TrainerMsg {
    Tick(Tick),
    Done(u64, Option<Box<TrainRecord>>),
}

pub struct TrainerArgs {
    pub ctx: Ctx,
    pub strategy: Strategy,
    pub group: u16,
}

/// Stops the training thread when dropped: when the actor dies (its state is dropped even after
/// a panic), its thread stops too instead of racing the restarted actor's run.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

pub struct TrainerState {
    args: TrainerArgs,
    busy: Option<(u64, StopOnDrop)>,
}

impl Actor for Trainer {
    type Msg = TrainerMsg;
    type State = TrainerState;
    type Arguments = TrainerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: TrainerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Every (re)start subscribes anew: a restarted actor never misses its ticks.
        args.ctx
            .ticks
            .subscribe(myself, |t| Some(TrainerMsg::Tick(t)));
        Ok(TrainerState { args, busy: None })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: TrainerMsg,
        st: &mut TrainerState,
    ) -> Result<(), ActorProcessingErr> {
        let ctx = &st.args.ctx;
        match msg {
            TrainerMsg::Done(cycle, rec) => {
                if let Some(rec) = rec {
                    ctx.store.put_durable(&TRAINER, &cycle, &*rec)?;
                }
                st.busy = None;
            }
            TrainerMsg::Tick(t) => {
                let cycle = t.pos.cycle;
                if let Some((c, StopOnDrop(stop))) = &st.busy {
                    let ending = *c != cycle
                        || t.pos.phase > Phase::Train
                        || (t.pos.phase == Phase::Train && t.pos.left_in_phase <= 1);
                    if ending {
                        stop.store(true, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                let trainable = t.pos.phase == Phase::Distribute
                    || (t.pos.phase == Phase::Train && t.pos.left_in_phase > 2);
                if !trainable || !st.args.strategy.trains() {
                    return Ok(());
                }
                if ctx.store.get(&TRAINER, &cycle)?.is_some() {
                    return Ok(());
                }
                let stop = Arc::new(AtomicBool::new(false));
                st.busy = Some((cycle, StopOnDrop(stop.clone())));
                let (ctx, strategy, group) = (ctx.clone(), st.args.strategy, st.args.group);
                tokio::spawn(async move {
                    let start = global_model(&ctx, &t.at)
                        .await
                        .map(|(version, global)| strategy.start_from(&ctx.cfg, version, global));
                    let rec = match start {
                        // Sits this cycle out (the stale adversary, until a newer model exists).
                        Ok(None) => Ok(TrainRecord::default()),
                        Ok(Some((version, global))) => {
                            let c2 = ctx.clone();
                            blocking(move || {
                                train(&c2, strategy, group, cycle, version, &global, &stop)
                            })
                            .await
                            .and_then(|r| r)
                        }
                        Err(e) => Err(e),
                    };
                    let rec = rec
                        .map_err(|e| tracing::error!(daemon = %ctx.daemon, cycle, "training: {e}"))
                        .ok();
                    let _ = myself.cast(TrainerMsg::Done(cycle, rec.map(Box::new)));
                });
            }
        }
        Ok(())
    }
}

/// The newest global model committed by the highest-stake validator (a miner's commitment
/// of a "global model" is ignored), or genesis (v0) before the first merge.
async fn global_model(
    ctx: &Ctx,
    at: &connito::chain::BlockInfo,
) -> Result<(u64, StateDict), ActorProcessingErr> {
    let mg = ctx.chain.metagraph(ctx.netuid, at).await?;
    let leader = mg
        .iter()
        .filter(|n| n.stake > 0.0)
        .max_by(|a, b| a.stake.total_cmp(&b.stake))
        .map(|n| n.hotkey);
    let commitments = ctx.chain.commitments(ctx.netuid, at).await?;
    let newest = commitments
        .iter()
        .filter(|r| Some(r.hotkey) == leader)
        .find_map(|r| match Commitment::from_bytes(&r.data) {
            Ok(Commitment::Location {
                group: GLOBAL_GROUP,
                hash,
                version,
                url,
            }) => Some((version, hash, url)),
            _ => None,
        });
    if let Some((version, hash, url)) = newest {
        if let Ok(sd) = ctx.store.get_state_dict(&hash) {
            return Ok((version, sd));
        }
        let bytes = http::get(&url, 1 << 30).await?;
        if blake2b_256(&bytes) != hash {
            return Err(format!(
                "global model v{version} from {url} does not match its committed hash"
            )
            .into());
        }
        let sd = decode_canonical(&bytes)?;
        ctx.store.put_blob_bytes(&bytes)?;
        tracing::info!(daemon = %ctx.daemon, version, "fetched global model");
        return Ok((version, sd));
    }
    Ok((0, connito::genesis::genesis_model(&ctx.cfg)))
}

fn train(
    ctx: &Ctx,
    strategy: Strategy,
    group: u16,
    cycle: u64,
    version: u64,
    global: &StateDict,
    stop: &AtomicBool,
) -> Result<TrainRecord, ActorProcessingErr> {
    let cfg = &ctx.cfg;
    let seed = mix(&[cycle, hotkey_seed(ctx)]);
    let group_experts = extract_group(&cfg.model, global, group);
    let (shard, steps, last_loss) = match strategy.untrained(group_experts, seed) {
        Some(shard) => (shard, 0, None),
        None => train_steps(ctx, strategy, group, cycle, version, global, stop)?,
    };
    let hash = ctx.store.put_state_dict(&shard)?;
    Ok(TrainRecord {
        global_version: version,
        shard: Some(hash),
        steps,
        last_loss,
        ..Default::default()
    })
}

/// A number of this miner's own: its data order differs from every other miner's.
fn hotkey_seed(ctx: &Ctx) -> u64 {
    hash_u64(&blake2b_256(&ctx.hotkey.public()))
}

/// Where training batches come from: the training stream, or (the heldout-trainer adversary)
/// a fixed list of batches it hopes are the round's evaluation rows.
enum Source {
    Stream(Sampler),
    Fixed(Vec<TokenBatch>, usize),
}

impl Source {
    fn new(ctx: &Ctx, strategy: Strategy, group: u16, cycle: u64, cursor: u64) -> Self {
        let cfg = &ctx.cfg;
        if let Some(rows) = strategy.training_rows(cfg, &ctx.clock, group, cycle) {
            return Source::Fixed(rebatch(&rows, cfg.train.batch_rows), 0);
        }
        let domain = &cfg.domains[group as usize];
        // The data order is the miner's own: honest miners of one group differ.
        let seed = mix(&[cfg.seed, hotkey_seed(ctx)]);
        let s = Sampler::new(
            domain.clone(),
            seed,
            Split::Train,
            cfg.pol.heldout_every,
            cursor,
        );
        Source::Stream(s)
    }
}

/// The rows of `batches` regrouped into batches of `rows` rows (the last may be smaller): the
/// heldout-trainer steps with the same batch size as an honest miner.
fn rebatch(batches: &[TokenBatch], rows: usize) -> Vec<TokenBatch> {
    let Some(first) = batches.first() else {
        return vec![];
    };
    let width = first.seq_len + 1;
    let all: Vec<u32> = batches.iter().flat_map(|b| b.tokens.clone()).collect();
    all.chunks(rows.max(1) * width)
        .map(|c| TokenBatch {
            rows: c.len() / width,
            seq_len: first.seq_len,
            tokens: c.to_vec(),
        })
        .collect()
}

impl BatchSource for Source {
    fn next_batches(&mut self, n: usize, rows: usize, seq_len: usize) -> Vec<TokenBatch> {
        match self {
            Source::Stream(s) => s.next_batches(n, rows, seq_len),
            Source::Fixed(b, i) => (0..n)
                .map(|_| {
                    *i += 1;
                    b[(*i - 1) % b.len()].clone()
                })
                .collect(),
        }
    }

    fn cursor(&self) -> u64 {
        match self {
            Source::Stream(s) => s.cursor,
            Source::Fixed(_, i) => *i as u64,
        }
    }

    fn peek(&self, rows: usize, seq_len: usize) -> TokenBatch {
        match self {
            Source::Stream(s) => s.peek(rows, seq_len),
            Source::Fixed(b, i) => b[*i % b.len()].clone(),
        }
    }
}

/// Trains the group until the step budget or the stop flag; checkpoints as configured.
fn train_steps(
    ctx: &Ctx,
    strategy: Strategy,
    group: u16,
    cycle: u64,
    version: u64,
    global: &StateDict,
    stop: &AtomicBool,
) -> Result<(StateDict, u64, Option<f32>), ActorProcessingErr> {
    let cfg = &ctx.cfg;
    // Each cycle continues further into the training stream, so data is not repeated.
    let base = cycle * (cfg.max_steps_per_cycle * cfg.train.batch_rows * 8) as u64;
    let opts = RunOptions {
        model: &cfg.model,
        train: &cfg.train,
        global,
        group,
        device: &ctx.device,
        budget: cfg.max_steps_per_cycle as u64,
        checkpoint_every: cfg.checkpoint_every_steps as u64,
        store: &ctx.store,
        table: &TRAINER_CHECKPOINTS,
        key: cycle,
        start: version,
    };
    let mut run = TrainRun::start_or_resume(opts, |cursor| {
        Source::new(ctx, strategy, group, cycle, cursor.unwrap_or(base))
    })
    .map_err(|e| e.to_string())?;
    if let Some(step) = run.resumed_from {
        tracing::info!(daemon = %ctx.daemon, cycle, step, "resuming training from checkpoint");
    }
    let loss_g = ctx.metrics.gauge("connito_trainer_loss", &[]);
    let tokens = ctx.metrics.counter("connito_trainer_tokens_total", &[]);
    let ok = ctx
        .metrics
        .counter("connito_trainer_steps_total", &[("status", "ok")]);
    let skipped = ctx
        .metrics
        .counter("connito_trainer_steps_total", &[("status", "skipped")]);
    let grad_norm = ctx.metrics.gauge("connito_trainer_grad_norm", &[]);
    let aux_g = ctx.metrics.gauge("connito_trainer_aux_loss", &[]);
    let started = std::time::Instant::now();
    let mut trained_tokens = 0usize;
    let lr = ctx.metrics.gauge("connito_trainer_learning_rate", &[]);
    lr.set(run.trainer.lr());
    while !run.done() && !stop.load(Ordering::Relaxed) {
        let s = run.step().map_err(|e| e.to_string())?.stats;
        if s.skipped {
            skipped.increment(1);
            continue;
        }
        let n = run.steps();
        ok.increment(1);
        tokens.increment(s.tokens as u64);
        loss_g.set(s.loss as f64);
        grad_norm.set(s.grad_norm as f64);
        aux_g.set(s.aux_loss as f64);
        lr.set(run.trainer.lr());
        trained_tokens += s.tokens;
        if n % 50 == 1 {
            report_expert_load(ctx, cfg, &run.expert_load());
        }
        if n % 50 == 0 {
            let tokens_per_s = trained_tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
            tracing::info!(
                daemon = %ctx.daemon,
                cycle,
                step = n,
                of = cfg.max_steps_per_cycle,
                loss = s.loss,
                tokens_per_s = tokens_per_s.round(),
                lr = run.trainer.lr(),
                "training"
            );
        }
    }
    let (n, last) = (run.steps(), run.last_loss);
    tracing::info!(daemon = %ctx.daemon, cycle, steps = n, loss = ?last, "training done");
    Ok((run.trainer.shard(), n, last))
}

/// The expert-load gauges, labelled with the model's layer and expert ids.
fn report_expert_load(ctx: &Ctx, cfg: &connito::config::LocalnetConfig, load: &[Vec<f64>]) {
    for (l, layer) in cfg.model.moe_layers().zip(load) {
        for (e, f) in layer.iter().enumerate() {
            let (l, e) = (l.to_string(), e.to_string());
            ctx.metrics
                .gauge(
                    "connito_trainer_expert_load",
                    &[("layer", &l), ("expert", &e)],
                )
                .set(*f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebatch_keeps_every_row_in_order() {
        let b = |start: u32| TokenBatch {
            rows: 2,
            seq_len: 2,
            tokens: (start..start + 6).collect(),
        };
        let out = rebatch(&[b(0), b(6), b(12)], 4);
        assert_eq!(out.iter().map(|b| b.rows).collect::<Vec<_>>(), [4, 2]);
        let all: Vec<u32> = out.iter().flat_map(|b| b.tokens.clone()).collect();
        assert_eq!(all, (0..18).collect::<Vec<_>>());
        assert!(rebatch(&[], 4).is_empty());
    }
}
