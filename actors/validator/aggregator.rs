//! Aggregator: once a round is scored and Merge has begun, merge the best accepted shard of each
//! group into the global model (outer Nesterov step, momentum kept in the store), measure the new
//! model's held-out loss per group, store it as the next version, and commit its hash
//! (ValidatorCommit1) and location (ValidatorCommit2) so miners fetch it at Distribute.

use std::collections::BTreeMap;

use connito::merge::outer_step;
use connito::model::to_params_as;
use connito::phase::Phase;
use connito::pol::{batch_losses, eval_loss, mean_loss, with_candidate};
use connito::submission::{Commitment, Verdict};
use connito::tensors::StateDict;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::node::context::{Ctx, GLOBAL_GROUP, Tick, latest_model};
use crate::validator::evaluator::round_scores;
use connito::pol::round_batches;
use connito::store::records::{ModelRecord, RoundRecord, SubmissionRecord};
use connito::store::tables::{MODEL_COMMITS, MODELS, ROUNDS, SUBMISSIONS};

/// Seed of the fixed held-out benchmark reported per group (distinct from every round seed in
/// practice; it only measures, it never scores).
pub const BENCHMARK_SEED: u64 = 0x6265_6e63_686d_6172;

pub struct Aggregator;

pub enum AggregatorMsg {
    Tick(Tick),
    Done,
}

pub struct AggregatorState {
    ctx: Ctx,
    busy: bool,
}

impl Actor for Aggregator {
    type Msg = AggregatorMsg;
    type State = AggregatorState;
    type Arguments = Ctx;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Ctx,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Every (re)start subscribes anew: a restarted actor never misses its ticks.
        ctx.ticks
            .subscribe(myself, |t| Some(AggregatorMsg::Tick(t)));
        if let Some(m) = latest_model(&ctx.store)? {
            ctx.metrics
                .gauge("connito_aggregator_global_version", &[])
                .set(m.version as f64);
        }
        Ok(AggregatorState { ctx, busy: false })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: AggregatorMsg,
        st: &mut AggregatorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AggregatorMsg::Done => st.busy = false,
            AggregatorMsg::Tick(t) => {
                let cycle = t.pos.cycle;
                let round: RoundRecord = st.ctx.store.get(&ROUNDS, &cycle)?.unwrap_or_default();
                // A late round (scored after its own cycle) is credited but never merged: miners
                // of this cycle already train from the current global model.
                if t.pos.phase >= Phase::Merge
                    && round.scored
                    && !round.late
                    && !round.merged
                    && !st.busy
                {
                    st.busy = true;
                    crate::node::context::spawn_job(
                        &st.ctx,
                        "merge",
                        cycle,
                        move |c| {
                            merge_round(c, cycle)?;
                            collect_garbage(c, cycle)
                        },
                        move || {
                            let _ = myself.cast(AggregatorMsg::Done);
                        },
                    );
                }
                if matches!(
                    t.pos.phase,
                    Phase::ValidatorCommit1 | Phase::ValidatorCommit2
                ) && round.merged
                {
                    commit_model(&st.ctx, cycle, t.pos.phase).await?;
                }
            }
        }
        Ok(())
    }
}

/// Held-out loss of `model` per group on the fixed benchmark batches: each group's partial
/// model on its own domain, the model its miners train and its candidates are scored on.
pub fn heldout_losses(ctx: &Ctx, model: &StateDict) -> BTreeMap<u16, f64> {
    let cfg = &ctx.cfg;
    cfg.domains
        .iter()
        .enumerate()
        .map(|(g, d)| {
            let b = round_batches(cfg, d, BENCHMARK_SEED);
            let routing = cfg.model.routing(Some(g as u16));
            (
                g as u16,
                eval_loss(&cfg.model, model, &b, &routing, &ctx.device),
            )
        })
        .collect()
}

