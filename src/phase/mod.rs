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
}

#[cfg(test)]
mod tests {
    use super::*;

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
