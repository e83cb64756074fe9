//! The subxt client's reading of Subtensor's two epoch clocks: which clock a runtime runs, the
//! epoch index `weights_params` answers, and `WeightCommits` rows as [`CommitInfo`]s.

use super::*;

fn h(b: u8) -> H256 {
    H256([b; 32])
}

fn stateful(tempo: u64, state: EpochState, head: u64) -> ClockView {
    ClockView {
        clock: EpochClock::Stateful,
        subnet: Subnet { netuid: 102, tempo },
        state,
        head,
    }
}

/// `LastEpochBlock` 100, `SubnetEpochIndex` 5, read at `head` (no trigger pending).
fn after_epoch_5(head: u64) -> EpochState {
    EpochState {
        last_epoch_block: 100,
        pending_epoch_at: 0,
        epoch_index: 5,
        blocks_since_last_step: head - 100,
    }
}

#[test]
fn the_clock_is_stateful_iff_the_runtime_stores_subnet_epoch_index() {
    assert_eq!(clock_of(true), EpochClock::Stateful);
    assert_eq!(clock_of(false), EpochClock::Legacy);
}

#[test]
fn the_clock_is_read_from_the_metadata_of_each_runtime() {
    use crate::chain::substrate::metadata::ChainMetadata;
    let has = |m: &ChainMetadata| m.storage("SubtensorModule", "SubnetEpochIndex").is_some();
    assert_eq!(clock_of(has(ChainMetadata::today())), EpochClock::Stateful);
    assert_eq!(clock_of(has(ChainMetadata::finney())), EpochClock::Legacy);
}

#[test]
fn the_epoch_index_follows_the_clock() {
    let legacy = |tempo, head| ClockView {
        clock: EpochClock::Legacy,
        subnet: Subnet { netuid: 102, tempo },
        state: EpochState::default(),
        head,
    };
    let cases: &[(&str, ClockView, u64)] = &[
        // Legacy: (head + netuid + 1) / (tempo + 1), as before spec 423.
        ("legacy", legacy(12, 1000), 1103 / 13),
        ("legacy, block 0", legacy(12, 0), 103 / 13),
        ("legacy, tempo 360", legacy(360, 7_000_000), 19_390),
        // Stateful: SubnetEpochIndex, plus one where an epoch is due at the head.
        (
            "stateful, mid-epoch",
            stateful(12, after_epoch_5(105), 105),
            5,
        ),
        (
            "stateful, due at head",
            stateful(12, after_epoch_5(112), 112),
            6,
        ),
        (
            "stateful, trigger due",
            stateful(
                12,
                EpochState {
                    pending_epoch_at: 104,
                    ..after_epoch_5(105)
                },
                105,
            ),
            6,
        ),
        ("stateful, tempo 0", stateful(0, after_epoch_5(105), 105), 5),
    ];
    for (what, view, want) in cases {
        assert_eq!(view.epoch_index(), *want, "{what}");
    }
    // The legacy reading is the formula the client used before (one implementation now).
    for head in (0..5000).step_by(7) {
        for (netuid, tempo) in [(102, 12), (1, 360), (0, 1)] {
            let v = ClockView {
                subnet: Subnet { netuid, tempo },
                ..legacy(tempo, head)
            };
            assert_eq!(
                v.epoch_index(),
                (head + u64::from(netuid) + 1) / (tempo + 1)
            );
        }
    }
}

