//! The life of one cycle's weights on chain, as a pure state machine.
//!
//! A validator writes its intent (weights, salt, commit hash) durably *before* sending anything
//! (state [`WeightState::Recorded`]). What it does next depends only on the state ([`action`]),
//! and what it learns moves the state ([`next`]). A submission whose answer was lost with the
//! connection is [`WeightState::Unknown`]: it is resolved against the chain (`WeightCommits`,
//! `LastUpdate`) before anything is sent again, so a cycle's weights land at most once.

use serde::{Deserialize, Serialize};

use super::{ChainError, ErrorKind, Included};

/// How weights reach the chain: `set_weights`, or `commit_weights` then `reveal_weights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightMode {
    SetWeights,
    CommitReveal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// No uid earned a positive weight.
    NoPositiveScores,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum WeightState {
    /// Written ahead; nothing sent yet (or a send failed before reaching the node).
    Recorded,
    /// Sent at block `sent`; the answer was lost. Resolve against the chain before sending
    /// again.
    Unknown {
        sent: u64,
    },
    /// `set_weights` landed at `block`.
    Set {
        block: u64,
    },
    /// The commit landed at `block`; it is revealed in the window the chain gives it
    /// (`WeightCommits`: first and last reveal block).
    Committed {
        block: u64,
    },
    /// The reveal of the commit made at `block` was sent at block `sent`; its answer was lost.
    RevealUnknown {
        block: u64,
        sent: u64,
    },
    /// The reveal landed at `block`.
    Revealed {
        block: u64,
    },
    /// The commit can no longer be revealed (`ExpiredWeightCommit`, or it is gone).
    Expired {
        error: String,
    },
    /// The chain refused the submission (the runtime's error name).
    Rejected {
        error: String,
    },
    Skipped {
        reason: SkipReason,
    },
}

impl WeightState {
    /// Short label for reports and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Unknown { .. } => "unknown",
            Self::Set { .. } => "set",
            Self::Committed { .. } => "committed",
            Self::RevealUnknown { .. } => "reveal_unknown",
            Self::Revealed { .. } => "revealed",
            Self::Expired { .. } => "expired",
            Self::Rejected { .. } => "rejected",
            Self::Skipped { .. } => "skipped",
        }
    }
}

/// The state of a record written before the state machine existed (a `status` string). A record
/// caught mid-flight (`pending`, `committing`) may have been sent: it is resolved against the
/// chain, never sent blindly again.
pub fn from_legacy_status(status: &str, recorded_block: u64) -> WeightState {
    let (head, rest) = match status.split_once(": ") {
        Some((h, r)) => (h, r.to_string()),
        None => (status, String::new()),
    };
    match head {
        "pending" | "committing" => WeightState::Unknown {
            sent: recorded_block,
        },
        "ok" => WeightState::Set {
            block: recorded_block,
        },
        "committed" => WeightState::Committed {
            block: recorded_block,
        },
        "revealed" => WeightState::Revealed {
            block: recorded_block,
        },
        "expired" => WeightState::Expired { error: rest },
        "skipped" => WeightState::Skipped {
            reason: SkipReason::NoPositiveScores,
        },
        _ => WeightState::Rejected {
            error: if rest.is_empty() {
                status.to_string()
            } else {
                rest
            },
        },
    }
}

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightAction {
    /// Send `set_weights` or `commit_weights`.
    Send,
    /// Read the chain to learn what became of a lost submission.
    Resolve,
    /// Send `reveal_weights`.
    Reveal,
    /// Nothing yet (a commit waiting for its reveal epoch).
    Wait,
    /// Nothing ever again.
    Done,
}

/// `reveal_due`: the commit's reveal window has come (and the validator's timing allows it).
pub fn action(state: &WeightState, reveal_due: bool) -> WeightAction {
    match state {
        WeightState::Recorded => WeightAction::Send,
        WeightState::Unknown { .. } | WeightState::RevealUnknown { .. } => WeightAction::Resolve,
        WeightState::Committed { .. } if reveal_due => WeightAction::Reveal,
        WeightState::Committed { .. } => WeightAction::Wait,
        _ => WeightAction::Done,
    }
}

/// What the chain shows about our submission, read when its answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Our commit hash is among the hotkey's `WeightCommits`, committed at `block`.
    CommitFound { block: u64 },
    /// Our uid's `LastUpdate` reached `block`, at or after we sent (weights were set).
    Updated { block: u64 },
    /// Neither, and the transaction's mortal era has passed: it can never land.
    Absent,
    /// Neither yet, but the transaction could still be included: wait.
    Pending,
}

/// Blocks a signed transaction stays valid (its mortal era); clients sign with this period.
pub const MORTAL_PERIOD: u64 = 64;

