//! ChainSync: owns the chain connection. Polls for new finalized blocks, records the commitments
//! made in this cycle's miner commit windows (read only while a window is open, and once after
//! it closes), sets the chain gauges, and ticks every actor of its daemon with the block every
//! read of that tick is pinned to. A chain outage is logged and retried; it never fails the
//! actor.

use connito::phase::Phase;
use connito::submission::Commitment;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::node::context::{Ctx, Tick};
use connito::store::records::CommitObs;
use connito::store::tables::{CHAIN, COMMITMENTS, LAST_SEEN};

pub struct ChainSync;

pub enum ChainSyncMsg {
    Poll,
}

pub struct ChainSyncArgs {
    pub ctx: Ctx,
    /// Record miners' commitments (a validator's job; a miner reads only what it needs).
    pub read_commitments: bool,
}

pub struct ChainSyncState {
    args: ChainSyncArgs,
    last_block: u64,
    failures: u32,
}

impl Actor for ChainSync {
    type Msg = ChainSyncMsg;
    type State = ChainSyncState;
    type Arguments = ChainSyncArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ChainSyncArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(args.ctx.poll, || ChainSyncMsg::Poll);
        let last_block = args.ctx.store.get(&CHAIN, &LAST_SEEN)?.unwrap_or(0);
        Ok(ChainSyncState {
            args,
            last_block,
            failures: 0,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: ChainSyncMsg,
        st: &mut ChainSyncState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ChainSyncMsg::Poll => {
                let ctx = &st.args.ctx;
                let head = match ctx.chain.finalized_block().await {
                    Ok(h) => {
                        st.failures = 0;
                        h
                    }
                    Err(e) => {
                        st.failures += 1;
                        if st.failures == 1 || st.failures.is_power_of_two() {
                            tracing::warn!(daemon = %ctx.daemon, "chain unreachable ({} tries): {e}", st.failures);
                        }
                        return Ok(());
                    }
                };
                if head.number <= st.last_block {
                    return Ok(());
                }
                let pos = ctx.clock.position(head.number);
                ctx.metrics
                    .gauge("connito_chain_block_height", &[])
                    .set(head.number as f64);
                ctx.metrics
                    .gauge("connito_chain_cycle", &[])
                    .set(pos.cycle as f64);
                ctx.metrics
                    .gauge("connito_chain_phase", &[])
                    .set(pos.phase.index() as f64);
                if pos.into_phase == 0 || st.last_block == 0 {
                    tracing::info!(daemon = %ctx.daemon, block = head.number, cycle = pos.cycle, phase = pos.phase.name(), "phase");
                }
                let windows = match st.args.read_commitments {
                    true => windows_since(ctx, st.last_block, head.number),
                    false => Default::default(),
                };
                if !windows.is_empty() {
                    // One read at this block serves every window it covers.
                    let records = match ctx.chain.commitments(ctx.netuid, &head).await {
                        Ok(r) => r,
                        Err(e) => {
                            // Not read: this block is polled again (nothing ticks without it).
                            tracing::warn!(daemon = %ctx.daemon, "reading commitments: {e}");
                            return Ok(());
                        }
                    };
                    for cycle in windows {
                        record_commitments(ctx, cycle, &records)?;
                    }
                }
                st.last_block = head.number;
                ctx.store.put(&CHAIN, &LAST_SEEN, &head.number)?;
                // Every actor of the daemon subscribed to this port in its `pre_start`.
                ctx.ticks.send(Tick { pos, at: head });
            }
        }
        Ok(())
    }
}

/// The cycles whose miner commit windows hold a block after `last` up to `head` (at most one
/// cycle back): only then can commitments that matter have changed, so only then are they read.
fn windows_since(ctx: &Ctx, last: u64, head: u64) -> std::collections::BTreeSet<u64> {
    let from = (last + 1).max(head.saturating_sub(ctx.clock.cycle_len()));
    (from..=head)
        .map(|b| ctx.clock.position(b))
        .filter(|p| matches!(p.phase, Phase::MinerCommit1 | Phase::MinerCommit2))
        .map(|p| p.cycle)
        .collect()
}

/// Records miner commitments of `cycle`: a hash set during MinerCommit1, a location set during
/// MinerCommit2 (whose hash must be the one committed first), from the records read at a block.
fn record_commitments(
    ctx: &Ctx,
    cycle: u64,
    records: &[connito::chain::CommitmentRecord],
) -> Result<(), ActorProcessingErr> {
    let clock = &ctx.clock;
    let c1 =
        clock.phase_start(cycle, Phase::MinerCommit1)..clock.phase_end(cycle, Phase::MinerCommit1);
    let c2 =
        clock.phase_start(cycle, Phase::MinerCommit2)..clock.phase_end(cycle, Phase::MinerCommit2);
    for r in records {
        let Ok(c) = Commitment::from_bytes(&r.data) else {
            continue;
        };
        if c.group() == crate::node::context::GLOBAL_GROUP {
            continue;
        }
        let k = (cycle, r.uid);
        let prev = ctx.store.get(&COMMITMENTS, &k)?;
        let next = match (prev, c.url()) {
            (None, None) if c1.contains(&r.block) => Some(CommitObs {
                uid: r.uid,
                hotkey: r.hotkey,
                group: c.group(),
                hash: *c.hash(),
                version: c.version(),
                hash_block: r.block,
                url: None,
                url_block: None,
            }),
            (Some(mut o), Some(url))
                if c2.contains(&r.block) && o.url.is_none() && o.hotkey == r.hotkey =>
            {
                if *c.hash() == o.hash {
                    o.url = Some(url.to_string());
                    o.url_block = Some(r.block);
                    Some(o)
                } else {
                    None // a location for a hash it never committed first: ignored
                }
            }
            _ => None,
        };
        if let Some(n) = next {
            ctx.store.put(&COMMITMENTS, &k, &n)?;
        }
    }
    Ok(())
}
