use super::*;

const LEGACY: EpochClock = EpochClock::Legacy;
const STATEFUL: EpochClock = EpochClock::Stateful;

fn net(netuid: u16, tempo: u64) -> Subnet {
    Subnet { netuid, tempo }
}

/// Runs `on_initialize` for blocks `from..=to` and returns the blocks that fired, with the
/// index after each, triggering at `(block, fires_at)` pairs (written after that block's start,
/// as an extrinsic in it would).
fn run(
    clock: EpochClock,
    subnet: Subnet,
    mut s: EpochState,
    from: u64,
    to: u64,
    triggers: &[(u64, u64)],
) -> (Vec<(u64, u64)>, EpochState) {
    let mut fired = vec![];
    for b in from..=to {
        if clock.on_initialize(&mut s, subnet, b) {
            fired.push((b, s.epoch_index));
        }
        for &(at, fires_at) in triggers {
            if at == b {
                s.pending_epoch_at = fires_at;
            }
        }
    }
    (fired, s)
}

#[test]
fn the_legacy_clock_fires_where_blocks_until_next_epoch_is_zero() {
    // Subtensor spec 365: should_run_epoch = blocks_until_next_epoch(netuid, tempo, block) == 0,
    // with blocks_until_next_epoch = tempo - (block + netuid + 1) % (tempo + 1). Subtensor's own
    // table: tempo 1 netuid 0 -> 0, 2, 4; tempo 100 netuid 0 -> 99; tempo 100 netuid 1 -> 98.
    let cases: &[(u16, u64, &[u64])] = &[
        (0, 1, &[0, 2, 4, 6, 8]),
        (0, 100, &[99, 200, 301]),
        (1, 100, &[98, 199, 300]),
        // netuid 102, tempo 10: (b + 103) % 11 == 10 -> b = 6, 17, 28.
        (102, 10, &[6, 17, 28]),
    ];
    for &(netuid, tempo, want) in cases {
        let n = net(netuid, tempo);
        let (fired, _) = run(LEGACY, n, EpochState::default(), 0, 310, &[]);
        let blocks: Vec<u64> = fired.iter().map(|f| f.0).take(want.len()).collect();
        assert_eq!(blocks, want, "netuid {netuid} tempo {tempo}");
        for (b, _) in fired {
            let until = tempo - (b + u64::from(netuid) + 1) % (tempo + 1);
            assert_eq!(until, 0, "block {b}");
            // The epoch fires in the last block of its index; the next block starts the next.
            let idx = LEGACY.epoch_index(&EpochState::default(), n, b);
            assert_eq!(
                LEGACY.epoch_index(&EpochState::default(), n, b + 1),
                idx + 1
            );
            assert_eq!(
                LEGACY
                    .epoch_blocks(&EpochState::default(), n, b, idx)
                    .unwrap()
                    .1,
                b
            );
        }
    }
}

#[test]
fn the_legacy_epoch_index_is_a_function_of_the_block() {
    let s = EpochState::default();
    let n = net(102, 360);
    for (block, want) in [
        (0, 0),
        (257, 0),
        (258, 1),
        (618, 1),
        (619, 2),
        (7_000_000, 19_390),
    ] {
        assert_eq!(LEGACY.epoch_index(&s, n, block), want, "block {block}");
        assert_eq!(want, (block + 103) / 361);
    }
}

#[test]
fn the_stateful_clock_fires_every_tempo_blocks_from_last_epoch_block() {
    // should_run_epoch: block - LastEpochBlock >= tempo; the period is tempo, not tempo + 1.
    let s = EpochState {
        last_epoch_block: 100,
        ..Default::default()
    };
    let (fired, end) = run(STATEFUL, net(102, 10), s, 101, 135, &[]);
    assert_eq!(fired, vec![(110, 1), (120, 2), (130, 3)]);
    assert_eq!(end.last_epoch_block, 130);
    assert_eq!(end.blocks_since_last_step, 5);
    assert_eq!(end.pending_epoch_at, 0);
}

