//! When a subnet's epoch runs, and which epoch a block is in: Subtensor's two clocks.
//!
//! - [`EpochClock::Stateful`] (spec 423 onwards, today's chain): the chain keeps `LastEpochBlock`,
//!   `PendingEpochAt`, `SubnetEpochIndex` and `BlocksSinceLastStep` per subnet ([`EpochState`]).
//!   Each block `BlocksSinceLastStep` grows by one, then an epoch fires when an owner trigger is
//!   due (`PendingEpochAt > 0 && block >= PendingEpochAt`), or when more than [`MAX_TEMPO`]
//!   blocks passed without a step, or when `block - LastEpochBlock >= tempo`. Firing sets
//!   `LastEpochBlock = block`, clears the trigger, counts `SubnetEpochIndex` up and resets
//!   `BlocksSinceLastStep`. A commit is tagged with the counter (plus one when an epoch is due
//!   in the same block, Subtensor's `current_epoch_with_lookahead`).
//! - [`EpochClock::Legacy`] (spec 365, December 2025): a pure function of the block. The epoch
//!   fires where `blocks_until_next_epoch = tempo - (block + netuid + 1) % (tempo + 1)` is 0, so
//!   when `(block + netuid + 1) % (tempo + 1) == tempo`, and a block's epoch index is
//!   `(block + netuid + 1) / (tempo + 1)`: the epoch fires in the last block of an index, and
//!   the index counts up in the block after.
//!
//! Everything here is a function of its arguments (the state, the block, the subnet), so the
//! dev chain runs it block by block and a client runs it forward from a head it read.

use serde::{Deserialize, Serialize};

/// Subtensor's `MAX_TEMPO`: a subnet that has not stepped for more than this many blocks steps
/// on the next block (stateful clock).
pub const MAX_TEMPO: u64 = 50_400;

/// Which of Subtensor's epoch clocks a chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochClock {
    /// Spec 365: epochs every `tempo + 1` blocks, offset by the netuid.
    Legacy,
    /// Spec 423 onwards: epochs every `tempo` blocks from `LastEpochBlock`, owner triggers.
    #[default]
    Stateful,
}

/// One subnet's clock storage (stateful clock; the legacy clock keeps only
/// `blocks_since_last_step` and `last_epoch_block` for the record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EpochState {
    /// `LastEpochBlock`: the block the last epoch fired at.
    pub last_epoch_block: u64,
    /// `PendingEpochAt`: an owner trigger's block, 0 for none.
    pub pending_epoch_at: u64,
    /// `SubnetEpochIndex`: epochs fired so far (`epochs` in dev chain states of before).
    #[serde(alias = "epochs")]
    pub epoch_index: u64,
    /// `BlocksSinceLastStep`: blocks since the last epoch, this one included.
    pub blocks_since_last_step: u64,
}

/// The subnet a clock runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub netuid: u16,
    /// `Tempo`; 0 means the subnet never steps.
    pub tempo: u64,
}

impl Subnet {
    /// `block + netuid + 1`, the legacy clock's shifted block.
    fn shifted(self, block: u64) -> u64 {
        block.saturating_add(u64::from(self.netuid) + 1)
    }
}

impl EpochClock {
    /// Whether the epoch is due at `block`, given the state after this block's
    /// `BlocksSinceLastStep` increment (Subtensor's `should_run_epoch`).
    pub fn due(self, s: &EpochState, subnet: Subnet, block: u64) -> bool {
        if subnet.tempo == 0 {
            return false;
        }
        match self {
            Self::Legacy => subnet.shifted(block) % (subnet.tempo + 1) == subnet.tempo,
            Self::Stateful => {
                (s.pending_epoch_at > 0 && block >= s.pending_epoch_at)
                    || s.blocks_since_last_step > MAX_TEMPO
                    || block.saturating_sub(s.last_epoch_block) >= subnet.tempo
            }
        }
    }

    /// Block `block`'s start (`on_initialize`): counts the block, and fires the epoch if due.
    /// Returns whether it fired (the caller then runs Yuma).
    pub fn on_initialize(self, s: &mut EpochState, subnet: Subnet, block: u64) -> bool {
        s.blocks_since_last_step = s.blocks_since_last_step.saturating_add(1);
        if !self.due(s, subnet, block) {
            return false;
        }
        s.blocks_since_last_step = 0;
        s.last_epoch_block = block;
        s.pending_epoch_at = 0;
        s.epoch_index = match self {
            Self::Legacy => self.epoch_index(s, subnet, block),
            Self::Stateful => s.epoch_index.saturating_add(1),
        };
        true
    }

