//! Intake: when the Submission phase opens, fetch every committed submission of the round,
//! verify it (size, hotkey, group, signature, committed hash, canonical encoding, content hash,
//! keys, shapes, finite values) and store the verdict and the accepted shards.

use connito::model::group_shapes;
use connito::phase::Phase;
use connito::store::key;
use connito::submission::{ShardSpec, SignedManifest, Verdict, validate_shard};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::context::{CommitObs, Ctx, RoundRecord, SubmissionRecord, Tick};
use crate::http;

pub struct Intake;

pub enum IntakeMsg {
    Tick(Tick),
    Done(u64),
    Crash,
}

pub struct IntakeState {
    ctx: Ctx,
    busy: Option<u64>,
}

impl Actor for Intake {
    type Msg = IntakeMsg;
    type State = IntakeState;
    type Arguments = Ctx;

    async fn pre_start(
        &self,
        _m: ActorRef<Self::Msg>,
        ctx: Ctx,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(IntakeState { ctx, busy: None })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: IntakeMsg,
        st: &mut IntakeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            IntakeMsg::Crash => panic!("intake: crash requested"),
            IntakeMsg::Done(cycle) => {
                let k = key(&[cycle]);
                let mut round: RoundRecord = st.ctx.store.get("rounds", &k)?.unwrap_or_default();
                round.intake_done = true;
                st.ctx.store.put("rounds", &k, &round)?;
                st.busy = None;
            }
            IntakeMsg::Tick(t) => {
                let cycle = t.pos.cycle;
                if t.pos.phase < Phase::Submission || st.busy.is_some() {
                    return Ok(());
                }
                let round: RoundRecord = st
                    .ctx
                    .store
                    .get("rounds", &key(&[cycle]))?
                    .unwrap_or_default();
                if round.intake_done {
                    return Ok(());
                }
                st.busy = Some(cycle);
                let ctx = st.ctx.clone();
                tokio::spawn(async move {
                    if let Err(e) = fetch_round(&ctx, cycle).await {
                        tracing::error!(daemon = %ctx.daemon, cycle, "intake: {e}");
                    }
                    let _ = myself.cast(IntakeMsg::Done(cycle));
                });
            }
        }
        Ok(())
    }
}

async fn fetch_round(ctx: &Ctx, cycle: u64) -> Result<(), ActorProcessingErr> {
    let commits: Vec<(Vec<u8>, CommitObs)> = ctx.store.scan("commitments", &key(&[cycle]))?;
    let mut n = 0;
    for (_, obs) in commits {
        let k = key(&[cycle, obs.uid as u64]);
        if ctx
            .store
            .get::<SubmissionRecord>("submissions", &k)?
            .is_some()
        {
            continue; // already judged (before a restart)
        }
        let rec = judge(ctx, cycle, &obs).await;
        ctx.metrics
            .counter(
                "connito_intake_submissions_total",
                &[("verdict", rec.verdict.label())],
            )
            .increment(1);
        tracing::info!(daemon = %ctx.daemon, cycle, uid = obs.uid, verdict = rec.verdict.label(), "{}", rec.detail);
        ctx.store.put("submissions", &k, &rec)?;
        n += 1;
    }
    ctx.store.flush()?;
    tracing::info!(daemon = %ctx.daemon, cycle, "intake judged {n} submissions");
    Ok(())
}

async fn judge(ctx: &Ctx, cycle: u64, obs: &CommitObs) -> SubmissionRecord {
    let mut rec = SubmissionRecord {
        uid: obs.uid,
        hotkey: obs.hotkey,
        group: obs.group,
        verdict: Verdict::Accepted,
        detail: String::new(),
        content_hash: None,
        blob: None,
        commit_block: obs.hash_block,
    };
    if obs.group as usize >= ctx.cfg.model.n_groups {
        rec.verdict = Verdict::WrongGroup;
        rec.detail = format!(
            "group {} does not exist (the model has {})",
            obs.group, ctx.cfg.model.n_groups
        );
        return rec;
    }
    let Some(url) = &obs.url else {
        rec.verdict = Verdict::NoLocation;
        rec.detail = "hash committed but no location in MinerCommit2".into();
        return rec;
    };
    let max = ctx.cfg.pol.max_shard_bytes;
    let fetched = async {
        let m = http::get(&format!("{url}/manifest"), 64 << 10).await?;
        let s = http::get(&format!("{url}/shard"), max + 1).await?;
        Ok::<_, http::FetchError>((m, s))
    }
    .await;
    let (manifest, shard) = match fetched {
        Ok(x) => x,
        Err(http::FetchError::TooLarge(_)) => {
            rec.verdict = Verdict::TooLarge;
            rec.detail = format!("shard larger than {max} bytes");
            return rec;
        }
        Err(e) => {
            rec.verdict = Verdict::FetchFailed;
            rec.detail = e.to_string();
            return rec;
        }
    };
    let signed: SignedManifest = match serde_json::from_slice(&manifest) {
        Ok(s) => s,
        Err(e) => {
            rec.verdict = Verdict::Malformed;
            rec.detail = format!("manifest: {e}");
            return rec;
        }
    };
    if signed.manifest.cycle != cycle {
        rec.verdict = Verdict::StaleManifest;
        rec.detail = format!(
            "manifest is for cycle {}, round is {cycle}",
            signed.manifest.cycle
        );
        return rec;
    }
    let spec = ShardSpec {
        group: obs.group,
        expected: group_shapes(&ctx.cfg.model, obs.group),
        max_bytes: max,
    };
    let (committed, hotkey) = (obs.hash, obs.hotkey);
    let store = ctx.store.clone();
    let verdict = tokio::task::spawn_blocking(move || {
        validate_shard(&shard, &signed, &committed, &hotkey, &spec)
            .map(|_| (signed.manifest.content_hash, store.put_blob_bytes(&shard)))
    })
    .await;
    match verdict {
        Ok(Ok((content, Ok(blob)))) => {
            rec.content_hash = Some(content);
            rec.blob = Some(blob);
            rec.detail = "valid".into();
        }
        Ok(Ok((_, Err(e)))) => {
            rec.verdict = Verdict::StoreFailed;
            rec.detail = e.to_string();
        }
        Ok(Err(rej)) => {
            rec.verdict = Verdict::from(&rej);
            rec.detail = rej.to_string();
        }
        Err(e) => {
            rec.verdict = Verdict::InternalError;
            rec.detail = e.to_string();
        }
    }
    rec
}