#[test]
fn an_owner_trigger_fires_at_its_block_and_restarts_the_cadence_from_there() {
    // trigger_epoch in block 103 writes PendingEpochAt = 103 + AdminFreezeWindow (10) = 113;
    // the epoch fires in block 113's on_initialize, and the next automatic one at 113 + tempo.
    let s = EpochState {
        last_epoch_block: 100,
        ..Default::default()
    };
    let (fired, end) = run(STATEFUL, net(7, 360), s, 101, 500, &[(103, 113)]);
    assert_eq!(fired, vec![(113, 1), (473, 2)]);
    assert_eq!(end.pending_epoch_at, 0);
    // A trigger later than the automatic epoch is cleared by it.
    let (fired, end) = run(STATEFUL, net(7, 10), s, 101, 125, &[(101, 115)]);
    assert_eq!(fired, vec![(110, 1), (120, 2)]);
    assert_eq!(end.pending_epoch_at, 0);
}

#[test]
fn a_subnet_that_has_not_stepped_for_more_than_50400_blocks_steps_at_once() {
    // BlocksSinceLastStep > MAX_TEMPO forces an epoch, whatever the tempo says.
    let s = EpochState {
        last_epoch_block: 0,
        blocks_since_last_step: 50_399,
        ..Default::default()
    };
    // Tempo 60000 (u16): the cadence alone would fire at 60000; the net fires when the count
    // reaches 50401, two blocks on.
    let (fired, end) = run(STATEFUL, net(3, 60_000), s, 1000, 1003, &[]);
    assert_eq!(fired, vec![(1001, 1)]);
    assert_eq!(end.blocks_since_last_step, 2);
}

#[test]
fn tempo_zero_never_steps_and_has_no_next_epoch() {
    for clock in [LEGACY, STATEFUL] {
        let (fired, _) = run(clock, net(1, 0), EpochState::default(), 0, 100, &[]);
        assert!(fired.is_empty(), "{clock:?}");
        assert_eq!(
            clock.next_epoch_start_block(&EpochState::default(), net(1, 0), 5),
            None
        );
        assert_eq!(
            clock.epoch_blocks(&EpochState::default(), net(1, 0), 5, 1),
            None
        );
    }
}

#[test]
fn the_next_epoch_start_block_is_the_cadence_or_a_sooner_trigger() {
    let n = net(102, 360);
    let s = |last, pending| EpochState {
        last_epoch_block: last,
        pending_epoch_at: pending,
        ..Default::default()
    };
    // (LastEpochBlock, PendingEpochAt) -> min(LastEpochBlock + tempo, PendingEpochAt if > 0).
    for (last, pending, want) in [(1000, 0, 1360), (1000, 1010, 1010), (1000, 2000, 1360)] {
        assert_eq!(
            STATEFUL.next_epoch_start_block(&s(last, pending), n, 1005),
            Some(want)
        );
    }
    // Legacy: the next block after b where (b + 103) % 361 == 360.
    assert_eq!(LEGACY.next_epoch_start_block(&s(0, 0), n, 258), Some(618));
    assert_eq!(LEGACY.next_epoch_start_block(&s(0, 0), n, 257), Some(618));
    assert_eq!(LEGACY.next_epoch_start_block(&s(0, 0), n, 256), Some(257));
}

#[test]
fn a_commit_in_a_block_where_an_epoch_is_due_is_tagged_with_the_next_epoch() {
    // current_epoch_with_lookahead: SubnetEpochIndex + 1 while an epoch is due but not fired.
    let n = net(1, 10);
    let s = EpochState {
        last_epoch_block: 100,
        epoch_index: 4,
        ..Default::default()
    };
    assert_eq!(STATEFUL.epoch_index(&s, n, 109), 4);
    assert_eq!(STATEFUL.epoch_index(&s, n, 110), 5);
}

