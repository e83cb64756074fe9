//! WeightSetter: after a round is scored, turn the rolling points of the last rounds into a
//! weight vector and put it on chain — by commit-reveal when the subnet has it on (SN102 does),
//! else by `set_weights` — at most once per cycle.
//!
//! Write-ahead, like a slashing-protection database: the intent (weights, salt, commit hash) is
//! recorded durably with one atomic insert-if-absent before any extrinsic is sent, so a cycle can
//! never be committed twice. After a crash, a record caught mid-flight is resolved against the
//! chain (is our commit among the hotkey's `WeightCommits`? did `LastUpdate` move?) instead of
//! being resent blindly; a committed record is revealed inside its window.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use connito::chain::{ChainError, WeightsParams, commit_hash, netuid_index};
use connito::consensus::max_upscale_u16;
use connito::phase::Phase;
use connito::pol::{Scored, round_points, weights_from_history};
use connito::store::{key, key_parts};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::context::{Ctx, RoundRecord, SubmissionRecord, Tick, WeightRecord};
use crate::evaluator::round_scores;

/// How many past cycles are checked for commits still to reveal.
const REVEAL_LOOKBACK: u64 = 4;

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
        let t = match msg {
            WeightSetterMsg::Crash => panic!("weight_setter: crash requested"),
            WeightSetterMsg::Tick(t) => t,
        };
        let params = ctx.chain.weights_params(ctx.netuid).await?;
        reveal_due(ctx, &params, t).await?;
        let cycle = t.pos.cycle;
        if t.pos.phase < Phase::Merge {
            return Ok(());
        }
        let round: RoundRecord = ctx.store.get("rounds", &key(&[cycle]))?.unwrap_or_default();
        if !round.scored {
            return Ok(());
        }
        let k = key(&[cycle]);
        match ctx.store.get::<WeightRecord>("weights", &k)? {
            None => {
                let rec = compute(ctx, cycle, t.pos.block, &params)?;
                if ctx.store.insert_new("weights", &k, &rec)? {
                    send(ctx, cycle, rec, &params).await?;
                }
            }
            Some(rec) if rec.status == "pending" || rec.status == "committing" => {
                recover(ctx, cycle, rec, &params).await?
            }
            Some(_) => {}
        }
        Ok(())
    }
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

fn compute(
    ctx: &Ctx,
    cycle: u64,
    block: u64,
    params: &WeightsParams,
) -> Result<WeightRecord, ActorProcessingErr> {
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
    let (status, salt, hash) = if params.commit_reveal_enabled {
        let salt = random_salt(8);
        let hash = commit_hash(
            &ctx.hotkey.public(),
            netuid_index(ctx.netuid, 0),
            &uids,
            &values,
            &salt,
            params.version_key,
        );
        ("committing", salt, Some(hash))
    } else {
        ("pending", vec![], None)
    };
    Ok(WeightRecord {
        weights,
        uids,
        values,
        status: status.into(),
        recorded_block: block,
        salt,
        commit_hash: hash,
        commit_epoch: None,
        version_key: params.version_key,
    })
}

fn outcome(res: &Result<(), ChainError>) -> (&'static str, String) {
    match res {
        Ok(()) => ("ok", String::new()),
        Err(e @ ChainError::Connection(_)) => ("error", format!("error: {e}")),
        Err(e) => ("rejected", format!("rejected: {e}")),
    }
}

