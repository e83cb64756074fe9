//! Intake: once a round's Submission phase opens, fetch every committed submission of the round
//! concurrently (`intake.concurrency` at a time, earliest commits first), check it
//! (`connito::submission::check_submission`) and store the verdict and the accepted shards.
//!
//! A location is parsed and its host resolved to addresses the config allows before anything is
//! connected to; a shard must be exactly its group's canonical size. The round's deadline is the
//! end of its Submission phase: fetches still running then are `fetch_failed`. The oldest
//! unfinished round is always finished, late if need be (a restart), never dropped. Once
//! `pol.max_candidates` submissions are accepted, later commits are `over_capacity` unfetched.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connito::pol::screen::check_bounds;
use connito::protocol::wire::{Base, SizeRule};
use connito::submission::check::MAX_MANIFEST_BYTES;
use connito::submission::location::{AddressPolicy, parse_location};
use connito::submission::{Refused, Verdict};
use connito::tensors::{Hash32, StateDict};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{Semaphore, watch};

use crate::node::context::{Ctx, Tick, latest_model};
use crate::node::http::{self, FetchError, FetchLimits};
use connito::store::records::{CommitObs, SubmissionRecord};
use connito::store::tables::{COMMITMENTS, ROUNDS, SUBMISSIONS};

pub struct Intake;

pub enum IntakeMsg {
    Tick(Tick),
    Done(u64),
}

/// The round being fetched, and how to stop it at its deadline.
struct Busy {
    cycle: u64,
    late: bool,
    cancel: watch::Sender<bool>,
}

pub struct IntakeState {
    ctx: Ctx,
    busy: Option<Busy>,
}

impl Actor for Intake {
    type Msg = IntakeMsg;
    type State = IntakeState;
    type Arguments = Ctx;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Ctx,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Every (re)start subscribes anew: a restarted actor never misses its ticks.
        ctx.ticks.subscribe(myself, |t| Some(IntakeMsg::Tick(t)));
        Ok(IntakeState { ctx, busy: None })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: IntakeMsg,
        st: &mut IntakeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            IntakeMsg::Done(cycle) => {
                let mut round = st.ctx.store.get(&ROUNDS, &cycle)?.unwrap_or_default();
                round.intake_done = true;
                st.ctx.store.put(&ROUNDS, &cycle, &round)?;
                st.busy = None;
            }
            IntakeMsg::Tick(t) => {
                let clock = &st.ctx.clock;
                if let Some(b) = &st.busy {
                    if clock.intake_deadline_passed(b.cycle, b.late, t.pos.block) {
                        let _ = b.cancel.send(true);
                    }
                    return Ok(());
                }
                let store = &st.ctx.store;
                let done = |c: u64| {
                    store
                        .get(&ROUNDS, &c)
                        .ok()
                        .flatten()
                        .is_some_and(|r| r.intake_done)
                };
                let Some(cycle) = clock.round_due(t.pos, done) else {
                    return Ok(());
                };
                let late = clock.intake_deadline_passed(cycle, false, t.pos.block);
                if late {
                    tracing::warn!(daemon = %st.ctx.daemon, cycle, "intake of this round starts after its Submission phase: finishing it late");
                }
                let (cancel, stop) = watch::channel(false);
                st.busy = Some(Busy {
                    cycle,
                    late,
                    cancel,
                });
                let ctx = st.ctx.clone();
                tokio::spawn(async move {
                    if let Err(e) = fetch_round(&ctx, cycle, stop).await {
                        tracing::error!(daemon = %ctx.daemon, cycle, "intake: {e}");
                    }
                    let _ = myself.cast(IntakeMsg::Done(cycle));
                });
            }
        }
        Ok(())
    }
}

/// What every fetch of a round shares.
struct Round {
    ctx: Ctx,
    cycle: u64,
    global: Arc<StateDict>,
    global_version: u64,
    accepted: AtomicUsize,
    stop: watch::Receiver<bool>,
}

async fn fetch_round(
    ctx: &Ctx,
    cycle: u64,
    stop: watch::Receiver<bool>,
) -> Result<(), ActorProcessingErr> {
    let mut commits: Vec<CommitObs> = ctx
        .store
        .scan(&COMMITMENTS, &[cycle])?
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    commits.sort_by_key(|o| (o.hash_block, o.uid));
    let latest = latest_model(&ctx.store)?.ok_or("no global model stored")?;
    let judged: Vec<SubmissionRecord> = ctx
        .store
        .scan(&SUBMISSIONS, &[cycle])?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let round = Arc::new(Round {
        ctx: ctx.clone(),
        cycle,
        global: Arc::new(ctx.store.get_state_dict(&latest.hash)?),
        global_version: latest.version,
        accepted: AtomicUsize::new(
            judged
                .iter()
                .filter(|s| s.verdict == Verdict::Accepted)
                .count(),
        ),
        stop,
    });
    let permits = Arc::new(Semaphore::new(ctx.cfg.intake.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for obs in commits {
        if judged.iter().any(|s| s.uid == obs.uid) {
            continue; // already judged (before a restart)
        }
        let permit = permits.clone().acquire_owned().await?;
        let r = round.clone();
        tasks.spawn(async move {
            let rec = r.judge(&obs).await;
            let _permit = permit;
            r.record(rec)
        });
    }
    let mut n = 0;
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Ok(())) => n += 1,
            Ok(Err(e)) => tracing::error!(daemon = %ctx.daemon, cycle, "intake: {e}"),
            Err(e) => tracing::error!(daemon = %ctx.daemon, cycle, "intake task: {e}"),
        }
    }
    ctx.store.flush()?;
    tracing::info!(daemon = %ctx.daemon, cycle, "intake judged {n} submissions");
    Ok(())
}