#[test]
fn epoch_blocks_from_a_head_follow_each_clock() {
    let n = net(1, 10);
    let s = EpochState {
        last_epoch_block: 100,
        epoch_index: 4,
        blocks_since_last_step: 3,
        ..Default::default()
    };
    // Head 103, epoch 4 began at 100; 5 at 110; 7 at 130.
    assert_eq!(STATEFUL.epoch_blocks(&s, n, 103, 4), Some((100, 109)));
    assert_eq!(STATEFUL.epoch_blocks(&s, n, 103, 5), Some((110, 119)));
    assert_eq!(STATEFUL.epoch_blocks(&s, n, 103, 7), Some((130, 139)));
    // An epoch before the current one is gone from the state.
    assert_eq!(STATEFUL.epoch_blocks(&s, n, 103, 3), None);
    // A pending trigger at 105 moves every later epoch.
    let t = EpochState {
        pending_epoch_at: 105,
        ..s
    };
    assert_eq!(STATEFUL.epoch_blocks(&t, n, 103, 4), Some((100, 104)));
    assert_eq!(STATEFUL.epoch_blocks(&t, n, 103, 6), Some((115, 124)));
    // Legacy, netuid 1 tempo 10: epoch e is blocks e*11-2 ..= e*11+8.
    assert_eq!(LEGACY.epoch_blocks(&s, n, 103, 10), Some((108, 118)));
    assert_eq!(LEGACY.epoch_blocks(&s, n, 103, 0), Some((0, 8)));
}

#[test]
fn epoch_blocks_agree_with_running_the_clock() {
    // The first block of each future epoch, computed from a head, is where on_initialize fires.
    // (The legacy clock's firing block is the last of its index: checked above.)
    for (clock, n) in [
        (STATEFUL, net(102, 7)),
        (STATEFUL, net(0, 1)),
        (STATEFUL, net(5, 360)),
    ] {
        let mut s = EpochState::default();
        let head = 50;
        let (_, at_head) = run(clock, n, s, 1, head, &[]);
        s = at_head;
        let (fired, _) = run(clock, n, s, head + 1, head + 800, &[]);
        for &(b, idx) in &fired {
            let (first, _) = clock.epoch_blocks(&s, n, head, idx).unwrap();
            assert_eq!(first, b, "{clock:?} epoch {idx}");
        }
        for w in fired.windows(2) {
            let (_, last) = clock.epoch_blocks(&s, n, head, w[0].1).unwrap();
            assert_eq!(last, w[1].0 - 1, "{clock:?} epoch {}", w[0].1);
        }
    }
}

#[test]
fn clocks_are_named_in_config_as_legacy_and_stateful() {
    #[derive(Deserialize)]
    struct C {
        clock: EpochClock,
    }
    let c: C = toml::from_str("clock = \"legacy\"").unwrap();
    assert_eq!(c.clock, LEGACY);
    let c: C = toml::from_str("clock = \"stateful\"").unwrap();
    assert_eq!(c.clock, STATEFUL);
    assert!(toml::from_str::<C>("clock = \"tempo\"").is_err());
}

#[test]
fn far_epochs_are_computed_at_once_and_overflow_is_none() {
    let n = net(1, 10);
    let s = EpochState {
        last_epoch_block: 100,
        epoch_index: 4,
        ..Default::default()
    };
    assert_eq!(
        STATEFUL.epoch_blocks(&s, n, 103, 1_000_004),
        Some((10_000_100, 10_000_109))
    );
    assert_eq!(STATEFUL.epoch_blocks(&s, n, 103, u64::MAX), None);
    // A tempo above MAX_TEMPO: epochs come every MAX_TEMPO + 1 blocks (the net).
    let slow = net(1, 60_000);
    let (first, last) = STATEFUL.epoch_blocks(&s, slow, 103, 6).unwrap();
    assert_eq!(last - first + 1, MAX_TEMPO + 1);
}
