//! WeightSetter: after a round is scored, turn the rolling points of the last rounds into a
//! weight vector and put it on chain — by commit-reveal when the subnet has it on (SN102 does),
//! else by `set_weights` — at most once per cycle.
//!
//! Write-ahead, like a slashing-protection database: the intent (weights, salt, commit hash) is
//! recorded durably with one atomic insert-if-absent before any extrinsic is sent, so a cycle can
//! never be committed twice. What happens next is decided by the pure state machine in
//! `connito::chain::weight_state`: a submission whose answer was lost is resolved against the
//! chain (`WeightCommits`, `LastUpdate`) before anything is sent again, and a chain outage only
//! means "try again next block".

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use connito::chain::weight_state::{
    self, SkipReason, WeightAction, WeightEvent, WeightMode, WeightState,
};
use connito::chain::{ChainError, Reveal, WeightsParams, commit_hash, netuid_index};
use connito::consensus::{chain_max_upscale, max_upscale_u16};
use connito::phase::Phase;
use connito::pol::{
    HeldPoints, Scored, points_of_current_holders, round_points, weights_from_history,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::node::context::{Ctx, Tick};
use crate::validator::evaluator::round_scores;
use connito::store::records::{RoundRecord, SubmissionRecord, WeightRecord};
use connito::store::tables::{ROUNDS, SUBMISSIONS, WEIGHTS};

/// How many past cycles are checked for commits still to reveal or answers to resolve: enough for
/// a reveal window several tempos away when cycles are shorter than a tempo (records are local;
/// a scan costs no request).
const LOOKBACK: u64 = 64;

pub struct WeightSetter;

pub enum WeightSetterMsg {
    Tick(Tick),
}

impl Actor for WeightSetter {
    type Msg = WeightSetterMsg;
    type State = Ctx;
    type Arguments = Ctx;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Ctx,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Every (re)start subscribes anew: a restarted actor never misses its ticks.
        ctx.ticks
            .subscribe(myself, |t| Some(WeightSetterMsg::Tick(t)));
        Ok(ctx)
    }

    async fn handle(
        &self,
        _m: ActorRef<Self::Msg>,
        msg: WeightSetterMsg,
        ctx: &mut Ctx,
    ) -> Result<(), ActorProcessingErr> {
        let WeightSetterMsg::Tick(t) = msg;
        if let Err(e) = record_new(ctx, t).await {
            tracing::error!(daemon = %ctx.daemon, cycle = t.pos.cycle, "recording weights: {e}");
        }
        let from = t.pos.cycle.saturating_sub(LOOKBACK);
        for (cycle, rec) in ctx.store.range(&WEIGHTS, &[from], &[t.pos.cycle + 1])? {
            // A chain answer connito cannot use (a runtime it does not know) is logged and
            // retried next block; it does not take the actor down.
            if let Err(e) = advance(ctx, cycle, rec, t).await {
                tracing::error!(daemon = %ctx.daemon, cycle, "weights: {e}");
            }
        }
        Ok(())
    }
}

/// Records this cycle's weights once its round is scored (insert-if-absent).
async fn record_new(ctx: &Ctx, t: Tick) -> Result<(), ActorProcessingErr> {
    let cycle = t.pos.cycle;
    if t.pos.phase < Phase::Merge {
        return Ok(());
    }
    let round: RoundRecord = ctx.store.get(&ROUNDS, &cycle)?.unwrap_or_default();
    if round.scored && ctx.store.get(&WEIGHTS, &cycle)?.is_none() {
        let params = match ctx.chain.weights_params(ctx.netuid, &t.at).await {
            Ok(p) => p,
            Err(e) if e.is_transient() => return Ok(()), // next block
            Err(e) => return Err(e.into()),
        };
        let holders: BTreeMap<u16, [u8; 32]> = match ctx.chain.metagraph(ctx.netuid, &t.at).await {
            Ok(mg) => mg.into_iter().map(|n| (n.uid, n.hotkey)).collect(),
            Err(e) if e.is_transient() => return Ok(()), // next block
            Err(e) => return Err(e.into()),
        };
        let rec = compute(ctx, cycle, t.pos.block, &params, &holders)?;
        ctx.store.insert_new(&WEIGHTS, &cycle, &rec)?;
        ctx.store.flush()?;
    }
    Ok(())
}

fn random_salt(n: usize) -> Vec<u16> {
    // Randomness lives at the edge: the process's random hasher keys, not a seeded generator.
    (0..n)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.finish() as u16
        })
        .collect()
}