impl Round {
    fn record(&self, rec: SubmissionRecord) -> Result<(), ActorProcessingErr> {
        let ctx = &self.ctx;
        ctx.metrics
            .counter(
                "connito_intake_submissions_total",
                &[("verdict", rec.verdict.label())],
            )
            .increment(1);
        tracing::info!(daemon = %ctx.daemon, cycle = self.cycle, uid = rec.uid, verdict = rec.verdict.label(), "{}", rec.detail);
        ctx.store.put(&SUBMISSIONS, &(self.cycle, rec.uid), &rec)?;
        Ok(())
    }

    /// The verdict on one commitment: checked, fetched (unless the round is full or over its
    /// deadline) and checked again.
    async fn judge(&self, obs: &CommitObs) -> SubmissionRecord {
        let mut rec = SubmissionRecord {
            uid: obs.uid,
            hotkey: obs.hotkey,
            group: obs.group,
            verdict: Verdict::Accepted,
            detail: "valid".into(),
            content_hash: None,
            blob: None,
            commit_block: obs.hash_block,
        };
        let max = self.ctx.cfg.pol.max_candidates;
        let outcome = if self.accepted.load(Ordering::SeqCst) >= max {
            Err((
                Verdict::OverCapacity,
                format!("{max} earlier commits were accepted this round (pol.max_candidates)"),
            ))
        } else {
            let mut stop = self.stop.clone();
            tokio::select! {
                r = self.fetch_and_check(obs) => r,
                _ = stop.wait_for(|s| *s) => Err((
                    Verdict::FetchFailed,
                    "the round's deadline (end of Submission) passed before the fetch finished".into(),
                )),
            }
        };
        match outcome {
            Ok(blob) => {
                // The stored blob is the content's canonical encoding: one id for both.
                rec.content_hash = Some(blob);
                rec.blob = Some(blob);
                self.accepted.fetch_add(1, Ordering::SeqCst);
            }
            Err((verdict, detail)) => {
                rec.verdict = verdict;
                rec.detail = detail;
            }
        }
        rec
    }

    /// The profile's checks, cheapest first: what the commitments claim, the group and the
    /// version, where the files are, the proof (from the chain or the manifest), then the
    /// shard, decoded and checked, and its bounds against the global model.
    async fn fetch_and_check(&self, obs: &CommitObs) -> Result<Hash32, (Verdict, String)> {
        let (cfg, wire) = (&self.ctx.cfg, &self.ctx.wire);
        let refused = |r: Refused| (r.verdict, r.reason);
        let claim = wire.claim(obs).map_err(refused)?;
        if claim.group as usize >= cfg.model.n_groups {
            let why = format!(
                "group {} does not exist (the model has {})",
                claim.group, cfg.model.n_groups
            );
            return Err((Verdict::WrongGroup, why));
        }
        if !wire.miner_version_ok(claim.version, self.global_version) {
            let why = format!(
                "trained from global version {}, the round's is {}",
                claim.version, self.global_version
            );
            return Err((Verdict::StaleManifest, why));
        }
        let layout = self.ctx.layout(claim.group);
        let (limit, exact) = match wire.shard_size(&layout) {
            SizeRule::Exactly(n) if n > cfg.pol.max_shard_bytes => {
                let why = format!(
                    "group {}'s shard is {n} bytes, above pol.max_shard_bytes",
                    claim.group
                );
                return Err((Verdict::InternalError, why));
            }
            SizeRule::Exactly(n) => (n, Some(n)),
            SizeRule::AtMost(n) => (n.min(cfg.pol.max_shard_bytes), None),
        };
        let source = self.source(&claim.base)?;
        let proof = match (&claim.proof, wire.proof_file()) {
            (Some(p), _) => p.clone().into_bytes(),
            (None, Some(file)) => source
                .get(file, MAX_MANIFEST_BYTES, None)
                .await
                .map_err(manifest_fetch_verdict)?,
            (None, None) => return Err((Verdict::Malformed, "no proof committed".into())),
        };
        let content = wire
            .check_proof(&proof, &claim, &obs.hotkey, self.cycle)
            .map_err(refused)?;
        let shard = source
            .get(&wire.shard_file(claim.group), limit, exact)
            .await
            .map_err(fetch_verdict)?;
        let (global, screen, store, wire) = (
            self.global.clone(),
            cfg.pol.screen(),
            self.ctx.store.clone(),
            self.ctx.wire.clone(),
        );
        let checked = tokio::task::spawn_blocking(move || {
            let sd = wire
                .decode_shard(&shard, &content, &layout)
                .map_err(refused)?;
            check_bounds(&sd, &global, &screen)
                .map_err(|e| (Verdict::OutOfRange, e.to_string()))?;
            store
                .put_state_dict(&sd)
                .map_err(|e| (Verdict::StoreFailed, e.to_string()))
        })
        .await;
        checked.unwrap_or_else(|e| Err((Verdict::InternalError, e.to_string())))
    }