fn merge_round(ctx: &Ctx, cycle: u64) -> Result<(), ActorProcessingErr> {
    let latest = latest_model(&ctx.store)?.ok_or("no global model stored")?;
    let global = ctx.store.get_state_dict(&latest.hash)?;
    let scores = round_scores(ctx, cycle)?;
    let subs: BTreeMap<u16, SubmissionRecord> = ctx
        .store
        .scan(&SUBMISSIONS, &[cycle])?
        .into_iter()
        .map(|(_, s)| (s.uid, s))
        .collect();
    // Best positive score per group; earliest commit wins a tie.
    let mut best: BTreeMap<u16, (f64, u64, u16)> = BTreeMap::new();
    for s in scores.values().filter(|s| s.score > 0.0) {
        let Some(sub) = subs.get(&s.uid).filter(|x| x.verdict == Verdict::Accepted) else {
            continue;
        };
        let cand = (s.score, sub.commit_block, s.uid);
        let better = |old: &(f64, u64, u16)| cand.0 > old.0 || (cand.0 == old.0 && cand.1 < old.1);
        if best.get(&s.group).is_none_or(better) {
            best.insert(s.group, cand);
        }
    }
    let mut round: RoundRecord = ctx.store.get(&ROUNDS, &cycle)?.unwrap_or_default();
    let mut shards = vec![];
    let mut uids = vec![];
    let mut params = to_params_as(&global, &ctx.device, ctx.cfg.model.weight_dtype);
    let bases = whole_baselines(ctx, &round, &params);
    for (g, (_, _, uid)) in &best {
        let blob = subs[uid].blob.ok_or("accepted submission without blob")?;
        let shard = ctx.store.get_state_dict(&blob)?;
        if let Some(why) = collateral(ctx, &bases, &mut params, &global, *g, &shard) {
            tracing::warn!(daemon = %ctx.daemon, cycle, uid, "not merged: {why}");
            round.not_merged.insert(*uid, why);
            continue;
        }
        shards.push(shard);
        uids.push(*uid);
    }
    if !shards.is_empty() {
        let momentum = match latest.momentum {
            Some(h) => ctx.store.get_state_dict(&h)?,
            None => StateDict::new(),
        };
        let merged = outer_step(&ctx.cfg.merge, &global, &momentum, &shards)?;
        let heldout = heldout_losses(ctx, &merged.model);
        let hash = ctx.store.put_state_dict(&merged.model)?;
        let momentum = if merged.momentum.is_empty() {
            None
        } else {
            Some(ctx.store.put_state_dict(&merged.momentum)?)
        };
        let rec = ModelRecord {
            version: latest.version + 1,
            hash,
            cycle: Some(cycle),
            heldout: heldout.clone(),
            momentum,
            merged_uids: uids.clone(),
        };
        ctx.store.put(&MODELS, &rec.version, &rec)?;
        for (g, l) in &heldout {
            ctx.metrics
                .gauge(
                    "connito_aggregator_heldout_loss",
                    &[("group", &g.to_string())],
                )
                .set(*l);
        }
        ctx.metrics
            .gauge("connito_aggregator_global_version", &[])
            .set(rec.version as f64);
        tracing::info!(daemon = %ctx.daemon, cycle, version = rec.version, ?uids, ?heldout, "merged");
    } else {
        tracing::info!(daemon = %ctx.daemon, cycle, "nothing to merge; global model unchanged");
    }
    round.merged = true;
    ctx.store.put(&ROUNDS, &cycle, &round)?;
    ctx.store.flush()?;
    Ok(())
}

/// Removes the shard blobs of rounds older than `rewards.window` cycles before `cycle` (their
/// records stay, without a blob) and the blobs of global models (and momenta) more than
/// `rewards.window` versions old, so a validator's disk does not grow for ever.
fn collect_garbage(ctx: &Ctx, cycle: u64) -> Result<(), ActorProcessingErr> {
    let window = ctx.cfg.rewards.window as u64;
    let Some(before) = cycle.checked_sub(window) else {
        return Ok(());
    };
    // Blobs are content-addressed: one still referenced by a kept record stays.
    let kept_subs = ctx.store.range(&SUBMISSIONS, &[before], &[u64::MAX])?;
    let latest = latest_model(&ctx.store)?.ok_or("no global model stored")?;
    let keep_from = latest.version.saturating_sub(window);
    let kept_models = ctx.store.range(&MODELS, &[keep_from], &[u64::MAX])?;
    let referenced: std::collections::BTreeSet<connito::tensors::Hash32> = kept_subs
        .iter()
        .filter_map(|(_, s)| s.blob)
        .chain(
            kept_models
                .iter()
                .flat_map(|(_, m)| std::iter::once(m.hash).chain(m.momentum)),
        )
        .collect();
    let mut freed = 0;
    for (k, mut sub) in ctx.store.range(&SUBMISSIONS, &[0], &[before])? {
        if let Some(blob) = sub.blob.take() {
            if !referenced.contains(&blob) {
                ctx.store.remove_blob(&blob)?;
            }
            ctx.store.put(&SUBMISSIONS, &k, &sub)?;
            freed += 1;
        }
    }
    for (_, m) in ctx.store.range(&MODELS, &[0], &[keep_from])? {
        for h in std::iter::once(m.hash).chain(m.momentum) {
            if !referenced.contains(&h) && ctx.store.remove_blob(&h).is_ok() {
                freed += 1;
            }
        }
    }
    if freed > 0 {
        tracing::info!(daemon = %ctx.daemon, cycle, freed, "collected old blobs");
    }
    Ok(())
}