/// A round's points, with the hotkey that held each uid in that round.
fn points_of(ctx: &Ctx, cycle: u64) -> Result<HeldPoints, ActorProcessingErr> {
    let subs: BTreeMap<u16, SubmissionRecord> = ctx
        .store
        .scan(&SUBMISSIONS, &[cycle])?
        .into_iter()
        .map(|(_, s)| (s.uid, s))
        .collect();
    let scored: Vec<Scored> = round_scores(ctx, cycle)?
        .values()
        .filter_map(|s| {
            let sub = subs
                .get(&s.uid)
                .filter(|x| x.verdict == connito::submission::Verdict::Accepted)?;
            Some(Scored {
                uid: s.uid,
                score: s.score,
                commit_block: sub.commit_block,
            })
        })
        .collect();
    Ok(round_points(&ctx.cfg.rewards, &scored)
        .into_iter()
        .filter_map(|(uid, p)| Some((uid, (subs.get(&uid)?.hotkey, p))))
        .collect())
}

fn compute(
    ctx: &Ctx,
    cycle: u64,
    block: u64,
    params: &WeightsParams,
    holders: &BTreeMap<u16, [u8; 32]>,
) -> Result<WeightRecord, ActorProcessingErr> {
    let window = ctx.cfg.rewards.window as u64;
    let held = (cycle.saturating_sub(window - 1)..=cycle)
        .map(|c| points_of(ctx, c))
        .collect::<Result<Vec<_>, _>>()?;
    let history = points_of_current_holders(&held, holders);
    let weights = weights_from_history(&ctx.cfg.rewards, &history);
    let uids: Vec<u16> = weights.keys().copied().collect();
    let floats: Vec<f64> = weights.values().copied().collect();
    let values = if floats.is_empty() {
        vec![]
    } else {
        max_upscale_u16(&floats)?
    };
    let (mode, salt, hash) = if params.commit_reveal_enabled {
        let salt = random_salt(8);
        let hash = commit_hash(
            &ctx.hotkey.public(),
            netuid_index(ctx.netuid, 0),
            &uids,
            &values,
            &salt,
            params.version_key,
        );
        (WeightMode::CommitReveal, salt, Some(hash))
    } else {
        (WeightMode::SetWeights, vec![], None)
    };
    let state = if uids.is_empty() {
        WeightState::Skipped {
            reason: SkipReason::NoPositiveScores,
        }
    } else {
        WeightState::Recorded
    };
    Ok(WeightRecord {
        weights,
        uids,
        values,
        mode,
        state,
        recorded_block: block,
        salt,
        commit_hash: hash,
        version_key: params.version_key,
    })
}

/// Whether a commit of `cycle`'s weights may be revealed now: as the reference validator does,
/// not before the MinerCommit1 phase of the next cycle, and then once the chain's reveal window
/// for it has opened (a commit the chain no longer holds is revealed too: the chain's answer
/// settles it). Reads `WeightCommits` only when the timing allows a reveal.
async fn reveal_due(
    ctx: &Ctx,
    rec: &WeightRecord,
    t: Tick,
    cycle: u64,
) -> Result<bool, ChainError> {
    let reference_time = t.pos.cycle > cycle + 1 || t.pos.phase >= Phase::MinerCommit1;
    if t.pos.cycle <= cycle || !reference_time {
        return Ok(false);
    }
    let Some(hash) = rec.commit_hash else {
        return Ok(false);
    };
    let commits = ctx
        .chain
        .weight_commits(ctx.netuid, &ctx.hotkey.public(), &t.at)
        .await?;
    Ok(match commits.iter().find(|c| c.hash == hash) {
        Some(c) => t.at.number >= c.first_reveal_block,
        None => true,
    })
}

/// One step of a cycle's record: act as the state machine says, store the state it moves to.
async fn advance(
    ctx: &Ctx,
    cycle: u64,
    rec: WeightRecord,
    t: Tick,
) -> Result<(), ActorProcessingErr> {
    let due = match rec.state {
        WeightState::Committed { .. } => match reveal_due(ctx, &rec, t, cycle).await {
            Ok(due) => due,
            Err(e) if e.is_transient() => return Ok(()),
            Err(e) => return Err(e.into()),
        },
        _ => false,
    };
    let action = weight_state::action(&rec.state, due);
    let (at, stored) = match action {
        WeightAction::Send | WeightAction::Reveal => write_ahead(ctx, cycle, &rec, t).await?,
        _ => (t.at.number, rec.state.clone()),
    };
    let event = match action {
        WeightAction::Wait | WeightAction::Done => return Ok(()),
        WeightAction::Send => WeightEvent::Sent {
            result: send(ctx, &rec).await,
            at,
        },
        WeightAction::Reveal => WeightEvent::Revealed {
            result: ctx
                .chain
                .reveal_weights(&ctx.hotkey, ctx.netuid, reveal_of(&rec))
                .await,
            at,
        },
        WeightAction::Resolve => match observe(ctx, &rec, t).await {
            Ok(seen) => WeightEvent::Resolved(seen),
            Err(e) if e.is_transient() => return Ok(()),
            Err(e) => return Err(e.into()),
        },
    };
    let state = weight_state::next(&rec.state, rec.mode, &event);
    if state == stored {
        return Ok(());
    }
    if state != rec.state {
        count(ctx, cycle, &rec, &state);
    }
    ctx.store
        .put_durable(&WEIGHTS, &cycle, &WeightRecord { state, ..rec })?;
    Ok(())
}

