//! The phase clock: cycle and phase from the block number alone (PROTOCOL.md §2).
//!
//! `cycle = block / L` where `L` is the sum of the phase lengths, and the phase is found from
//! `block % L`. No web service, no wall clock: every daemon that sees the same block agrees.

use serde::{Deserialize, Serialize};

/// The nine phases of one cycle, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    Distribute,
    Train,
    MinerCommit1,
    MinerCommit2,
    Submission,
    Validate,
    Merge,
    ValidatorCommit1,
    ValidatorCommit2,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Distribute,
        Phase::Train,
        Phase::MinerCommit1,
        Phase::MinerCommit2,
        Phase::Submission,
        Phase::Validate,
        Phase::Merge,
        Phase::ValidatorCommit1,
        Phase::ValidatorCommit2,
    ];

    /// Position in the cycle, 0..=8 (exported as the `connito_chain_phase` gauge).
    pub fn index(self) -> usize {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Distribute => "distribute",
            Phase::Train => "train",
            Phase::MinerCommit1 => "miner_commit1",
            Phase::MinerCommit2 => "miner_commit2",
            Phase::Submission => "submission",
            Phase::Validate => "validate",
            Phase::Merge => "merge",
            Phase::ValidatorCommit1 => "validator_commit1",
            Phase::ValidatorCommit2 => "validator_commit2",
        }
    }
}

/// Phase lengths in blocks, in the order of [`Phase::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseLengths {
    pub distribute: u64,
    pub train: u64,
    pub miner_commit1: u64,
    pub miner_commit2: u64,
    pub submission: u64,
    pub validate: u64,
    pub merge: u64,
    pub validator_commit1: u64,
    pub validator_commit2: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhaseError {
    #[error("phase {0} has length 0; every phase needs at least one block")]
    ZeroLength(&'static str),
}

impl PhaseLengths {
    /// The reference lengths (500 blocks of 12 s).
    pub fn reference() -> Self {
        Self {
            distribute: 20,
            train: 300,
            miner_commit1: 10,
            miner_commit2: 10,
            submission: 80,
            validate: 10,
            merge: 50,
            validator_commit1: 10,
            validator_commit2: 10,
        }
    }

    /// Scaled down for localnet: 60 blocks.
    pub fn localnet() -> Self {
        Self {
            distribute: 2,
            train: 30,
            miner_commit1: 3,
            miner_commit2: 3,
            submission: 10,
            validate: 2,
            merge: 6,
            validator_commit1: 2,
            validator_commit2: 2,
        }
    }

    fn as_array(&self) -> [u64; 9] {
        [
            self.distribute,
            self.train,
            self.miner_commit1,
            self.miner_commit2,
            self.submission,
            self.validate,
            self.merge,
            self.validator_commit1,
            self.validator_commit2,
        ]
    }

    pub fn validate(&self) -> Result<(), PhaseError> {
        for (len, phase) in self.as_array().iter().zip(Phase::ALL) {
            if *len == 0 {
                return Err(PhaseError::ZeroLength(phase.name()));
            }
        }
        Ok(())
    }

    /// Blocks in one cycle (`L`).
    pub fn cycle_len(&self) -> u64 {
        self.as_array().iter().sum()
    }

    /// First block offset (within a cycle) of `phase`.
    pub fn offset(&self, phase: Phase) -> u64 {
        self.as_array()[..phase.index()].iter().sum()
    }

    pub fn len_of(&self, phase: Phase) -> u64 {
        self.as_array()[phase.index()]
    }
}

/// Where a block falls in the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub block: u64,
    pub cycle: u64,
    pub phase: Phase,
    /// Blocks already spent in this phase (0 on its first block).
    pub into_phase: u64,
    /// Blocks left in this phase after this one.
    pub left_in_phase: u64,
}

/// The phase clock. Construct with validated lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseClock {
    lengths: PhaseLengths,
}

impl PhaseClock {
    pub fn new(lengths: PhaseLengths) -> Result<Self, PhaseError> {
        lengths.validate()?;
        Ok(Self { lengths })
    }

    pub fn lengths(&self) -> &PhaseLengths {
        &self.lengths
    }

    pub fn cycle_len(&self) -> u64 {
        self.lengths.cycle_len()
    }

    pub fn position(&self, block: u64) -> Position {
        let l = self.cycle_len();
        let cycle = block / l;
        let mut off = block % l;
        for phase in Phase::ALL {
            let len = self.lengths.len_of(phase);
            if off < len {
                return Position {
                    block,
                    cycle,
                    phase,
                    into_phase: off,
                    left_in_phase: len - off - 1,
                };
            }
            off -= len;
        }
        unreachable!("offset below cycle length always lands in a phase")
    }

    /// First block of `phase` in `cycle`.
    pub fn phase_start(&self, cycle: u64, phase: Phase) -> u64 {
        cycle * self.cycle_len() + self.lengths.offset(phase)
    }

    /// First block after `phase` of `cycle` ends.
    pub fn phase_end(&self, cycle: u64, phase: Phase) -> u64 {
        self.phase_start(cycle, phase) + self.lengths.len_of(phase)
    }