/// Each scored group's round batches and the whole model's loss on them, before any merge:
/// what [`collateral`] compares a candidate against. Empty for an unscored round (no batches).
/// Both losses are of the whole model (every expert routable): in a group's own partial model
/// another group's experts never run, so only the whole model can show the harm.
type WholeBaselines = BTreeMap<u16, (Vec<connito::data::TokenBatch>, f64)>;

fn whole_baselines(
    ctx: &Ctx,
    round: &RoundRecord,
    params: &connito::model::Params,
) -> WholeBaselines {
    let Some(seed) = round.seed else {
        return BTreeMap::new();
    };
    let cfg = &ctx.cfg;
    cfg.domains
        .iter()
        .enumerate()
        .map(|(h, d)| (h as u16, d))
        .filter(|(h, _)| round.baseline.contains_key(h))
        .map(|(h, d)| {
            let b = round_batches(cfg, d, seed);
            let base = whole_loss(ctx, params, &b);
            (h, (b, base))
        })
        .collect()
}

fn whole_loss(ctx: &Ctx, p: &connito::model::Params, b: &[connito::data::TokenBatch]) -> f64 {
    let m = &ctx.cfg.model;
    mean_loss(&batch_losses(m, p, b, &m.routing(None), &ctx.device))
}

/// Why merging `shard` (of `group`) would hurt another group: the whole model's loss on that
/// group's round batches rises by more than `pol.merge_tolerance` over `bases`.
fn collateral(
    ctx: &Ctx,
    bases: &WholeBaselines,
    params: &mut connito::model::Params,
    global: &StateDict,
    group: u16,
    shard: &StateDict,
) -> Option<String> {
    let tolerance = ctx.cfg.pol.merge_tolerance;
    with_candidate(params, global, shard, &ctx.device, |cand| {
        bases
            .iter()
            .filter(|(h, _)| **h != group)
            .find_map(|(h, (b, base))| {
                let after = whole_loss(ctx, cand, b);
                // A non-finite loss is a refusal too.
                let rise = after - base;
                (rise.is_nan() || rise > tolerance).then(|| {
                    format!(
                        "raises group {h}'s held-out loss (whole model) from {base:.4} to \
                         {after:.4} (tolerance {tolerance})"
                    )
                })
            })
    })
}

async fn commit_model(ctx: &Ctx, cycle: u64, phase: Phase) -> Result<(), ActorProcessingErr> {
    let step = if phase == Phase::ValidatorCommit1 {
        1
    } else {
        2
    };
    let k = (cycle, step);
    if ctx.store.get(&MODEL_COMMITS, &k)?.is_some() {
        return Ok(());
    }
    let latest = latest_model(&ctx.store)?.ok_or("no global model stored")?;
    let c = if step == 1 {
        Commitment::Hash {
            group: GLOBAL_GROUP,
            hash: latest.hash,
            version: latest.version,
        }
    } else {
        Commitment::Location {
            group: GLOBAL_GROUP,
            hash: latest.hash,
            version: latest.version,
            url: format!(
                "{}/m/{}",
                ctx.public_url.trim_end_matches('/'),
                latest.version
            ),
        }
    };
    let ok = match ctx
        .chain
        .set_commitment(&ctx.hotkey, ctx.netuid, c.to_bytes()?)
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(daemon = %ctx.daemon, cycle, "model commitment step {step}: {e}");
            if e.kind() != connito::chain::ErrorKind::Final {
                return Ok(()); // not settled: tried again next block
            }
            false
        }
    };
    ctx.store.put(&MODEL_COMMITS, &k, &ok)?;
    Ok(())
}
