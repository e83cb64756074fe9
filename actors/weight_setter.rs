//! WeightSetter: after a round is scored, turn the rolling points of the last rounds into a
//! weight vector and set it on chain, at most once per cycle. The intent (weights, block) is
//! recorded durably before the extrinsic is sent; after a crash, a pending record whose weights
//! already landed (the chain's `LastUpdate` moved past it) is marked done instead of resent.

use std::collections::BTreeMap;

use connito::consensus::max_upscale_u16;
use connito::phase::Phase;
use connito::pol::{Scored, round_points, weights_from_history};
use connito::store::key;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::context::{Ctx, RoundRecord, SubmissionRecord, Tick, WeightRecord};
use crate::evaluator::round_scores;

pub struct WeightSetter;

pub enum WeightSetterMsg {
    Tick(Tick),
    Crash,
}

impl Actor for WeightSetter {
    type Msg = WeightSetterMsg;
    type State = Ctx;
    type Arguments = Ctx;

    async fn pre_start(
        &self,
        _m: ActorRef<Self::Msg>,
        ctx: Ctx,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ctx)
    }

    async fn handle(
        &self,
        _m: ActorRef<Self::Msg>,
        msg: WeightSetterMsg,
        ctx: &mut Ctx,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WeightSetterMsg::Crash => panic!("weight_setter: crash requested"),
            WeightSetterMsg::Tick(t) => {
                let cycle = t.pos.cycle;
                if t.pos.phase < Phase::Merge {
                    return Ok(());
                }
                let round: RoundRecord =
                    ctx.store.get("rounds", &key(&[cycle]))?.unwrap_or_default();
                if !round.scored {
                    return Ok(());
                }
                let k = key(&[cycle]);
                match ctx.store.get::<WeightRecord>("weights", &k)? {
                    None => {
                        let rec = compute(ctx, cycle, t.pos.block)?;
                        if ctx.store.insert_new("weights", &k, &rec)? {
                            submit(ctx, cycle, rec).await?;
                        }
                    }
                    Some(rec) if rec.status == "pending" => {
                        // Crashed between record and answer: did it land?
                        let mg = ctx.chain.metagraph(ctx.netuid).await?;
                        let me = ctx.hotkey.public();
                        let landed = mg
                            .iter()
                            .any(|n| n.hotkey == me && n.last_update >= rec.recorded_block);
                        if landed {
                            let done = WeightRecord {
                                status: "ok".into(),
                                ..rec
                            };
                            ctx.store.put_durable("weights", &k, &done)?;
                        } else {
                            submit(ctx, cycle, rec).await?;
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }
}

fn points_of(ctx: &Ctx, cycle: u64) -> Result<BTreeMap<u16, f64>, ActorProcessingErr> {
    let subs: BTreeMap<u16, SubmissionRecord> = ctx
        .store
        .scan::<SubmissionRecord>("submissions", &key(&[cycle]))?
        .into_iter()
        .map(|(_, s)| (s.uid, s))
        .collect();
    let scored: Vec<Scored> = round_scores(ctx, cycle)?
        .values()
        .filter_map(|s| {
            let sub = subs.get(&s.uid).filter(|x| x.verdict == "accepted")?;
            Some(Scored {
                uid: s.uid,
                score: s.score,
                commit_block: sub.commit_block,
            })
        })
        .collect();
    Ok(round_points(&ctx.cfg.rewards, &scored))
}

fn compute(ctx: &Ctx, cycle: u64, block: u64) -> Result<WeightRecord, ActorProcessingErr> {
    let window = ctx.cfg.rewards.window as u64;
    let history = (cycle.saturating_sub(window - 1)..=cycle)
        .map(|c| points_of(ctx, c))
        .collect::<Result<Vec<_>, _>>()?;
    let weights = weights_from_history(&ctx.cfg.rewards, &history);
    let uids: Vec<u16> = weights.keys().copied().collect();
    let floats: Vec<f64> = weights.values().copied().collect();
    let values = if floats.is_empty() {
        vec![]
    } else {
        max_upscale_u16(&floats)?
    };
    Ok(WeightRecord {
        weights,
        uids,
        values,
        status: "pending".into(),
        recorded_block: block,
    })
}

async fn submit(ctx: &Ctx, cycle: u64, rec: WeightRecord) -> Result<(), ActorProcessingErr> {
    let k = key(&[cycle]);
    if rec.uids.is_empty() {
        ctx.store.put_durable(
            "weights",
            &k,
            &WeightRecord {
                status: "skipped: no positive scores".into(),
                ..rec
            },
        )?;
        return Ok(());
    }
    let res = ctx
        .chain
        .set_weights(
            &ctx.hotkey,
            ctx.netuid,
            rec.uids.clone(),
            rec.values.clone(),
            0,
        )
        .await;
    let (status, label) = match &res {
        Ok(()) => ("ok".to_string(), "ok"),
        Err(e @ connito::chain::ChainError::Connection(_)) => (format!("error: {e}"), "error"),
        Err(e) => (format!("rejected: {e}"), "rejected"),
    };
    ctx.metrics
        .counter("connito_weights_set_total", &[("status", label)])
        .increment(1);
    tracing::info!(daemon = %ctx.daemon, cycle, uids = ?rec.uids, values = ?rec.values, %status, "weights");
    ctx.store
        .put_durable("weights", &k, &WeightRecord { status, ..rec })?;
    Ok(())
}
