//! Publisher (miner): in MinerCommit1 sign the shard's manifest and commit its binding hash; in
//! MinerCommit2 commit where the shard is served. The daemon's HTTP server serves
//! `/s/{cycle}/manifest` and `/s/{cycle}/shard` from the store, once the hash is committed and
//! MinerCommit1 has closed (before that: 404).
//!
//! Where a miner's [`Strategy`] says otherwise (localnet's adversaries), the step is
//! `actors/miner/adversary/publish.rs`'s: a hash-copier commits another miner's hash and serves
//! that miner's shard under its own signature; a shard-thief and a replayer commit someone
//! else's shard as their own; a garbage server, a slow server and an ssrf miner commit a
//! location that is the attack. Validators must pay none of them.

use connito::chain::ErrorKind;
use connito::phase::{Phase, PhaseClock};
use connito::protocol::wire::{Binding, Publication};
use connito::store::Store;
use connito::store::records::ServedFile;
use connito::submission::{Commitment, SignedManifest};
use connito::tensors::{Hash32, blake2b_256};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::miner::adversary::{Strategy, Target, publish};
use crate::node::context::{Ctx, Tick};
use crate::node::http::Response;
use connito::store::records::TrainRecord;
use connito::store::tables::{CHAIN, LAST_SEEN, TRAINER};

pub struct Publisher;

pub enum PublisherMsg {
    Tick(Tick),
}

pub struct PublisherArgs {
    pub ctx: Ctx,
    pub strategy: Strategy,
    pub group: u16,
    /// For localnet's adversaries: the daemon they act on.
    pub target: Option<Target>,
    /// A slow server's tarpit URL, once bound.
    pub tarpit: Option<String>,
}

impl Actor for Publisher {
    type Msg = PublisherMsg;
    type State = PublisherArgs;
    type Arguments = PublisherArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: PublisherArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Every (re)start subscribes anew: a restarted actor never misses its ticks.
        args.ctx
            .ticks
            .subscribe(myself, |t| Some(PublisherMsg::Tick(t)));
        Ok(args)
    }

    async fn handle(
        &self,
        _m: ActorRef<Self::Msg>,
        msg: PublisherMsg,
        st: &mut PublisherArgs,
    ) -> Result<(), ActorProcessingErr> {
        let PublisherMsg::Tick(t) = msg;
        let cycle = t.pos.cycle;
        let mut rec: TrainRecord = match st.ctx.store.get(&TRAINER, &cycle)? {
            Some(r) => r,
            None if st.strategy.publishes_untrained() => TrainRecord::default(),
            None => return Ok(()),
        };
        let before = rec.clone();
        match t.pos.phase {
            Phase::MinerCommit1 if !rec.hash_committed => {
                hash_step(st, &mut rec, &t.at, cycle).await?;
            }
            Phase::MinerCommit2 if rec.hash_committed && !rec.location_committed => {
                location_step(st, &mut rec, &t.at, cycle).await?;
            }
            _ => {}
        }
        if rec != before {
            st.ctx.store.put_durable(&TRAINER, &cycle, &rec)?;
        }
        Ok(())
    }
}

/// MinerCommit1: this miner's own shard's hash, unless its strategy commits another's.
async fn hash_step(
    st: &PublisherArgs,
    rec: &mut TrainRecord,
    at: &connito::chain::BlockInfo,
    cycle: u64,
) -> Result<(), ActorProcessingErr> {
    if publish::commit_hash(st, rec, at, cycle).await? {
        return Ok(());
    }
    // No shard: this miner sat the cycle out (the stale adversary).
    if let Some(shard) = rec.shard {
        commit_own(&st.ctx, st.group, rec, cycle, shard).await;
    }
    Ok(())
}