    /// Whether a miner may serve its `cycle` shard when the newest finalized block it saw is
    /// `seen`: only once its hash is committed and MinerCommit1 has closed, so no one can take
    /// the shard and commit it as its own in time.
    pub fn shard_servable(&self, cycle: u64, seen: u64, hash_committed: bool) -> bool {
        hash_committed && seen >= self.phase_end(cycle, Phase::MinerCommit1)
    }

    /// The round a validator stage should work on at `now`: the oldest of the previous cycle
    /// and the current one (once its Submission phase opened) that `done` says is unfinished.
    /// A round not finished in its own cycle is finished late, never dropped.
    pub fn round_due(&self, now: Position, done: impl Fn(u64) -> bool) -> Option<u64> {
        let opened = now.phase >= Phase::Submission;
        let current = opened.then_some(now.cycle);
        let previous = now.cycle.checked_sub(1);
        [previous, current]
            .into_iter()
            .flatten()
            .find(|c| !done(*c))
    }

    /// Whether intake of round `cycle` must stop at block `block`: its own Submission phase has
    /// ended (a late round has no such deadline; its fetches' own timeouts bound it).
    pub fn intake_deadline_passed(&self, cycle: u64, started_late: bool, block: u64) -> bool {
        !started_late && block >= self.phase_end(cycle, Phase::Submission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_served_only_after_commit1_closed_and_the_hash_committed() {
        let c = PhaseClock::new(PhaseLengths::localnet()).unwrap();
        let end1 = c.phase_end(3, Phase::MinerCommit1);
        let rows = [
            (end1 - 1, true, false),
            (end1, true, true),
            (end1 + 100, true, true),
            (end1 + 100, false, false),
            (c.phase_start(3, Phase::Train), true, false),
        ];
        for (seen, committed, want) in rows {
            assert_eq!(
                c.shard_servable(3, seen, committed),
                want,
                "{seen} {committed}"
            );
        }
    }

    #[test]
    fn the_oldest_unfinished_round_is_due() {
        let c = PhaseClock::new(PhaseLengths::localnet()).unwrap();
        let at = |cycle, phase| c.position(c.phase_start(cycle, phase));
        let none = |_: u64| false;
        let all = |_: u64| true;
        let only = |k: u64| move |x: u64| x != k;
        type Row<'a> = (Position, &'a dyn Fn(u64) -> bool, Option<u64>);
        let rows: [Row; 6] = [
            (at(5, Phase::Train), &none, Some(4)),
            (at(5, Phase::Train), &only(5), None),
            (at(5, Phase::Submission), &only(5), Some(5)),
            (at(5, Phase::Merge), &none, Some(4)),
            (at(5, Phase::Merge), &all, None),
            (at(0, Phase::Train), &none, None),
        ];
        for (now, done, want) in rows {
            assert_eq!(c.round_due(now, done), want, "{now:?}");
        }
        assert_eq!(c.round_due(at(0, Phase::Validate), none), Some(0));
    }

    #[test]
    fn intake_stops_at_the_end_of_its_submission_phase_unless_late() {
        let c = PhaseClock::new(PhaseLengths::localnet()).unwrap();
        let end = c.phase_end(2, Phase::Submission);
        assert!(!c.intake_deadline_passed(2, false, end - 1));
        assert!(c.intake_deadline_passed(2, false, end));
        assert!(!c.intake_deadline_passed(2, true, end + 500));
    }

    #[test]
    fn reference_cycle_is_500_blocks() {
        assert_eq!(PhaseLengths::reference().cycle_len(), 500);
    }

    #[test]
    fn phases_tile_the_cycle_in_order() {
        let clock = PhaseClock::new(PhaseLengths::reference()).unwrap();
        let mut seen = vec![];
        for b in 1000..1500 {
            let p = clock.position(b);
            assert_eq!(p.cycle, 2);
            if seen.last() != Some(&p.phase) {
                assert_eq!(p.into_phase, 0, "a phase starts at offset 0");
                seen.push(p.phase);
            }
        }
        assert_eq!(seen, Phase::ALL.to_vec());
        let p = clock.position(1000 + 20);
        assert_eq!(
            (p.phase, p.into_phase, p.left_in_phase),
            (Phase::Train, 0, 299)
        );
        assert_eq!(clock.position(1499).phase, Phase::ValidatorCommit2);
        assert_eq!(clock.position(1500).cycle, 3);
    }

    #[test]
    fn phase_start_and_end_agree_with_position() {
        let clock = PhaseClock::new(PhaseLengths::localnet()).unwrap();
        for phase in Phase::ALL {
            let s = clock.phase_start(5, phase);
            assert_eq!(clock.position(s).phase, phase);
            assert_eq!(clock.position(s).cycle, 5);
            let e = clock.phase_end(5, phase);
            assert_ne!(clock.position(e).phase, phase);
            assert_eq!(clock.position(e - 1).phase, phase);
        }
    }

    #[test]
    fn zero_length_phase_is_rejected() {
        let mut l = PhaseLengths::localnet();
        l.merge = 0;
        assert_eq!(PhaseClock::new(l), Err(PhaseError::ZeroLength("merge")));
    }
}