#[test]
fn weight_commit_rows_read_by_the_clock() {
    let pending = EpochState {
        pending_epoch_at: 108,
        ..after_epoch_5(105)
    };
    let deferred = after_epoch_5(112);
    let s = |view, period| CommitRows::Stateful {
        view,
        reveal_period_epochs: period,
    };
    // (what, rows, row, want (commit_block, first_reveal_block, last_reveal_block))
    type Case = (&'static str, CommitRows, CommitRow, (u64, u64, u64));
    let cases: &[Case] = &[
        // Legacy rows carry the window: (hash, commit_block, first, last).
        (
            "legacy",
            CommitRows::Legacy,
            (h(1), 50, 60, 72),
            (50, 60, 72),
        ),
        (
            "legacy, expired",
            CommitRows::Legacy,
            (h(1), 5, 0, 0),
            (5, 0, 0),
        ),
        // Stateful rows: (hash, commit_epoch, commit_block, 0); epochs of tempo 12 from 100.
        (
            "stateful, next epoch",
            s(stateful(12, after_epoch_5(105), 105), 1),
            (h(2), 5, 103, 0),
            (103, 112, 123),
        ),
        (
            "stateful, two epochs on",
            s(stateful(12, after_epoch_5(105), 105), 2),
            (h(2), 5, 103, 0),
            (103, 124, 135),
        ),
        (
            "stateful, reveal epoch is the current one",
            s(stateful(12, after_epoch_5(105), 105), 1),
            (h(3), 4, 95, 0),
            (95, 100, 111),
        ),
        (
            "stateful, reveal epoch over: expired",
            s(stateful(12, after_epoch_5(105), 105), 1),
            (h(4), 3, 80, 0),
            (80, 0, 0),
        ),
        (
            "stateful, period 0",
            s(stateful(12, after_epoch_5(105), 105), 0),
            (h(5), 5, 104, 0),
            (104, 100, 111),
        ),
        (
            "stateful, an owner trigger brings the epoch forward",
            s(stateful(12, pending, 105), 1),
            (h(6), 5, 103, 0),
            (103, 108, 119),
        ),
        (
            "stateful, an epoch due at the head begins there",
            s(stateful(12, deferred, 112), 1),
            (h(7), 5, 106, 0),
            (106, 112, 123),
        ),
        (
            "stateful, a subnet that never steps",
            s(stateful(0, after_epoch_5(105), 105), 1),
            (h(8), 5, 103, 0),
            (103, u64::MAX, u64::MAX),
        ),
        (
            "stateful, far ahead (computed at once)",
            s(stateful(12, after_epoch_5(105), 105), 1 << 40),
            (h(9), 5, 103, 0),
            (103, 100 + 12 * (1 << 40), 99 + 12 * ((1 << 40) + 1)),
        ),
        (
            "stateful, epoch counter at its end",
            s(stateful(12, after_epoch_5(105), 105), 1),
            (h(9), u64::MAX, 103, 0),
            (103, u64::MAX, u64::MAX),
        ),
    ];
    for (what, rows, row, want) in cases {
        let got = rows.commit_info(*row);
        assert_eq!(got.hash, row.0.0, "{what}");
        let got = (
            got.commit_block,
            got.first_reveal_block,
            got.last_reveal_block,
        );
        assert_eq!(got, *want, "{what}");
    }
}

#[test]
fn stateful_windows_are_the_blocks_the_clock_runs_the_reveal_epoch_in() {
    // Run the stateful clock block by block; at each head, a commit made there gets the next
    // epoch's blocks, which the clock run forward from that head confirms.
    let subnet = Subnet {
        netuid: 102,
        tempo: 12,
    };
    let clock = EpochClock::Stateful;
    let mut st = EpochState::default();
    for head in 1..200 {
        clock.on_initialize(&mut st, subnet, head);
        let view = stateful(12, st, head);
        let now = view.epoch_index();
        let rows = CommitRows::Stateful {
            view,
            reveal_period_epochs: 1,
        };
        let got = rows.commit_info((h(1), now, head, 0));
        let (first, last) = (got.first_reveal_block, got.last_reveal_block);
        assert!(
            first > head && last >= first,
            "head {head}: {first}..={last}"
        );
        let mut ahead = st;
        for b in head + 1..=last + 1 {
            clock.on_initialize(&mut ahead, subnet, b);
            let want = match b {
                b if b < first => now,
                b if b <= last => now + 1,
                _ => now + 2,
            };
            assert_eq!(
                clock.epoch_index(&ahead, subnet, b),
                want,
                "head {head} block {b}"
            );
        }
    }
}
