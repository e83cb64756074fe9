//! Permits, the owner's privileges and the re-registration masks.

use super::tests::{BLOCK, close, input};
use super::*;

#[test]
fn permits_go_to_top_k_stake() {
    let mut inp = input(vec![3.0, 0.0, 5.0, 1.0, 2.0], vec![Vec::new(); 5]);
    inp.params.max_validators = 2;
    assert_eq!(
        epoch(&inp).unwrap().validator_permit,
        vec![true, false, true, false, false]
    );
    inp.params.max_validators = 64; // fewer uids than k: every non-zero stake
    assert_eq!(
        epoch(&inp).unwrap().validator_permit,
        vec![true, false, true, true, true]
    );
    // Equal stakes at the cut: as on chain (stable ascending sort), the higher uid keeps it.
    let mut tie = input(vec![1.0, 1.0, 2.0], vec![Vec::new(); 3]);
    tie.params.max_validators = 2;
    assert_eq!(
        epoch(&tie).unwrap().validator_permit,
        vec![false, true, true]
    );
    // Stake threshold zeroes small stakes before the permits.
    inp.params.stake_threshold = 2.5;
    let out = epoch(&inp).unwrap();
    assert_eq!(out.validator_permit, vec![true, false, true, false, false]);
    assert!(close(&out.stake, &[0.375, 0.0, 0.625, 0.0, 0.0], 1e-12));
}

#[test]
fn bonds_to_a_reregistered_uid_are_dropped() {
    // V0 and V1 both weigh miner 2; V1 held all bonds to miner 2 before.
    let mut inp = input(
        vec![1.0, 1.0, 0.0],
        vec![vec![(2, 1)], vec![(2, 1)], vec![]],
    );
    inp.bonds[1] = vec![(2, 1.0)];
    inp.params.tempo = 10;
    let kept = epoch(&inp).unwrap();
    assert!(close(
        &[kept.bonds[0][0].1, kept.bonds[1][0].1],
        &[0.05, 0.95],
        1e-12
    ));
    // Miner 2 re-registered after the last epoch (block - tempo): the old bonds were the
    // previous holder's, so only this epoch's ΔB remains. Its weights (set before) stay.
    inp.block_at_registration[2] = BLOCK - 5;
    inp.last_update = vec![BLOCK + 1, BLOCK + 1, BLOCK];
    inp.current_block = BLOCK + 1;
    let reset = epoch(&inp).unwrap();
    assert!(close(
        &[reset.bonds[0][0].1, reset.bonds[1][0].1],
        &[0.5, 0.5],
        1e-12
    ));
    // With a known last step block, the mask keys off that instead.
    inp.last_step_block = BLOCK - 5;
    assert_eq!(epoch(&inp).unwrap().bonds, kept.bonds);
}

#[test]
fn owner_uid_is_always_permitted() {
    let mut inp = input(
        vec![0.5, 10.0, 0.0],
        vec![vec![(0, 7), (2, 1)], vec![(2, 1)], vec![]],
    );
    inp.params.stake_threshold = 1.0;
    inp.params.max_validators = 1;
    let out = epoch(&inp).unwrap();
    assert_eq!(out.validator_permit, vec![false, true, false]);
    assert_eq!(out.stake, vec![0.0, 1.0, 0.0]);
    inp.owner_uid = Some(0);
    let out = epoch(&inp).unwrap();
    assert_eq!(out.validator_permit, vec![true, true, false]);
    assert!(close(&out.stake, &[0.5 / 10.5, 10.0 / 10.5, 0.0], 1e-12));
    assert!(out.dividends[0] > 0.0);
}

#[test]
fn previous_permits_mask_this_epoch() {
    // V0 just earned its permit by stake: the chain still masks with the stored permits.
    let mut inp = input(
        vec![9.0, 1.0, 0.0, 0.0],
        vec![vec![(2, 1)], vec![(3, 1)], vec![], vec![]],
    );
    inp.prev_validator_permit = Some(vec![false, true, false, false]);
    let out = epoch(&inp).unwrap();
    assert_eq!(out.validator_permit, vec![true, true, false, false]);
    assert_eq!(out.incentive, vec![0.0, 0.0, 0.0, 1.0]);
    assert_eq!(out.active_stake, vec![0.0, 1.0, 0.0, 0.0]);
    inp.prev_validator_permit = None;
    assert_eq!(epoch(&inp).unwrap().incentive, vec![0.0, 0.0, 1.0, 0.0]);
}
