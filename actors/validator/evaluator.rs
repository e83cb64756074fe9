//! Evaluator: Proof-of-Loss of the accepted submissions of a round, on held-out batches whose
//! seed comes from the hash of the first Submission block (a finalized block after the commit
//! phases closed). Before a shard is scored it is screened (`connito::pol::screen`): an exact
//! copy of an earlier commit is `copy`, a near-copy of an earlier commit of the round or of a
//! credited submission of the last `rewards.window` rounds is `near_duplicate`, and at most
//! `pol.max_candidates` are evaluated (earliest commits first). The score is the paired margin
//! test of `connito::pol::judge`, stored with its parts. The global model is on the device once;
//! a candidate only swaps its group's expert tensors in. The oldest unscored round is scored
//! first, late if need be. The evaluation runs on a blocking thread; the actor stays responsive.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use connito::data::TokenBatch;
use connito::model::{Params, to_params_as};
use connito::phase::Phase;
use connito::pol::screen::{compare, delta_of};
use connito::pol::{batch_losses, judge, round_batches, round_seed, with_candidate};
use connito::submission::Verdict;
use connito::tensors::{Hash32, StateDict};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::node::context::{Ctx, Tick, latest_model};
use connito::store::records::{
    ModelRecord, RoundRecord, ScoreParts, ScoreRecord, SubmissionRecord,
};
use connito::store::tables::{ROUNDS, SCORES, SUBMISSIONS};

pub struct Evaluator;

pub enum EvaluatorMsg {
    Tick(Tick),
    Done,
}

pub struct EvaluatorState {
    ctx: Ctx,
    busy: bool,
}

impl Actor for Evaluator {
    type Msg = EvaluatorMsg;
    type State = EvaluatorState;
    type Arguments = Ctx;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Ctx,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Every (re)start subscribes anew: a restarted actor never misses its ticks.
        ctx.ticks.subscribe(myself, |t| Some(EvaluatorMsg::Tick(t)));
        Ok(EvaluatorState { ctx, busy: false })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: EvaluatorMsg,
        st: &mut EvaluatorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EvaluatorMsg::Done => st.busy = false,
            EvaluatorMsg::Tick(t) if !st.busy => {
                let store = &st.ctx.store;
                let round_of = |c: u64| -> RoundRecord {
                    store.get(&ROUNDS, &c).ok().flatten().unwrap_or_default()
                };
                // Due: intake finished, not yet scored. A round whose intake has not finished
                // waits for it.
                let Some(cycle) = st.ctx.clock.round_due(t.pos, |c| round_of(c).scored) else {
                    return Ok(());
                };
                if !round_of(cycle).intake_done {
                    return Ok(());
                }
                let seed_block = st.ctx.clock.phase_start(cycle, Phase::Submission);
                // A finalized block's hash (ticks are finalized blocks); unreachable chain: retry.
                let hash = match st.ctx.chain.block_hash(seed_block).await {
                    Ok(h) => h,
                    Err(e) if e.is_transient() => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let seed = Seed {
                    value: round_seed(&hash, cycle),
                    block: seed_block,
                    late: cycle < t.pos.cycle,
                };
                st.busy = true;
                crate::node::context::spawn_job(
                    &st.ctx,
                    "evaluation",
                    cycle,
                    move |c| evaluate_round(c, cycle, seed),
                    move || {
                        let _ = myself.cast(EvaluatorMsg::Done);
                    },
                );
            }
            EvaluatorMsg::Tick(_) => {}
        }
        Ok(())
    }
}

/// A round's evaluation seed and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    pub value: u64,
    pub block: u64,
    pub late: bool,
}

/// The global model a round is scored against, on the device once.
struct Global {
    rec: ModelRecord,
    sd: StateDict,
    params: Params,
}

