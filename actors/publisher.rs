//! Publisher (miner): in MinerCommit1 sign the shard's manifest and commit its binding hash; in
//! MinerCommit2 commit where the shard is served. The daemon's HTTP server serves
//! `/s/{cycle}/manifest` and `/s/{cycle}/shard` from the store, once the hash is committed and
//! MinerCommit1 has closed (before that: 404).
//!
//! localnet's adversaries (`actors/adversary.rs`) take other paths here: a hash-copier commits
//! another miner's hash as soon as it appears and later serves that miner's shard under its own
//! signature; a shard-thief and a replayer commit someone else's shard as their own; a garbage
//! server, a slow server and an ssrf miner commit a location that is the attack. Validators
//! must pay none of them.

use connito::chain::ErrorKind;
use connito::config::Role;
use connito::phase::{Phase, PhaseClock};
use connito::store::{Store, key};
use connito::submission::{Commitment, Manifest, SignedManifest};
use connito::tensors::{Hash32, blake2b_256};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::context::{Ctx, Tick, TrainRecord};
use crate::daemon::Target;
use crate::http::{self, Response};

pub struct Publisher;

pub enum PublisherMsg {
    Tick(Tick),
    Crash,
}

pub struct PublisherArgs {
    pub ctx: Ctx,
    pub role: Role,
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
        _m: ActorRef<Self::Msg>,
        args: PublisherArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _m: ActorRef<Self::Msg>,
        msg: PublisherMsg,
        st: &mut PublisherArgs,
    ) -> Result<(), ActorProcessingErr> {
        let PublisherMsg::Tick(t) = msg else {
            panic!("publisher: crash requested")
        };
        let cycle = t.pos.cycle;
        let k = key(&[cycle]);
        let mut rec: TrainRecord = match st.ctx.store.get("trainer", &k)? {
            Some(r) => r,
            None if st.role == Role::Copier => TrainRecord::default(),
            None => return Ok(()),
        };
        let before = rec.clone();
        match (t.pos.phase, st.role) {
            (Phase::MinerCommit1, Role::Copier) if !rec.hash_committed => {
                copy_hash(st, &mut rec, &t.at).await?;
            }
            (Phase::MinerCommit1, Role::ShardThief | Role::Replayer) if !rec.hash_committed => {
                take_shard(st, &mut rec, cycle).await?;
            }
            (Phase::MinerCommit1, _) if !rec.hash_committed => {
                let Some(shard) = rec.shard else {
                    return Ok(()); // sat this cycle out (localnet's stale adversary)
                };
                commit_own(&st.ctx, st.group, &mut rec, cycle, shard).await;
            }
            (Phase::MinerCommit2, Role::Copier)
                if rec.hash_committed && !rec.location_committed =>
            {
                copy_location(st, &mut rec, cycle, &t.at).await?;
            }
            (Phase::MinerCommit2, _) if rec.hash_committed && !rec.location_committed => {
                let hash = rec.committed.ok_or("hash committed but not recorded")?;
                let url = location_url(st, cycle).await?;
                let c = Commitment::Location {
                    group: st.group,
                    hash,
                    version: rec.global_version,
                    url,
                };
                rec.location_committed = commit(&st.ctx, c, "location").await;
            }
            _ => {}
        }
        if rec != before {
            st.ctx.store.put_durable("trainer", &k, &rec)?;
        }
        Ok(())
    }
}

