//! Publisher (miner): in MinerCommit1 sign the shard's manifest and commit its binding hash; in
//! MinerCommit2 commit where the shard is served. The daemon's HTTP server serves
//! `/s/{cycle}/manifest` and `/s/{cycle}/shard` from the store.
//!
//! A copier (localnet's adversary) commits another miner's hash as soon as it appears and later
//! serves that miner's shard under its own signature; validators must reject it.

use connito::chain::ErrorKind;
use connito::config::Role;
use connito::phase::Phase;
use connito::store::{Store, key};
use connito::submission::{Commitment, Manifest, SignedManifest};
use connito::tensors::blake2b_256;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::context::{Ctx, Tick, TrainRecord};
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
    /// For a copier: the hotkey whose commitments it copies.
    pub target: Option<[u8; 32]>,
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
        let ctx = &st.ctx;
        let mut rec: TrainRecord = match ctx.store.get("trainer", &k)? {
            Some(r) => r,
            None if st.role == Role::Copier => TrainRecord::default(),
            None => return Ok(()),
        };
        let before = rec.clone();
        match (t.pos.phase, st.role) {
            (Phase::MinerCommit1, Role::Copier) if !rec.hash_committed => {
                let target = st.target.ok_or("copier without target")?;
                if let Some(Commitment::Hash { hash, version, .. }) =
                    commitment_of(ctx, &target, &t.at).await?
                {
                    let c = Commitment::Hash {
                        group: st.group,
                        hash,
                        version,
                    };
                    if commit(ctx, c, "hash").await {
                        rec.committed = Some(hash);
                        rec.hash_committed = true;
                    }
                }
            }
            (Phase::MinerCommit1, _) if !rec.hash_committed => {
                let shard = rec.shard.ok_or("trained record without shard")?;
                let manifest = Manifest {
                    hotkey: ctx.hotkey.public(),
                    group: st.group,
                    cycle,
                    global_version: rec.global_version,
                    content_hash: shard,
                };
                let signed = SignedManifest::sign(manifest, &ctx.hotkey);
                let hash = signed.manifest.binding_hash();
                let c = Commitment::Hash {
                    group: st.group,
                    hash,
                    version: rec.global_version,
                };
                if commit(ctx, c, "hash").await {
                    rec.signed = Some(signed);
                    rec.committed = Some(hash);
                    rec.hash_committed = true;
                }
            }
            (Phase::MinerCommit2, Role::Copier)
                if rec.hash_committed && !rec.location_committed =>
            {
                let target = st.target.ok_or("copier without target")?;
                if let Some(Commitment::Location {
                    hash, version, url, ..
                }) = commitment_of(ctx, &target, &t.at).await?
                {
                    let victim: SignedManifest = serde_json::from_slice(
                        &http::get(&format!("{url}/manifest"), 64 << 10).await?,
                    )?;
                    let bytes = http::get(&format!("{url}/shard"), 1 << 30).await?;
                    let blob = ctx.store.put_blob_bytes(&bytes)?;
                    let manifest = Manifest {
                        hotkey: ctx.hotkey.public(),
                        ..victim.manifest
                    };
                    rec.signed = Some(SignedManifest::sign(manifest, &ctx.hotkey));
                    rec.shard = Some(blob);
                    rec.global_version = version;
                    let url = shard_url(ctx, cycle);
                    let c = Commitment::Location {
                        group: st.group,
                        hash,
                        version,
                        url,
                    };
                    rec.location_committed = commit(ctx, c, "location").await;
                }
            }
            (Phase::MinerCommit2, _) if rec.hash_committed && !rec.location_committed => {
                let hash = rec.committed.ok_or("hash committed but not recorded")?;
                let url = shard_url(ctx, cycle);
                let c = Commitment::Location {
                    group: st.group,
                    hash,
                    version: rec.global_version,
                    url,
                };
                rec.location_committed = commit(ctx, c, "location").await;
            }
            _ => {}
        }
        if rec != before {
            ctx.store.put_durable("trainer", &k, &rec)?;
        }
        Ok(())
    }
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

/// HTTP routes a miner serves besides `/metrics`.
pub fn route(store: &Store, path: &str) -> Option<Response> {
    let rest = path.strip_prefix("/s/")?;
    let (cycle, what) = rest.split_once('/')?;
    let cycle: u64 = cycle.parse().ok()?;
    let rec: TrainRecord = store.get("trainer", &key(&[cycle])).ok()??;
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