/// Blocks after `sent` past which a transaction that has not landed never will: its era is
/// anchored at the sender's finalized head when it signed, which may be ahead of the block the
/// record names, so twice the era.
pub const SETTLED_AFTER: u64 = 2 * MORTAL_PERIOD;

/// The state to store *before* sending what `state` calls for (write-ahead: a crash while the
/// submission is in flight leaves a record that is resolved against the chain, never resent
/// blindly): a send becomes `Unknown`, a reveal `RevealUnknown`. `None` for states that send
/// nothing.
pub fn in_flight(state: &WeightState, at: u64) -> Option<WeightState> {
    match state {
        WeightState::Recorded => Some(WeightState::Unknown { sent: at }),
        WeightState::Committed { block } => Some(WeightState::RevealUnknown {
            block: *block,
            sent: at,
        }),
        _ => None,
    }
}

/// What the chain holds that a lost submission could have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evidence {
    /// Block of our commit hash's `WeightCommits` entry, if it is there.
    pub commit: Option<u64>,
    /// Our uid's `LastUpdate` (`set_weights` moves it while commit-reveal is off; Subtensor's
    /// reveal does not).
    pub last_update: Option<u64>,
    /// Our uid's `Weights` row is the vector we sent (as the chain stores it, max-upscaled).
    pub weights_stored: bool,
}

/// What a read at finalized block `finalized` shows about a submission sent at block `sent`.
/// `reveal`: the submission was a reveal (it removes the commit and stores the weights);
/// otherwise a `set_weights` or a commit. An absence is conclusive only once the transaction can
/// no longer land ([`SETTLED_AFTER`]).
pub fn observe(reveal: bool, ev: Evidence, sent: u64, finalized: u64) -> Observed {
    let expired = finalized > sent + SETTLED_AFTER;
    let updated = ev.last_update.filter(|b| *b >= sent);
    match (reveal, ev.commit) {
        (false, Some(block)) => Observed::CommitFound { block },
        (false, None) => match updated {
            Some(block) => Observed::Updated { block },
            None if expired => Observed::Absent,
            None => Observed::Pending,
        },
        (true, None) if ev.weights_stored => Observed::Updated { block: finalized },
        (true, None) if expired => Observed::Absent,
        (true, Some(block)) if expired => Observed::CommitFound { block },
        (true, _) => Observed::Pending,
    }
}

/// An answer that moves the state.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightEvent {
    /// The answer to `set_weights` / `commit_weights` sent at block `at`.
    Sent {
        result: Result<Included, ChainError>,
        at: u64,
    },
    /// The answer to `reveal_weights` sent at block `at`.
    Revealed {
        result: Result<Included, ChainError>,
        at: u64,
    },
    Resolved(Observed),
}

fn refused(e: &ChainError) -> WeightState {
    WeightState::Rejected { error: e.name() }
}

