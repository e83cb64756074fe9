//! The adversaries' commit-phase steps, which a Publisher takes instead of the honest one when
//! its [`super::Strategy`] says so: each hook answers `false` / `None` for an honest miner.

use connito::chain::BlockInfo;
use connito::config::Role;
use connito::store::records::TrainRecord;
use connito::submission::{Commitment, Manifest, SignedManifest};
use ractor::ActorProcessingErr;

use crate::miner::publisher::{PublisherArgs, commit, commit_own, commitment_of, shard_url};
use crate::node::http;

/// MinerCommit1: commits someone else's hash or shard, `true` when this strategy took the step
/// (`false`: commit this miner's own shard).
pub async fn commit_hash(
    st: &PublisherArgs,
    rec: &mut TrainRecord,
    at: &BlockInfo,
    cycle: u64,
) -> Result<bool, ActorProcessingErr> {
    match st.strategy.0 {
        Role::Copier => copy_hash(st, rec, at).await?,
        Role::ShardThief | Role::Replayer => take_shard(st, rec, cycle).await?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// MinerCommit2: the hash-copier's location step, `true` when this strategy took it.
pub async fn commit_location(
    st: &PublisherArgs,
    rec: &mut TrainRecord,
    cycle: u64,
    at: &BlockInfo,
) -> Result<bool, ActorProcessingErr> {
    if st.strategy.0 != Role::Copier {
        return Ok(false);
    }
    copy_location(st, rec, cycle, at).await?;
    Ok(true)
}

/// The hash-copier: commits its target's hash as soon as it appears.
async fn copy_hash(
    st: &PublisherArgs,
    rec: &mut TrainRecord,
    at: &BlockInfo,
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
    let from = match st.strategy.0 {
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
            tracing::debug!(daemon = %st.ctx.daemon, cycle, "{}: {url}: {e}", st.strategy.name());
            return Ok(()); // not served (yet): try next block
        }
    };
    let bytes = match st.strategy.0 {
        Role::ShardThief => super::flip_one_bit(bytes),
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
    at: &BlockInfo,
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

/// The location an adversary commits instead of its own `/s/{cycle}` (`None`: its own): a
/// garbage server's random bytes, a slow server's tarpit, ssrf's the validator's own address.
pub async fn location(
    st: &mut PublisherArgs,
    cycle: u64,
) -> Result<Option<String>, ActorProcessingErr> {
    Ok(Some(match st.strategy.0 {
        Role::GarbageServer => format!("{}/g/{cycle}", st.ctx.public_url.trim_end_matches('/')),
        Role::SlowServer => {
            if st.tarpit.is_none() {
                st.tarpit = Some(super::tarpit().await?);
            }
            format!("{}/s/{cycle}", st.tarpit.as_deref().unwrap_or_default())
        }
        Role::Ssrf => st.target.as_ref().ok_or("ssrf without target")?.url.clone(),
        _ => return Ok(None),
    }))
}