fn evaluate_round(ctx: &Ctx, cycle: u64, seed: Seed) -> Result<(), ActorProcessingErr> {
    let rec = latest_model(&ctx.store)?.ok_or("no global model stored")?;
    let sd = ctx.store.get_state_dict(&rec.hash)?;
    let params = to_params_as(&sd, &ctx.device, ctx.cfg.model.weight_dtype);
    let mut global = Global { rec, sd, params };
    let mut subs: Vec<SubmissionRecord> = ctx
        .store
        .scan(&SUBMISSIONS, &[cycle])?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    subs.sort_by_key(|s| (s.commit_block, s.uid));
    let mut round: RoundRecord = ctx.store.get(&ROUNDS, &cycle)?.unwrap_or_default();
    round.seed = Some(seed.value);
    round.seed_block = Some(seed.block);
    round.late = seed.late;
    round.global_version = global.rec.version;
    let capacity = over_capacity(&subs, ctx.cfg.pol.max_candidates);
    for (g, domain) in ctx.cfg.domains.iter().enumerate() {
        let g = g as u16;
        let batches = round_batches(&ctx.cfg, domain, seed.value);
        let baseline = timed(ctx, || {
            let routing = ctx.cfg.model.routing(Some(g));
            batch_losses(
                &ctx.cfg.model,
                &global.params,
                &batches,
                &routing,
                &ctx.device,
            )
        });
        round.baseline.insert(g, connito::pol::mean_loss(&baseline));
        let history = credited_deltas(ctx, cycle, g, &global.sd)?;
        let mut earlier: Vec<(u16, Vec<f32>)> = vec![];
        let mut seen = BTreeSet::new();
        let mut best = 0f64;
        for sub in subs
            .iter_mut()
            .filter(|s| s.group == g && s.verdict == Verdict::Accepted)
        {
            let mut judged = Candidate {
                ctx,
                cycle,
                seed,
                global: &mut global,
                batches: &batches,
                baseline: &baseline,
            };
            let outcome = judged.run(sub, &capacity, &mut seen, &mut earlier, &history)?;
            if let Some(s) = outcome {
                best = best.max(s);
            }
        }
        ctx.metrics
            .gauge("connito_pol_best_score", &[("group", &g.to_string())])
            .set(best);
    }
    round.scored = true;
    ctx.store.put(&ROUNDS, &cycle, &round)?;
    ctx.store.flush()?;
    Ok(())
}

/// The accepted submissions beyond the first `max` by commit block (they are not evaluated).
fn over_capacity(subs: &[SubmissionRecord], max: usize) -> BTreeSet<u16> {
    subs.iter()
        .filter(|s| s.verdict == Verdict::Accepted)
        .skip(max)
        .map(|s| s.uid)
        .collect()
}

fn timed<T>(ctx: &Ctx, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    ctx.metrics
        .histogram("connito_pol_evaluation_seconds", &[])
        .record(t.elapsed().as_secs_f64());
    out
}

/// A credited submission of an earlier round, `((cycle, uid), expert delta)`.
type Credited = ((u64, u16), Vec<f32>);

/// Expert deltas (against the current global model) of the submissions of `group` credited
/// (a positive score) in the `rewards.window` rounds before `cycle`, oldest first.
fn credited_deltas(
    ctx: &Ctx,
    cycle: u64,
    group: u16,
    global: &StateDict,
) -> Result<Vec<Credited>, ActorProcessingErr> {
    let window = ctx.cfg.rewards.window as u64;
    let mut out = vec![];
    for c in cycle.saturating_sub(window)..cycle {
        let subs: BTreeMap<u16, SubmissionRecord> = ctx
            .store
            .scan(&SUBMISSIONS, &[c])?
            .into_iter()
            .map(|(_, s)| (s.uid, s))
            .collect();
        for s in round_scores(ctx, c)?.values() {
            let Some(blob) = subs
                .get(&s.uid)
                .filter(|x| x.group == group && s.score > 0.0)
                .and_then(|x| x.blob)
            else {
                continue;
            };
            // A blob already collected is no longer comparable; skip it.
            if let Ok(shard) = ctx.store.get_state_dict(&blob) {
                out.push(((c, s.uid), delta_of(&shard, global)));
            }
        }
    }
    Ok(out)
}

/// One accepted submission of a round being screened and scored.
struct Candidate<'a> {
    ctx: &'a Ctx,
    cycle: u64,
    seed: Seed,
    global: &'a mut Global,
    batches: &'a [TokenBatch],
    baseline: &'a [f64],
}