/// MinerCommit2: where the shard is served (written first into a local hub folder, where the
/// profile has one), unless its strategy takes the step itself.
async fn location_step(
    st: &mut PublisherArgs,
    rec: &mut TrainRecord,
    at: &connito::chain::BlockInfo,
    cycle: u64,
) -> Result<(), ActorProcessingErr> {
    if publish::commit_location(st, rec, cycle, at).await? {
        return Ok(());
    }
    let hash = rec.committed.ok_or("hash committed but not recorded")?;
    let bytes = match (publish::location(st, cycle).await?, &rec.commit2) {
        (None, Some(c2)) => c2.clone(),
        // An adversary's location, or a record of an older build: connito's commitment.
        (url, _) => Commitment::Location {
            group: st.group,
            hash,
            version: rec.global_version,
            url: url.unwrap_or_else(|| shard_url(&st.ctx, cycle)),
        }
        .to_bytes()?,
    };
    if let Some(served) = &rec.served {
        upload(&st.ctx, served)?;
    }
    rec.location_committed = commit_bytes(&st.ctx, Ok(bytes), "location").await;
    Ok(())
}

/// Writes a served file into the profile's local hub folder, if it has one.
fn upload(ctx: &Ctx, served: &ServedFile) -> Result<(), ActorProcessingErr> {
    let Some(path) = ctx.wire.upload_path(&served.path) else {
        return Ok(());
    };
    if path.exists() {
        return Ok(());
    }
    let dir = path.parent().ok_or("a served path has a folder")?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, ctx.store.blob_bytes(&served.blob)?)?;
    std::fs::rename(&tmp, &path)?;
    tracing::info!(daemon = %ctx.daemon, path = %path.display(), "uploaded the shard");
    Ok(())
}

/// Makes this miner's submission of `shard` (a blob of connito's group tensors) in the wire
/// profile's formats, commits its first commitment, and keeps the second and the file to
/// serve.
pub(super) async fn commit_own(
    ctx: &Ctx,
    group: u16,
    rec: &mut TrainRecord,
    cycle: u64,
    shard: Hash32,
) {
    let (c1, c2, served, proof) = match prepare(ctx, group, rec.global_version, cycle, &shard) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(daemon = %ctx.daemon, cycle, "preparing the submission: {e}");
            return;
        }
    };
    if commit_bytes(ctx, Ok(c1.clone()), "hash").await {
        rec.shard = Some(shard);
        // connito's proof is its signed manifest (served at `/s/{cycle}/manifest`), whose
        // binding hash is what it committed; sn102's is on chain.
        rec.signed = serde_json::from_str::<SignedManifest>(&proof).ok();
        rec.committed = Some(match &rec.signed {
            Some(s) => s.manifest.binding_hash(),
            None => blake2b_256(&c1),
        });
        rec.commit2 = Some(c2);
        rec.served = served;
        rec.hash_committed = true;
    }
}

type Prepared = (Vec<u8>, Vec<u8>, Option<ServedFile>, String);

/// The two commitments, the file to serve (where the profile serves one under its own path)
/// and the proof.
fn prepare(
    ctx: &Ctx,
    group: u16,
    version: u64,
    cycle: u64,
    shard: &Hash32,
) -> Result<Prepared, ActorProcessingErr> {
    let (wire, layout) = (&ctx.wire, ctx.layout(group));
    let sd = ctx.store.get_state_dict(shard)?;
    let file = wire.encode_shard(&sd, &layout)?;
    let content = wire.content_hash(&file, &layout)?;
    let binding = Binding {
        hotkey: ctx.hotkey.public(),
        group,
        cycle,
        version,
        content,
    };
    let proof = wire.sign(&ctx.hotkey, &binding);
    let location = wire.location(&ctx.public_url, cycle, &binding.content);
    let served = match location.served_dir() {
        Some(dir) => Some(ServedFile {
            path: format!("{dir}/{}", wire.shard_file(group)),
            blob: ctx.store.put_blob_bytes(&file)?,
        }),
        None => None,
    };
    let p = Publication {
        binding,
        proof: proof.clone(),
        location,
    };
    let c1 = wire.miner_commitment(Phase::MinerCommit1, &p)?;
    let c2 = wire.miner_commitment(Phase::MinerCommit2, &p)?;
    Ok((c1, c2, served, proof))
}

pub(super) fn shard_url(ctx: &Ctx, cycle: u64) -> String {
    format!("{}/s/{cycle}", ctx.public_url.trim_end_matches('/'))
}

