//! ChainSync: owns the chain connection. Polls for new finalized blocks, records the miners'
//! commitments at the blocks the wire profile reads them at (connito: while this cycle's miner
//! commit windows are open; sn102: at the block after each window, miners by the role gate),
//! sets the chain gauges, and ticks every actor of its daemon with the block every
//! read of that tick is pinned to. A chain outage is logged and retried; it never fails the
//! actor.

use std::collections::{BTreeMap, BTreeSet};

use connito::chain::BlockInfo;
use connito::protocol::profile::{CommitterRole, committer_role};
use connito::protocol::wire::CommitRead;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::node::context::{Ctx, Tick};
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
                if st.args.read_commitments {
                    let reads = ctx
                        .wire
                        .commit_reads(&ctx.clock, st.last_block, head.number);
                    if let Err(e) = read_commitments(ctx, &head, &reads).await {
                        // Not read: this block is polled again (nothing ticks without it).
                        tracing::warn!(daemon = %ctx.daemon, "reading commitments: {e}");
                        return Ok(());
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

/// The commitments of every read due, one chain read per block (the profile says at which
/// blocks and what each record adds to the round's observations).
async fn read_commitments(
    ctx: &Ctx,
    head: &BlockInfo,
    reads: &[CommitRead],
) -> Result<(), ActorProcessingErr> {
    let mut at_block: BTreeMap<u64, Vec<&CommitRead>> = BTreeMap::new();
    for r in reads {
        at_block.entry(r.at).or_default().push(r);
    }
    for (number, reads) in at_block {
        let at = match number == head.number {
            true => *head,
            false => BlockInfo {
                number,
                hash: ctx.chain.block_hash(number).await?,
            },
        };
        let records = ctx.chain.commitments(ctx.netuid, &at).await?;
        let miners = miner_hotkeys(ctx, &at).await?;
        for read in reads {
            for r in records
                .iter()
                .filter(|r| miners.as_ref().is_none_or(|m| m.contains(&r.hotkey)))
            {
                let k = (read.cycle, r.uid);
                let prev = ctx.store.get(&COMMITMENTS, &k)?;
                if let Some(n) = ctx.wire.observe(&ctx.clock, read, prev.as_ref(), r) {
                    ctx.store.put(&COMMITMENTS, &k, &n)?;
                }
            }
        }
    }
    Ok(())
}

/// The hotkeys whose commitments are miners' at `at` by the profile's role gate (whitelist and
/// weight age); `None` when the profile has none.
async fn miner_hotkeys(
    ctx: &Ctx,
    at: &BlockInfo,
) -> Result<Option<BTreeSet<[u8; 32]>>, ActorProcessingErr> {
    let Some(whitelist) = ctx.wire.validator_whitelist() else {
        return Ok(None);
    };
    let max_age = ctx.clock.cycle_len();
    let mg = ctx.chain.metagraph(ctx.netuid, at).await?;
    Ok(Some(
        mg.iter()
            .filter(|n| {
                committer_role(&n.hotkey, whitelist, n.last_update, at.number, max_age)
                    == CommitterRole::Miner
            })
            .map(|n| n.hotkey)
            .collect(),
    ))
}
