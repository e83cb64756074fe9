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
use connito::store::Store;
use connito::submission::{Commitment, Manifest, SignedManifest};
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

/// MinerCommit2: where the shard is served, unless its strategy takes the step itself.
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
    let url = match publish::location(st, cycle).await? {
        Some(url) => url,
        None => shard_url(&st.ctx, cycle),
    };
    let c = Commitment::Location {
        group: st.group,
        hash,
        version: rec.global_version,
        url,
    };
    rec.location_committed = commit(&st.ctx, c, "location").await;
    Ok(())
}

/// Signs this miner's manifest of `shard` and commits its binding hash.
pub(super) async fn commit_own(
    ctx: &Ctx,
    group: u16,
    rec: &mut TrainRecord,
    cycle: u64,
    shard: Hash32,
) {
    let manifest = Manifest {
        hotkey: ctx.hotkey.public(),
        group,
        cycle,
        global_version: rec.global_version,
        content_hash: shard,
    };
    let signed = SignedManifest::sign(manifest, &ctx.hotkey);
    let hash = signed.manifest.binding_hash();
    let c = Commitment::Hash {
        group,
        hash,
        version: rec.global_version,
    };
    if commit(ctx, c, "hash").await {
        rec.shard = Some(shard);
        rec.signed = Some(signed);
        rec.committed = Some(hash);
        rec.hash_committed = true;
    }
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

/// Sets a commitment; `true` once the matter is settled (it landed, or the chain refused it for
/// good), `false` when it should be tried again next block (the chain was unreachable or the
/// answer was lost).
pub(super) async fn commit(ctx: &Ctx, c: Commitment, step: &'static str) -> bool {
    let res = match c.to_bytes() {
        Ok(bytes) => ctx
            .chain
            .set_commitment(&ctx.hotkey, ctx.netuid, bytes)
            .await
            .map_err(|e| (e.kind() == ErrorKind::Final, e.to_string())),
        Err(e) => Err((true, e.to_string())),
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