pub(super) async fn commitment_of(
    ctx: &Ctx,
    hotkey: &[u8; 32],
    at: &connito::chain::BlockInfo,
) -> Result<Option<Commitment>, ActorProcessingErr> {
    let Ok(all) = ctx.chain.commitments(ctx.netuid, at).await else {
        return Ok(None); // unreachable chain: next block
    };
    Ok(all
        .into_iter()
        .find(|r| &r.hotkey == hotkey)
        .and_then(|r| Commitment::from_bytes(&r.data).ok()))
}

/// Sets a connito commitment (localnet's adversaries).
pub(super) async fn commit(ctx: &Ctx, c: Commitment, step: &'static str) -> bool {
    commit_bytes(ctx, c.to_bytes().map_err(|e| e.to_string()), step).await
}

/// Sets a commitment; `true` once the matter is settled (it landed, or the chain refused it for
/// good), `false` when it should be tried again next block (the chain was unreachable or the
/// answer was lost).
pub(super) async fn commit_bytes(
    ctx: &Ctx,
    bytes: Result<Vec<u8>, String>,
    step: &'static str,
) -> bool {
    let res = match bytes {
        Ok(bytes) => ctx
            .chain
            .set_commitment(&ctx.hotkey, ctx.netuid, bytes)
            .await
            .map_err(|e| (e.kind() == ErrorKind::Final, e.to_string())),
        Err(e) => Err((true, e)),
    };
    let (status, settled) = match &res {
        Ok(_) => ("ok", true),
        Err((true, _)) => ("error", true),
        Err((false, _)) => ("retry", false),
    };
    if let Err((_, e)) = &res {
        tracing::warn!(daemon = %ctx.daemon, step, "commitment failed: {e}");
    }
    ctx.metrics
        .counter(
            "connito_publisher_commits_total",
            &[("step", step), ("status", status)],
        )
        .increment(1);
    settled
}

/// HTTP routes a miner serves besides `/metrics`: `/s/{cycle}/manifest` and `/s/{cycle}/shard`,
/// only once the hash is committed and MinerCommit1 has closed (by the newest finalized block
/// this miner saw); before that, 404, so no one can take the shard and commit it as theirs.
pub fn route(store: &Store, clock: &PhaseClock, path: &str) -> Option<Response> {
    if let Some(r) = served_route(store, clock, path) {
        return Some(r);
    }
    let rest = path.strip_prefix("/s/")?;
    let (cycle, what) = rest.split_once('/')?;
    let cycle: u64 = cycle.parse().ok()?;
    let rec: TrainRecord = store.get(&TRAINER, &cycle).ok()??;
    let seen: u64 = store.get(&CHAIN, &LAST_SEEN).ok()??;
    if !clock.shard_servable(cycle, seen, rec.hash_committed) {
        return None;
    }
    match what {
        "manifest" => Some(Response::ok(
            "application/json",
            serde_json::to_vec(rec.signed.as_ref()?).ok()?,
        )),
        "shard" => {
            let bytes = store.blob_bytes(&rec.shard?).ok()?;
            debug_assert_eq!(blake2b_256(&bytes), rec.shard?);
            Some(Response::ok("application/octet-stream", bytes))
        }
        _ => None,
    }
}

/// A file the profile serves under its own path (sn102's Hub layout), on the same terms.
fn served_route(store: &Store, clock: &PhaseClock, path: &str) -> Option<Response> {
    let path = path.strip_prefix('/')?;
    let seen: u64 = store.get(&CHAIN, &LAST_SEEN).ok()??;
    let records: Vec<(u64, TrainRecord)> = store.scan(&TRAINER, &[]).ok()?;
    let (cycle, rec) = records
        .into_iter()
        .rev()
        .find(|(_, r)| r.served.as_ref().is_some_and(|s| s.path == path))?;
    if !clock.shard_servable(cycle, seen, rec.hash_committed) {
        return None;
    }
    let bytes = store.blob_bytes(&rec.served?.blob).ok()?;
    Some(Response::ok("application/octet-stream", bytes))
}
