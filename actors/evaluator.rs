//! Evaluator: Proof-of-Loss of every accepted submission of a round, on held-out batches whose
//! seed comes from the hash of the first Submission block (after the commit phases closed).
//! A submission whose content equals an earlier-committed one is a copy and scores nothing.
//! The evaluation runs on a blocking thread; the actor stays responsive.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use connito::data::eval_batches;
use connito::model::with_shard;
use connito::phase::Phase;
use connito::pol::{eval_loss, round_seed, score};
use connito::store::key;
use connito::submission::Verdict;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::context::{Ctx, RoundRecord, ScoreRecord, SubmissionRecord, Tick, latest_model};

pub struct Evaluator;

pub enum EvaluatorMsg {
    Tick(Tick),
    Done,
    Crash,
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
        _m: ActorRef<Self::Msg>,
        ctx: Ctx,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(EvaluatorState { ctx, busy: false })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: EvaluatorMsg,
        st: &mut EvaluatorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EvaluatorMsg::Crash => panic!("evaluator: crash requested"),
            EvaluatorMsg::Done => st.busy = false,
            EvaluatorMsg::Tick(t) => {
                let cycle = t.pos.cycle;
                if st.busy || t.pos.phase < Phase::Submission {
                    return Ok(());
                }
                let round: RoundRecord = st
                    .ctx
                    .store
                    .get("rounds", &key(&[cycle]))?
                    .unwrap_or_default();
                if !round.intake_done || round.scored {
                    return Ok(());
                }
                let seed_block = st.ctx.clock.phase_start(cycle, Phase::Submission);
                // A finalized block's hash (ticks are finalized blocks); unreachable chain: retry.
                let hash = match st.ctx.chain.block_hash(seed_block).await {
                    Ok(h) => h,
                    Err(e) if e.is_transient() => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let seed = round_seed(&hash, cycle);
                st.busy = true;
                crate::context::spawn_job(
                    &st.ctx,
                    "evaluation",
                    cycle,
                    move |c| evaluate_round(c, cycle, seed),
                    move || {
                        let _ = myself.cast(EvaluatorMsg::Done);
                    },
                );
            }
        }
        Ok(())
    }
}

fn evaluate_round(ctx: &Ctx, cycle: u64, seed: u64) -> Result<(), ActorProcessingErr> {
    let cfg = &ctx.cfg;
    let global_rec = latest_model(&ctx.store)?.ok_or("no global model stored")?;
    let global = ctx.store.get_state_dict(&global_rec.hash)?;
    let mut subs: Vec<SubmissionRecord> = ctx
        .store
        .scan::<SubmissionRecord>("submissions", &key(&[cycle]))?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    subs.sort_by_key(|s| (s.commit_block, s.uid));
    let mut round: RoundRecord = ctx.store.get("rounds", &key(&[cycle]))?.unwrap_or_default();
    round.seed = Some(seed);
    round.global_version = global_rec.version;
    let timed = |sd: &connito::tensors::StateDict, batches: &[connito::data::TokenBatch]| {
        let t = Instant::now();
        let l = eval_loss(&cfg.model, sd, batches, &ctx.device);
        ctx.metrics
            .histogram("connito_pol_evaluation_seconds", &[])
            .record(t.elapsed().as_secs_f64());
        l
    };
    for (g, domain) in cfg.domains.iter().enumerate() {
        let g = g as u16;
        let batches = eval_batches(
            domain,
            cfg.seed,
            seed,
            cfg.pol.heldout_every,
            cfg.pol.eval_batches,
            cfg.pol.batch_rows,
            cfg.model.seq_len,
        );
        let baseline = match round.baseline.get(&g) {
            Some(b) => *b,
            None => timed(&global, &batches),
        };
        round.baseline.insert(g, baseline);
        let mut seen = BTreeSet::new();
        let mut best = 0f64;
        for sub in subs
            .iter_mut()
            .filter(|s| s.group == g && s.verdict == Verdict::Accepted)
        {
            let k = key(&[cycle, sub.uid as u64]);
            let content = sub
                .content_hash
                .ok_or("accepted submission without content hash")?;
            if !seen.insert(content) {
                sub.verdict = Verdict::Copy;
                sub.detail = "same content as an earlier commit this round".into();
                ctx.store.put("submissions", &k, &*sub)?;
                ctx.metrics
                    .counter("connito_intake_submissions_total", &[("verdict", "copy")])
                    .increment(1);
                continue;
            }
            if let Some(prev) = ctx.store.get::<ScoreRecord>("scores", &k)? {
                best = best.max(prev.score);
                continue; // scored before a restart: never twice
            }
            let shard = ctx
                .store
                .get_state_dict(&sub.blob.ok_or("accepted submission without blob")?)?;
            let candidate = timed(&with_shard(&global, &shard), &batches);
            let s = score(baseline, candidate, cfg.pol.exponent);
            best = best.max(s.score);
            tracing::info!(daemon = %ctx.daemon, cycle, uid = sub.uid, group = g, baseline, candidate, score = s.score, "scored");
            ctx.store.put(
                "scores",
                &k,
                &ScoreRecord {
                    uid: sub.uid,
                    group: g,
                    baseline,
                    candidate,
                    delta: s.delta,
                    score: s.score,
                },
            )?;
        }
        ctx.metrics
            .gauge("connito_pol_best_score", &[("group", &g.to_string())])
            .set(best);
    }
    round.scored = true;
    ctx.store.put("rounds", &key(&[cycle]), &round)?;
    ctx.store.flush()?;
    Ok(())
}

/// Scores of a round by uid (for weights and reports).
pub fn round_scores(
    ctx: &Ctx,
    cycle: u64,
) -> Result<BTreeMap<u16, ScoreRecord>, ActorProcessingErr> {
    Ok(ctx
        .store
        .scan::<ScoreRecord>("scores", &key(&[cycle]))?
        .into_iter()
        .map(|(_, s)| (s.uid, s))
        .collect())
}