/// Signs this miner's manifest of `shard` and commits its binding hash.
async fn commit_own(ctx: &Ctx, group: u16, rec: &mut TrainRecord, cycle: u64, shard: Hash32) {
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

/// The hash-copier: commits its target's hash as soon as it appears.
async fn copy_hash(
    st: &PublisherArgs,
    rec: &mut TrainRecord,
    at: &connito::chain::BlockInfo,
) -> Result<(), ActorProcessingErr> {
    let target = st.target.as_ref().ok_or("copier without target")?;
    if let Some(Commitment::Hash { hash, version, .. }) =
        commitment_of(&st.ctx, &target.hotkey, at).await?
    {
        let c = Commitment::Hash {
            group: st.group,
            hash,
            version,
        };
        if commit(&st.ctx, c, "hash").await {
            rec.committed = Some(hash);
            rec.hash_committed = true;
        }
    }
    Ok(())
}

/// The shard-thief (this cycle's shard of its target, one bit changed: only if it can get it
/// while hashes are committed) and the replayer (its target's shard of the previous cycle):
/// commit what they took as their own.
async fn take_shard(
    st: &PublisherArgs,
    rec: &mut TrainRecord,
    cycle: u64,
) -> Result<(), ActorProcessingErr> {
    let target = st.target.as_ref().ok_or("adversary without target")?;
    let from = match st.role {
        Role::ShardThief => cycle,
        _ => match cycle.checked_sub(1) {
            Some(c) => c,
            None => return Ok(()),
        },
    };
    let url = format!("{}/s/{from}/shard", target.url.trim_end_matches('/'));
    let bytes = match http::get(&url, 1 << 30).await {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(daemon = %st.ctx.daemon, cycle, "{}: {url}: {e}", st.role.name());
            return Ok(()); // not served (yet): try next block
        }
    };
    let bytes = match st.role {
        Role::ShardThief => crate::adversary::flip_one_bit(bytes),
        _ => bytes,
    };
    let shard = st.ctx.store.put_blob_bytes(&bytes)?;
    commit_own(&st.ctx, st.group, rec, cycle, shard).await;
    Ok(())
}

/// The hash-copier in MinerCommit2: serves its target's shard under its own signature.
async fn copy_location(
    st: &PublisherArgs,
    rec: &mut TrainRecord,
    cycle: u64,
    at: &connito::chain::BlockInfo,
) -> Result<(), ActorProcessingErr> {
    let ctx = &st.ctx;
    let target = st.target.as_ref().ok_or("copier without target")?;
    if let Some(Commitment::Location {
        hash, version, url, ..
    }) = commitment_of(ctx, &target.hotkey, at).await?
    {
        let victim: SignedManifest =
            serde_json::from_slice(&http::get(&format!("{url}/manifest"), 64 << 10).await?)?;
        let bytes = http::get(&format!("{url}/shard"), 1 << 30).await?;
        let blob = ctx.store.put_blob_bytes(&bytes)?;
        let manifest = Manifest {
            hotkey: ctx.hotkey.public(),
            ..victim.manifest
        };
        rec.signed = Some(SignedManifest::sign(manifest, &ctx.hotkey));
        rec.shard = Some(blob);
        rec.global_version = version;
        let c = Commitment::Location {
            group: st.group,
            hash,
            version,
            url: shard_url(ctx, cycle),
        };
        rec.location_committed = commit(ctx, c, "location").await;
    }
    Ok(())
}

/// Where this miner says its shard is: its own `/s/{cycle}`, except for localnet's garbage
/// server (random bytes), slow server (a tarpit) and ssrf (the validator's own address).
async fn location_url(st: &mut PublisherArgs, cycle: u64) -> Result<String, ActorProcessingErr> {
    Ok(match st.role {
        Role::GarbageServer => format!("{}/g/{cycle}", st.ctx.public_url.trim_end_matches('/')),
        Role::SlowServer => {
            if st.tarpit.is_none() {
                st.tarpit = Some(crate::adversary::tarpit().await?);
            }
            format!("{}/s/{cycle}", st.tarpit.as_deref().unwrap_or_default())
        }
        Role::Ssrf => st.target.as_ref().ok_or("ssrf without target")?.url.clone(),
        _ => shard_url(&st.ctx, cycle),
    })
}

fn shard_url(ctx: &Ctx, cycle: u64) -> String {
    format!("{}/s/{cycle}", ctx.public_url.trim_end_matches('/'))
}

async fn commitment_of(
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
async fn commit(ctx: &Ctx, c: Commitment, step: &'static str) -> bool {
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
    let rec: TrainRecord = store.get("trainer", &key(&[cycle])).ok()??;
    let seen: u64 = store.get("chain", b"last_seen").ok()??;
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