    /// Where a submission's files are read from: a folder of this node's `file://` hub, or a
    /// URL checked against the address policy, never this validator's own server.
    fn source(&self, base: &Base) -> Result<Source, (Verdict, String)> {
        let base = match base {
            Base::Dir(dir) => return Ok(Source::Dir(dir.clone())),
            Base::Url(u) => u,
        };
        let loc = parse_location(base).map_err(|e| (Verdict::BadLocation, e.to_string()))?;
        if is_own_address(&loc, &self.ctx.public_url) {
            return Err((
                Verdict::BadLocation,
                "the location is this validator's own HTTP server".into(),
            ));
        }
        let (policy, limits) = self.limits(0);
        Ok(Source::Http {
            loc,
            policy,
            limits,
        })
    }

    fn limits(&self, max_body: usize) -> (AddressPolicy, FetchLimits) {
        let i = &self.ctx.cfg.intake;
        let policy = if i.allow_private_locations {
            AddressPolicy::AllowPrivate
        } else {
            AddressPolicy::PublicOnly
        };
        let limits = FetchLimits {
            connect_timeout: Duration::from_millis(i.connect_timeout_ms),
            total_timeout: Duration::from_millis(i.fetch_timeout_ms),
            max_body,
        };
        (policy, limits)
    }
}

/// Where a submission's files lie.
enum Source {
    /// A local folder (the sn102 profile's `file://` hub).
    Dir(std::path::PathBuf),
    Http {
        loc: connito::submission::Location,
        policy: AddressPolicy,
        limits: FetchLimits,
    },
}

impl Source {
    /// The file `leaf`: at most `max` bytes, exactly `exact` where given.
    async fn get(
        &self,
        leaf: &str,
        max: usize,
        exact: Option<usize>,
    ) -> Result<Vec<u8>, FetchError> {
        match self {
            Self::Http {
                loc,
                policy,
                limits,
            } => {
                let limits = FetchLimits {
                    max_body: max,
                    ..*limits
                };
                http::fetch(loc, leaf, *policy, &limits, exact).await
            }
            Self::Dir(dir) => read_file(&dir.join(leaf), max, exact).await,
        }
    }
}

/// A local file, bounded as a fetch is: too large before it is read, a length mismatch.
async fn read_file(
    path: &std::path::Path,
    max: usize,
    exact: Option<usize>,
) -> Result<Vec<u8>, FetchError> {
    let path = path.to_path_buf();
    let read = move || -> Result<Vec<u8>, FetchError> {
        let len = std::fs::metadata(&path)?.len() as usize;
        if len > max {
            return Err(FetchError::TooLarge(max));
        }
        if let Some(n) = exact.filter(|n| *n != len) {
            return Err(FetchError::LengthMismatch {
                expected: n,
                got: len,
            });
        }
        Ok(std::fs::read(&path)?)
    };
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| FetchError::Io(std::io::Error::other(e)))?
}

/// Whether `loc` names this daemon's own server (`own`: its public base URL): even where
/// private addresses are allowed (localnet), a validator never fetches from itself.
fn is_own_address(loc: &connito::submission::Location, own: &str) -> bool {
    parse_location(own)
        .is_ok_and(|me| me.host() == loc.host() && me.port_or_default() == loc.port_or_default())
}

/// The verdict of a failed manifest fetch: one over [`MAX_MANIFEST_BYTES`] is `malformed`, as
/// `check_manifest` calls it (`too_large` is the shard's limit).
fn manifest_fetch_verdict(e: FetchError) -> (Verdict, String) {
    match e {
        FetchError::TooLarge(_) => (
            Verdict::Malformed,
            format!("manifest is larger than {MAX_MANIFEST_BYTES} bytes"),
        ),
        e => fetch_verdict(e),
    }
}

/// The verdict of a failed fetch: a forbidden or unresolvable location is the miner's location's
/// fault, a body of the wrong size a malformed shard, the rest a failed fetch.
fn fetch_verdict(e: FetchError) -> (Verdict, String) {
    let v = match &e {
        FetchError::Location(_) => Verdict::BadLocation,
        FetchError::TooLarge(_) => Verdict::TooLarge,
        FetchError::LengthMismatch { .. } => Verdict::Malformed,
        _ => Verdict::FetchFailed,
    };
    (v, e.to_string())
}