/// The state after `event`. Events that do not apply to a state leave it as it is.
pub fn next(state: &WeightState, mode: WeightMode, event: &WeightEvent) -> WeightState {
    use WeightState as S;
    match (state, event) {
        (S::Recorded, WeightEvent::Sent { result, at }) => match result {
            Ok(inc) => match mode {
                WeightMode::SetWeights => S::Set { block: inc.block },
                WeightMode::CommitReveal => S::Committed { block: inc.block },
            },
            Err(e) => match e.kind() {
                ErrorKind::Transient => S::Recorded,
                ErrorKind::OutcomeUnknown => S::Unknown { sent: *at },
                ErrorKind::Final => refused(e),
            },
        },
        (S::Unknown { .. }, WeightEvent::Resolved(Observed::Pending)) => state.clone(),
        (S::Unknown { .. }, WeightEvent::Resolved(seen)) => match (mode, seen) {
            (WeightMode::CommitReveal, Observed::CommitFound { block }) => {
                S::Committed { block: *block }
            }
            (WeightMode::SetWeights, Observed::Updated { block }) => S::Set { block: *block },
            (_, Observed::Absent) => S::Recorded,
            // Anything else (another submission moved LastUpdate): not conclusive yet.
            _ => state.clone(),
        },
        (S::Committed { block }, WeightEvent::Revealed { result, at }) => match result {
            Ok(inc) => S::Revealed { block: inc.block },
            Err(ChainError::RevealTooEarly) => state.clone(),
            Err(e @ (ChainError::ExpiredWeightCommit | ChainError::NoWeightsCommitFound)) => {
                S::Expired { error: e.name() }
            }
            Err(e) => match e.kind() {
                ErrorKind::Transient => state.clone(),
                ErrorKind::OutcomeUnknown => S::RevealUnknown {
                    block: *block,
                    sent: *at,
                },
                ErrorKind::Final => refused(e),
            },
        },
        (S::RevealUnknown { block, .. }, WeightEvent::Resolved(seen)) => match seen {
            Observed::CommitFound { .. } => S::Committed { block: *block },
            Observed::Updated { block: b } => S::Revealed { block: *b },
            Observed::Pending => state.clone(),
            Observed::Absent => S::Expired {
                error: "commit gone without a reveal".into(),
            },
        },
        _ => state.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(block: u64) -> Result<Included, ChainError> {
        Ok(Included { block })
    }

    fn sent(result: Result<Included, ChainError>) -> WeightEvent {
        WeightEvent::Sent { result, at: 9 }
    }

    #[test]
    fn transitions() {
        use WeightMode::{CommitReveal as CR, SetWeights as SW};
        use WeightState as S;
        let committed = S::Committed { block: 10 };
        let lost = || Err(ChainError::OutcomeUnknown("socket closed".into()));
        let down = || Err(ChainError::Connection("refused".into()));
        let rows: Vec<(S, WeightMode, WeightEvent, S)> = vec![
            (S::Recorded, SW, sent(inc(10)), S::Set { block: 10 }),
            (S::Recorded, CR, sent(inc(10)), committed.clone()),
            (S::Recorded, CR, sent(down()), S::Recorded),
            (S::Recorded, CR, sent(lost()), S::Unknown { sent: 9 }),
            (
                S::Recorded,
                SW,
                sent(Err(ChainError::SettingWeightsTooFast { blocks_left: 3 })),
                S::Rejected {
                    error: "SettingWeightsTooFast".into(),
                },
            ),
            (
                S::Recorded,
                CR,
                sent(Err(ChainError::Module {
                    pallet: "SubtensorModule".into(),
                    error: "TxRateLimitExceeded".into(),
                })),
                S::Rejected {
                    error: "TxRateLimitExceeded".into(),
                },
            ),
            (
                S::Unknown { sent: 9 },
                CR,
                WeightEvent::Resolved(Observed::CommitFound { block: 10 }),
                committed.clone(),
            ),
            (
                S::Unknown { sent: 9 },
                SW,
                WeightEvent::Resolved(Observed::Updated { block: 11 }),
                S::Set { block: 11 },
            ),
            (
                S::Unknown { sent: 9 },
                CR,
                WeightEvent::Resolved(Observed::Absent),
                S::Recorded,
            ),
            // A LastUpdate move says nothing about a commit: keep waiting.
            (
                S::Unknown { sent: 9 },
                CR,
                WeightEvent::Resolved(Observed::Updated { block: 11 }),
                S::Unknown { sent: 9 },
            ),
            (
                committed.clone(),
                CR,
                WeightEvent::Revealed {
                    result: inc(20),
                    at: 15,
                },
                S::Revealed { block: 20 },
            ),
            (
                committed.clone(),
                CR,
                WeightEvent::Revealed {
                    result: Err(ChainError::RevealTooEarly),
                    at: 15,
                },
                committed.clone(),
            ),
            (
                committed.clone(),
                CR,
                WeightEvent::Revealed {
                    result: down(),
                    at: 15,
                },
                committed.clone(),
            ),
            (
                committed.clone(),
                CR,
                WeightEvent::Revealed {
                    result: Err(ChainError::ExpiredWeightCommit),
                    at: 15,
                },
                S::Expired {
                    error: "ExpiredWeightCommit".into(),
                },
            ),
            (
                committed.clone(),
                CR,
                WeightEvent::Revealed {
                    result: lost(),
                    at: 15,
                },
                S::RevealUnknown {
                    block: 10,
                    sent: 15,
                },
            ),
            (
                S::RevealUnknown {
                    block: 10,
                    sent: 15,
                },
                CR,
                WeightEvent::Resolved(Observed::CommitFound { block: 10 }),
                committed.clone(),
            ),
            (
                S::RevealUnknown {
                    block: 10,
                    sent: 15,
                },
                CR,
                WeightEvent::Resolved(Observed::Updated { block: 21 }),
                S::Revealed { block: 21 },
            ),
            (
                S::RevealUnknown {
                    block: 10,
                    sent: 15,
                },
                CR,
                WeightEvent::Resolved(Observed::Absent),
                S::Expired {
                    error: "commit gone without a reveal".into(),
                },
            ),
            (
                S::Unknown { sent: 9 },
                CR,
                WeightEvent::Resolved(Observed::Pending),
                S::Unknown { sent: 9 },
            ),
            // Answers that do not apply leave the state alone.
            (
                S::Set { block: 10 },
                SW,
                sent(inc(12)),
                S::Set { block: 10 },
            ),
            (
                S::Revealed { block: 20 },
                CR,
                WeightEvent::Revealed {
                    result: inc(30),
                    at: 15,
                },
                S::Revealed { block: 20 },
            ),
        ];
        for (from, mode, event, to) in rows {
            assert_eq!(next(&from, mode, &event), to, "{from:?} + {event:?}");
        }
    }

    #[test]
    fn observations() {
        use Observed as O;
        let p = SETTLED_AFTER;
        let ev = |commit, last_update, weights_stored| Evidence {
            commit,
            last_update,
            weights_stored,
        };
        // (reveal, evidence, sent, finalized) -> observed
        let rows = [
            (
                false,
                ev(Some(12), None, false),
                10,
                11,
                O::CommitFound { block: 12 },
            ),
            (
                false,
                ev(None, Some(12), true),
                10,
                13,
                O::Updated { block: 12 },
            ),
            (false, ev(None, Some(9), true), 10, 13, O::Pending),
            (false, ev(None, Some(9), true), 10, 11 + p, O::Absent),
            (false, ev(None, None, false), 10, 10 + p, O::Pending),
            // A reveal: the commit gone and our weights stored, LastUpdate unmoved.
            (
                true,
                ev(None, Some(12), true),
                25,
                31,
                O::Updated { block: 31 },
            ),
            (true, ev(Some(12), Some(12), false), 25, 30, O::Pending),
            (
                true,
                ev(Some(12), Some(12), false),
                25,
                26 + p,
                O::CommitFound { block: 12 },
            ),
            (true, ev(None, Some(12), false), 25, 26 + p, O::Absent),
            (true, ev(None, None, false), 25, 30, O::Pending),
        ];
        for (reveal, e, sent, fin, want) in rows {
            assert_eq!(
                observe(reveal, e, sent, fin),
                want,
                "reveal={reveal} {e:?} sent={sent} finalized={fin}"
            );
        }
    }

    #[test]
    fn legacy_statuses() {
        use WeightState as S;
        let rows = [
            ("pending", S::Unknown { sent: 40 }),
            ("committing", S::Unknown { sent: 40 }),
            ("ok", S::Set { block: 40 }),
            ("committed", S::Committed { block: 40 }),
            ("revealed", S::Revealed { block: 40 }),
            (
                "expired: ExpiredWeightCommit",
                S::Expired {
                    error: "ExpiredWeightCommit".into(),
                },
            ),
            (
                "rejected: SettingWeightsTooFast: 3 more blocks",
                S::Rejected {
                    error: "SettingWeightsTooFast: 3 more blocks".into(),
                },
            ),
            (
                "error: connection: refused",
                S::Rejected {
                    error: "connection: refused".into(),
                },
            ),
            (
                "skipped: no positive scores",
                S::Skipped {
                    reason: SkipReason::NoPositiveScores,
                },
            ),
            (
                "garbage",
                S::Rejected {
                    error: "garbage".into(),
                },
            ),
        ];
        for (status, want) in rows {
            assert_eq!(from_legacy_status(status, 40), want, "{status}");
        }
    }

    #[test]
    fn in_flight_states() {
        use WeightState as S;
        assert_eq!(in_flight(&S::Recorded, 7), Some(S::Unknown { sent: 7 }));
        assert_eq!(
            in_flight(&S::Committed { block: 3 }, 7),
            Some(S::RevealUnknown { block: 3, sent: 7 })
        );
        for s in [
            S::Unknown { sent: 1 },
            S::Set { block: 1 },
            S::Revealed { block: 1 },
        ] {
            assert_eq!(in_flight(&s, 7), None, "{s:?}");
        }
    }

    #[test]
    fn actions() {
        use WeightAction as A;
        use WeightState as S;
        let committed = S::Committed { block: 1 };
        let rows = [
            (S::Recorded, false, A::Send),
            (S::Unknown { sent: 9 }, false, A::Resolve),
            (committed.clone(), false, A::Wait),
            (committed, true, A::Reveal),
            (S::RevealUnknown { block: 1, sent: 2 }, true, A::Resolve),
            (S::Set { block: 1 }, true, A::Done),
            (S::Revealed { block: 1 }, true, A::Done),
            (S::Expired { error: "x".into() }, true, A::Done),
            (S::Rejected { error: "x".into() }, true, A::Done),
            (
                S::Skipped {
                    reason: SkipReason::NoPositiveScores,
                },
                false,
                A::Done,
            ),
        ];
        for (state, due, want) in rows {
            assert_eq!(action(&state, due), want, "{state:?} due={due}");
        }
    }

    #[test]
    fn error_names_and_kinds() {
        assert_eq!(
            ChainError::SettingWeightsTooFast { blocks_left: 2 }.name(),
            "SettingWeightsTooFast"
        );
        assert_eq!(ChainError::RevealTooEarly.name(), "RevealTooEarly");
        assert_eq!(
            ChainError::Connection("x".into()).kind(),
            ErrorKind::Transient
        );
        assert_eq!(
            ChainError::OutcomeUnknown("x".into()).kind(),
            ErrorKind::OutcomeUnknown
        );
        assert_eq!(ChainError::RevealTooEarly.kind(), ErrorKind::Final);
    }
}