impl Candidate<'_> {
    /// Screens and scores `sub`; returns its score (`None` if it was refused). A verdict other
    /// than accepted is stored on the submission.
    fn run(
        &mut self,
        sub: &mut SubmissionRecord,
        capacity: &BTreeSet<u16>,
        seen: &mut BTreeSet<Hash32>,
        earlier: &mut Vec<(u16, Vec<f32>)>,
        history: &[Credited],
    ) -> Result<Option<f64>, ActorProcessingErr> {
        let ctx = self.ctx;
        let k = (self.cycle, sub.uid);
        let content = sub
            .content_hash
            .ok_or("accepted submission without content hash")?;
        let blob = sub.blob.ok_or("accepted submission without blob")?;
        if capacity.contains(&sub.uid) {
            return self.refuse(
                sub,
                Verdict::OverCapacity,
                format!(
                    "{} earlier commits were evaluated this round (pol.max_candidates)",
                    ctx.cfg.pol.max_candidates
                ),
            );
        }
        if !seen.insert(content) {
            return self.refuse(
                sub,
                Verdict::Copy,
                "same content as an earlier commit this round".into(),
            );
        }
        let shard = ctx.store.get_state_dict(&blob)?;
        let delta = delta_of(&shard, &self.global.sd);
        let screen = ctx.cfg.pol.screen();
        let this_round = earlier
            .iter()
            .map(|(u, d)| (format!("uid {u} this round"), d.as_slice()));
        let credited = history
            .iter()
            .map(|((c, u), d)| (format!("uid {u}, credited in cycle {c}"), d.as_slice()));
        let compared = compare(&screen, &delta, this_round.chain(credited));
        earlier.push((sub.uid, delta));
        if let Some((whom, s)) = compared.duplicate {
            return self.refuse(
                sub,
                Verdict::NearDuplicate,
                format!(
                    "expert delta nearly equals {whom}'s (cosine {:.6}, relative L2 {:.2e})",
                    s.cosine, s.rel_l2
                ),
            );
        }
        if let Some(prev) = ctx.store.get(&SCORES, &k)? {
            return Ok(Some(prev.score)); // scored before a restart: never twice
        }
        self.score(sub, &shard, blob, compared.max_cosine).map(Some)
    }

    fn score(
        &mut self,
        sub: &SubmissionRecord,
        shard: &StateDict,
        blob: Hash32,
        closest_cosine: Option<f64>,
    ) -> Result<f64, ActorProcessingErr> {
        let (ctx, cfg) = (self.ctx, &self.ctx.cfg);
        let (batches, global) = (self.batches, &mut *self.global);
        let losses = timed(ctx, || {
            let routing = cfg.model.routing(Some(sub.group));
            with_candidate(&mut global.params, &global.sd, shard, &ctx.device, |p| {
                batch_losses(&cfg.model, p, batches, &routing, &ctx.device)
            })
        });
        let s = judge(self.baseline, &losses, &cfg.pol.margin());
        let delta_ratio =
            connito::pol::screen::check_bounds(shard, &self.global.sd, &cfg.pol.screen())
                .unwrap_or(f64::NAN);
        tracing::info!(daemon = %ctx.daemon, cycle = self.cycle, uid = sub.uid, group = sub.group,
            baseline = s.baseline, candidate = s.candidate, std_err = s.std_err,
            significant = s.significant, score = s.score, closest_cosine = ?closest_cosine, "scored");
        let parts = ScoreParts {
            std_err: s.std_err,
            significant: s.significant,
            batches: self.batches.len(),
            tokens: self.batches.iter().map(|b| b.rows * b.seq_len).sum(),
            seed: self.seed.value,
            seed_block: self.seed.block,
            backend: format!("{:?}", ctx.device),
            global_version: self.global.rec.version,
            global_hash: self.global.rec.hash,
            shard_hash: blob,
            delta_ratio,
            closest_cosine,
            baseline_batches: self.baseline.to_vec(),
            candidate_batches: losses,
        };
        let rec = ScoreRecord {
            uid: sub.uid,
            group: sub.group,
            baseline: s.baseline,
            candidate: s.candidate,
            delta: s.delta,
            score: s.score,
            parts: Some(parts),
        };
        ctx.store.put(&SCORES, &(self.cycle, sub.uid), &rec)?;
        Ok(s.score)
    }

    fn refuse(
        &self,
        sub: &mut SubmissionRecord,
        verdict: Verdict,
        detail: String,
    ) -> Result<Option<f64>, ActorProcessingErr> {
        tracing::info!(daemon = %self.ctx.daemon, cycle = self.cycle, uid = sub.uid, verdict = verdict.label(), "{detail}");
        sub.verdict = verdict;
        sub.detail = detail;
        self.ctx
            .store
            .put(&SUBMISSIONS, &(self.cycle, sub.uid), &*sub)?;
        self.ctx
            .metrics
            .counter(
                "connito_intake_submissions_total",
                &[("verdict", verdict.label())],
            )
            .increment(1);
        Ok(None)
    }
}

/// Scores of a round by uid (for weights and reports).
pub fn round_scores(
    ctx: &Ctx,
    cycle: u64,
) -> Result<BTreeMap<u16, ScoreRecord>, ActorProcessingErr> {
    Ok(ctx
        .store
        .scan(&SCORES, &[cycle])?
        .into_iter()
        .map(|(_, s)| (s.uid, s))
        .collect())
}