fn count(ctx: &Ctx, cycle: u64, rec: &WeightRecord, state: &WeightState) {
    let label = match state {
        WeightState::Set { .. } | WeightState::Committed { .. } | WeightState::Revealed { .. } => {
            "ok"
        }
        WeightState::Unknown { .. } | WeightState::RevealUnknown { .. } => "unknown",
        WeightState::Rejected { .. } | WeightState::Expired { .. } => "rejected",
        _ => "resolved",
    };
    ctx.metrics
        .counter("connito_weights_set_total", &[("status", label)])
        .increment(1);
    tracing::info!(daemon = %ctx.daemon, cycle, uids = ?rec.uids, values = ?rec.values, state = ?state, "weights");
}

/// Stores the in-flight state before anything is sent (a crash mid-send leaves a record that is
/// resolved against the chain); returns the block the submission counts as sent at: the newest
/// finalized head, which the client's era is anchored at or after; and the state now on disk.
async fn write_ahead(
    ctx: &Ctx,
    cycle: u64,
    rec: &WeightRecord,
    t: Tick,
) -> Result<(u64, WeightState), ActorProcessingErr> {
    let at = match ctx.chain.finalized_block().await {
        Ok(head) => head.number.max(t.at.number),
        Err(_) => t.at.number,
    };
    let Some(state) = weight_state::in_flight(&rec.state, at) else {
        return Ok((at, rec.state.clone()));
    };
    let flying = WeightRecord {
        state: state.clone(),
        ..rec.clone()
    };
    ctx.store.put_durable(&WEIGHTS, &cycle, &flying)?;
    Ok((at, state))
}

fn reveal_of(rec: &WeightRecord) -> Reveal {
    Reveal {
        uids: rec.uids.clone(),
        values: rec.values.clone(),
        salt: rec.salt.clone(),
        version_key: rec.version_key,
    }
}

async fn send(ctx: &Ctx, rec: &WeightRecord) -> Result<connito::chain::Included, ChainError> {
    match rec.commit_hash {
        Some(hash) => {
            ctx.chain
                .commit_weights(&ctx.hotkey, ctx.netuid, hash)
                .await
        }
        None => {
            ctx.chain
                .set_weights(
                    &ctx.hotkey,
                    ctx.netuid,
                    rec.uids.clone(),
                    rec.values.clone(),
                    rec.version_key,
                )
                .await
        }
    }
}

/// Reads what became of a submission whose answer was lost.
async fn observe(
    ctx: &Ctx,
    rec: &WeightRecord,
    t: Tick,
) -> Result<weight_state::Observed, ChainError> {
    let (reveal, sent) = match rec.state {
        WeightState::Unknown { sent } => (false, sent),
        WeightState::RevealUnknown { sent, .. } => (true, sent),
        _ => return Ok(weight_state::Observed::Pending),
    };
    let me = ctx.hotkey.public();
    let commit = match rec.commit_hash {
        Some(hash) => ctx
            .chain
            .weight_commits(ctx.netuid, &me, &t.at)
            .await?
            .into_iter()
            .find(|c| c.hash == hash)
            .map(|c| c.commit_block),
        None => None,
    };
    let me_n = ctx
        .chain
        .metagraph(ctx.netuid, &t.at)
        .await?
        .into_iter()
        .find(|n| n.hotkey == me);
    let weights_stored = match &me_n {
        Some(n) => {
            let stored = ctx.chain.weights(ctx.netuid, n.uid, &t.at).await?;
            let sent: Vec<(u16, u16)> = rec
                .uids
                .iter()
                .copied()
                .zip(chain_max_upscale(&rec.values))
                .collect();
            stored == sent
        }
        None => false,
    };
    let evidence = weight_state::Evidence {
        commit,
        last_update: me_n.map(|n| n.last_update),
        weights_stored,
    };
    Ok(weight_state::observe(reveal, evidence, sent, t.at.number))
}