    /// The epoch a transaction in `block` is in (state after the block's `on_initialize`): what a
    /// commit is tagged with and what a reveal is checked against.
    pub fn epoch_index(self, s: &EpochState, subnet: Subnet, block: u64) -> u64 {
        match self {
            Self::Legacy => subnet
                .shifted(block)
                .checked_div(subnet.tempo + 1)
                .unwrap_or(0),
            Self::Stateful => s.epoch_index + u64::from(self.due(s, subnet, block)),
        }
    }

    /// `SubnetInfoRuntimeApi_get_next_epoch_start_block`: `None` for tempo 0; otherwise the
    /// automatic next epoch, or the owner trigger if it is sooner. The legacy clock (which has
    /// no such API) answers its next firing block after `block`.
    pub fn next_epoch_start_block(self, s: &EpochState, subnet: Subnet, block: u64) -> Option<u64> {
        if subnet.tempo == 0 {
            return None;
        }
        Some(match self {
            Self::Legacy => {
                let until = subnet.tempo - subnet.shifted(block) % (subnet.tempo + 1);
                block + if until == 0 { subnet.tempo + 1 } else { until }
            }
            Self::Stateful => {
                let auto = s.last_epoch_block.saturating_add(subnet.tempo);
                match s.pending_epoch_at {
                    0 => auto,
                    p => auto.min(p),
                }
            }
        })
    }

    /// The next block after `head` at which the epoch fires with no new trigger (stateful; `s`
    /// is the state at `head`): the first of the cadence, the pending trigger and the
    /// [`MAX_TEMPO`] net.
    fn next_fire(s: &EpochState, subnet: Subnet, head: u64) -> Option<u64> {
        let forced = head + MAX_TEMPO.saturating_sub(s.blocks_since_last_step) + 1;
        let next = Self::Stateful
            .next_epoch_start_block(s, subnet, head)?
            .min(forced);
        Some(next.max(head + 1))
    }

    /// The first and last block of epoch `epoch`, as seen from `head` (state `s` after `head`'s
    /// start) if no owner trigger comes in between. `None` when the subnet never steps, when
    /// (on the stateful clock, whose state does not keep the past) `epoch` ended before `head`,
    /// or when its blocks are past `u64`. Closed-form: no loop over the epochs between.
    pub fn epoch_blocks(
        self,
        s: &EpochState,
        subnet: Subnet,
        head: u64,
        epoch: u64,
    ) -> Option<(u64, u64)> {
        if subnet.tempo == 0 {
            return None;
        }
        if self == Self::Legacy {
            let period = subnet.tempo + 1;
            let first = (epoch.saturating_mul(period)).saturating_sub(u64::from(subnet.netuid) + 1);
            let next = (epoch.saturating_add(1).saturating_mul(period))
                .saturating_sub(u64::from(subnet.netuid) + 1);
            return Some((first, next.saturating_sub(1).max(first)));
        }
        let index = self.epoch_index(s, subnet, head);
        if epoch < index {
            return None;
        }
        // An epoch due at `head` but not yet fired (deferred) counts as begun at `head`.
        let (state, begun) = match self.due(s, subnet, head) {
            true => (fired(s, head), head),
            false => (*s, s.last_epoch_block),
        };
        let next = Self::next_fire(&state, subnet, begun.max(head))?;
        if epoch == index {
            return Some((begun, next - 1));
        }
        // From the next firing on, epochs are `tempo` apart (or MAX_TEMPO + 1, the net's).
        let period = subnet.tempo.min(MAX_TEMPO + 1);
        let first = next.checked_add((epoch - index - 1).checked_mul(period)?)?;
        Some((first, first.checked_add(period)? - 1))
    }
}

/// The state right after an epoch fired at `block` (the counter aside).
fn fired(s: &EpochState, block: u64) -> EpochState {
    EpochState {
        last_epoch_block: block,
        pending_epoch_at: 0,
        blocks_since_last_step: 0,
        ..*s
    }
}

#[cfg(test)]
#[path = "epoch_clock_tests.rs"]
mod tests;