async fn send(
    ctx: &Ctx,
    cycle: u64,
    rec: WeightRecord,
    params: &WeightsParams,
) -> Result<(), ActorProcessingErr> {
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
    let (res, success) = match rec.commit_hash {
        Some(hash) => (
            ctx.chain
                .commit_weights(&ctx.hotkey, ctx.netuid, hash)
                .await,
            "committed",
        ),
        None => {
            let (uids, values) = (rec.uids.clone(), rec.values.clone());
            (
                ctx.chain
                    .set_weights(&ctx.hotkey, ctx.netuid, uids, values, rec.version_key)
                    .await,
                "ok",
            )
        }
    };
    let (label, failure) = outcome(&res);
    let status = if res.is_ok() {
        success.to_string()
    } else {
        failure
    };
    ctx.metrics
        .counter("connito_weights_set_total", &[("status", label)])
        .increment(1);
    tracing::info!(daemon = %ctx.daemon, cycle, uids = ?rec.uids, values = ?rec.values, %status, "weights");
    let commit_epoch = (status == "committed").then_some(params.epoch_index);
    ctx.store.put_durable(
        "weights",
        &k,
        &WeightRecord {
            status,
            commit_epoch,
            ..rec
        },
    )?;
    Ok(())
}

/// A record found mid-flight after a restart: ask the chain what happened before acting.
async fn recover(
    ctx: &Ctx,
    cycle: u64,
    rec: WeightRecord,
    params: &WeightsParams,
) -> Result<(), ActorProcessingErr> {
    let k = key(&[cycle]);
    let me = ctx.hotkey.public();
    if let Some(hash) = rec.commit_hash {
        let commits = ctx.chain.weight_commits(ctx.netuid, &me).await?;
        if let Some(c) = commits.iter().find(|c| c.hash == hash) {
            tracing::info!(daemon = %ctx.daemon, cycle, "recovered: the commit had landed before the restart");
            let done = WeightRecord {
                status: "committed".into(),
                commit_epoch: Some(c.commit_epoch),
                ..rec
            };
            return Ok(ctx.store.put_durable("weights", &k, &done)?);
        }
    } else {
        let mg = ctx.chain.metagraph(ctx.netuid).await?;
        if mg
            .iter()
            .any(|n| n.hotkey == me && n.last_update >= rec.recorded_block)
        {
            return Ok(ctx.store.put_durable(
                "weights",
                &k,
                &WeightRecord {
                    status: "ok".into(),
                    ..rec
                },
            )?);
        }
    }
    send(ctx, cycle, rec, params).await
}

/// Reveals committed weights of earlier cycles once their reveal epoch has come; as the reference
/// validator does, not before the MinerCommit1 phase of the following cycle.
async fn reveal_due(ctx: &Ctx, params: &WeightsParams, t: Tick) -> Result<(), ActorProcessingErr> {
    let from = key(&[t.pos.cycle.saturating_sub(REVEAL_LOOKBACK)]);
    let to = key(&[t.pos.cycle]);
    for (kb, rec) in ctx.store.range::<WeightRecord>("weights", &from, &to)? {
        if rec.status != "committed" {
            continue;
        }
        let cycle = key_parts(&kb)[0];
        let Some(epoch) = rec.commit_epoch else {
            continue;
        };
        let in_window = params.epoch_index >= epoch + params.reveal_period_epochs;
        let reference_time = t.pos.cycle > cycle + 1 || t.pos.phase >= Phase::MinerCommit1;
        if !in_window || !reference_time {
            continue;
        }
        let res = ctx
            .chain
            .reveal_weights(
                &ctx.hotkey,
                ctx.netuid,
                rec.uids.clone(),
                rec.values.clone(),
                rec.salt.clone(),
                rec.version_key,
            )
            .await;
        let status = match &res {
            Ok(()) => "revealed".to_string(),
            Err(ChainError::RevealTooEarly) => continue,
            Err(e @ (ChainError::ExpiredWeightCommit | ChainError::NoWeightsCommitFound)) => {
                format!("expired: {e}")
            }
            Err(_) => outcome(&res).1,
        };
        let label = if res.is_ok() { "ok" } else { "rejected" };
        ctx.metrics
            .counter("connito_weights_set_total", &[("status", label)])
            .increment(1);
        tracing::info!(daemon = %ctx.daemon, cycle, %status, "reveal");
        ctx.store
            .put_durable("weights", &kb, &WeightRecord { status, ..rec })?;
    }
    Ok(())
}
