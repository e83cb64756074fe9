//! Property and example tests of one epoch.

use super::*;

pub(super) const BLOCK: u64 = 1000;

/// All uids registered at block 0 and updated at `BLOCK`, no previous bonds.
pub(super) fn input(stake: Vec<f64>, weights: Vec<Vec<(u16, u16)>>) -> EpochInput {
    let n = stake.len();
    EpochInput::new(
        stake,
        weights,
        vec![Vec::new(); n],
        vec![BLOCK; n],
        vec![0; n],
        BLOCK,
        YumaParams::default(),
    )
}

pub(super) fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// Deterministic xorshift for generated graphs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, k: u64) -> u64 {
        self.next() % k
    }
}

/// `v` validators (distinct stakes) followed by `m` miners; dense-ish random weights and bonds.
fn random_graph(seed: u64, v: usize, m: usize) -> EpochInput {
    let mut rng = Rng(seed);
    let n = v + m;
    let stake: Vec<f64> = (0..n)
        .map(|i| {
            if i < v {
                10.0 + (i * 7 + 3) as f64
            } else {
                0.0
            }
        })
        .collect();
    let mut inp = input(stake, vec![Vec::new(); n]);
    for i in 0..v {
        for j in v..n {
            if rng.below(4) != 0 {
                inp.weights[i].push((j as u16, rng.below(65536) as u16));
                inp.bonds[i].push((j as u16, rng.below(1000) as f64 / 1000.0));
            }
        }
    }
    inp
}

#[test]
fn incentive_sums_to_one_or_is_all_zero() {
    for seed in 1..40 {
        let out = epoch(&random_graph(seed, 1 + seed as usize % 5, 6)).unwrap();
        let sum: f64 = out.incentive.iter().sum();
        let all_zero = out.incentive.iter().all(|&x| x == 0.0);
        assert!((sum - 1.0).abs() < 1e-9 || all_zero, "seed {seed}: {sum}");
        let dsum: f64 = out.dividends.iter().sum();
        assert!((dsum - 1.0).abs() < 1e-9 || out.dividends.iter().all(|&x| x == 0.0));
        let outputs = [
            &out.incentive,
            &out.dividends,
            &out.consensus,
            &out.validator_trust,
        ];
        assert!(
            outputs
                .iter()
                .all(|v| v.iter().all(|x| x.is_sign_positive()))
        );
    }
    // Nobody sets weights: nothing to reward, no panic.
    let out = epoch(&input(vec![1.0, 2.0, 0.0], vec![Vec::new(); 3])).unwrap();
    assert!(
        out.incentive
            .iter()
            .chain(&out.dividends)
            .all(|&x| x == 0.0)
    );
    // Active stake all zero (everyone inactive).
    let mut inp = random_graph(7, 3, 3);
    inp.current_block = BLOCK + 6000;
    let out = epoch(&inp).unwrap();
    assert!(out.active_stake.iter().all(|&x| x == 0.0));
    assert!(
        out.incentive
            .iter()
            .chain(&out.dividends)
            .all(|&x| x == 0.0)
    );
}

#[test]
fn permuting_uids_permutes_outputs() {
    for (seed, yuma3) in [(3, false), (11, false), (5, true), (21, true)] {
        let inp = {
            let mut i = random_graph(seed, 4, 5);
            i.params.yuma3 = yuma3;
            i.params.bonds_penalty = 0.5;
            i
        };
        let n = inp.stake.len();
        let perm: Vec<usize> = (0..n).map(|i| (i * 4 + 3) % n).collect(); // new uid of old uid i
        let map_rows = |rows: &Vec<Vec<(u16, f64)>>| -> Vec<Vec<(u16, f64)>> {
            let mut out = vec![Vec::new(); n];
            for (i, row) in rows.iter().enumerate() {
                out[perm[i]] = row
                    .iter()
                    .map(|&(j, x)| (perm[j as usize] as u16, x))
                    .collect();
                out[perm[i]].sort_by_key(|e| e.0);
            }
            out
        };
        let mut p = inp.clone();
        for i in 0..n {
            p.stake[perm[i]] = inp.stake[i];
            p.weights[perm[i]] = inp.weights[i]
                .iter()
                .map(|&(j, w)| (perm[j as usize] as u16, w))
                .collect();
        }
        p.bonds = map_rows(&inp.bonds);
        let (a, b) = (epoch(&inp).unwrap(), epoch(&p).unwrap());
        let permute = |v: &[f64]| {
            let mut out = vec![0.0; n];
            (0..n).for_each(|i| out[perm[i]] = v[i]);
            out
        };
        assert!(close(&permute(&a.incentive), &b.incentive, 1e-12));
        assert!(close(&permute(&a.dividends), &b.dividends, 1e-12));
        assert!(close(&permute(&a.consensus), &b.consensus, 1e-12));
        assert!(close(
            &permute(&a.validator_trust),
            &b.validator_trust,
            1e-12
        ));
        let mut sorted_b = b.bonds.clone();
        sorted_b.iter_mut().for_each(|r| r.sort_by_key(|e| e.0));
        let mapped = map_rows(&a.bonds);
        for (ra, rb) in mapped.iter().zip(&sorted_b) {
            let (ja, xa): (Vec<u16>, Vec<f64>) = ra.iter().copied().unzip();
            let (jb, xb): (Vec<u16>, Vec<f64>) = rb.iter().copied().unzip();
            assert_eq!(ja, jb);
            assert!(close(&xa, &xb, 1e-12));
        }
        assert!(a.incentive.iter().any(|&x| x > 0.0));
    }
}

#[test]
fn zero_stake_validator_changes_nothing() {
    let mut inp = random_graph(9, 3, 4);
    inp.stake.push(0.0);
    inp.weights.push(vec![(3, 65535), (4, 1)]);
    inp.bonds.push(Vec::new());
    inp.last_update.push(BLOCK);
    inp.block_at_registration.push(0);
    let mut silent = inp.clone();
    silent.weights[7].clear();
    let (a, b) = (epoch(&inp).unwrap(), epoch(&silent).unwrap());
    assert_eq!(a, b);
    assert!(!a.validator_permit[7]);
}

#[test]
fn weights_equal_to_consensus_give_trust_one() {
    // V0 (0.6): 0.5/0.5 on miners 2, 3; V1 (0.4): all on miner 2. Consensus = (0.5, 0.5).
    let out = epoch(&input(
        vec![6.0, 4.0, 0.0, 0.0],
        vec![vec![(2, 100), (3, 100)], vec![(2, 100)], vec![], vec![]],
    ))
    .unwrap();
    assert!(close(&out.consensus, &[0.0, 0.0, 0.5, 0.5], 1e-12));
    assert!((out.validator_trust[0] - 1.0).abs() < 1e-12);
    assert!((out.validator_trust[1] - 0.5).abs() < 1e-12);
}

#[test]
fn self_weights_are_ignored() {
    let base = input(
        vec![3.0, 1.0, 0.0, 0.0],
        vec![vec![(2, 10), (3, 30)], vec![(3, 5)], vec![], vec![]],
    );
    let mut selfish = base.clone();
    selfish.weights[0].push((0, 65535));
    selfish.weights[1].insert(0, (1, 9));
    assert_eq!(epoch(&base).unwrap(), epoch(&selfish).unwrap());
    // ... except the owner's.
    selfish.owner_uid = Some(0);
    let owned = epoch(&selfish).unwrap();
    assert!(owned.consensus[0] > 0.0);
}

#[test]
fn weights_set_before_target_registered_are_ignored() {
    let mut late = input(
        vec![1.0, 0.0, 0.0],
        vec![vec![(1, 100), (2, 100)], vec![], vec![]],
    );
    late.block_at_registration[2] = BLOCK; // registered in the same block: still masked
    let mut without = late.clone();
    without.weights[0] = vec![(1, 100)];
    let out = epoch(&late).unwrap();
    assert_eq!(out, epoch(&without).unwrap());
    assert_eq!(out.incentive, vec![0.0, 1.0, 0.0]);
    // One block later the weight counts.
    late.block_at_registration[2] = BLOCK - 1;
    assert!(close(
        &epoch(&late).unwrap().incentive,
        &[0.0, 0.5, 0.5],
        1e-12
    ));
}

#[test]
fn inactive_validator_is_ignored() {
    // V0 (0.4) backs miner 3; V1 and V2 (0.3 each) back miner 4.
    let rows = vec![vec![(3, 1)], vec![(4, 1)], vec![(4, 1)], vec![], vec![]];
    let mut inp = input(vec![4.0, 3.0, 3.0, 0.0, 0.0], rows);
    inp.current_block = BLOCK + 5000; // exactly at the cutoff: still active
    let out = epoch(&inp).unwrap();
    assert!(out.active[2]);
    assert_eq!(out.incentive, vec![0.0, 0.0, 0.0, 0.0, 1.0]);
    inp.last_update[2] = BLOCK - 1; // V2 one block past the cutoff
    let out = epoch(&inp).unwrap();
    assert!(!out.active[2]);
    assert_eq!(out.active_stake[2], 0.0);
    assert_eq!(out.incentive, vec![0.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(out.dividends, vec![1.0, 0.0, 0.0, 0.0, 0.0]);
    // Same as if V2 were not there at all.
    let mut gone = inp.clone();
    gone.stake[2] = 0.0;
    let gone = epoch(&gone).unwrap();
    assert_eq!(out.incentive, gone.incentive);
    assert_eq!(out.consensus, gone.consensus);
    assert_eq!(out.dividends, gone.dividends);
}

#[test]
fn single_validator_incentive_equals_its_normalized_weights() {
    let out = epoch(&input(
        vec![1.0, 0.0, 0.0, 0.0],
        vec![vec![(1, 10), (2, 30), (3, 60)], vec![], vec![], vec![]],
    ))
    .unwrap();
    assert!(close(&out.incentive, &[0.0, 0.1, 0.3, 0.6], 1e-12));
    assert!(close(&out.consensus, &[0.0, 0.1, 0.3, 0.6], 1e-12));
    assert_eq!(out.dividends, vec![1.0, 0.0, 0.0, 0.0]);
    assert!((out.validator_trust[0] - 1.0).abs() < 1e-12);
}

#[test]
fn kappa_median_three_validators() {
    // Stakes 0.5 / 0.3 / 0.2. Miner 3 gets 0.8 / 0.6 / 0.2, miner 4 gets 0.2 / 0.4 / 0.8.
    let rows = vec![
        vec![(3, 80), (4, 20)],
        vec![(3, 60), (4, 40)],
        vec![(3, 20), (4, 80)],
        vec![],
        vec![],
    ];
    let mut inp = input(vec![5.0, 3.0, 2.0, 0.0, 0.0], rows);
    for kappa in [0.5, YumaParams::default().kappa] {
        inp.params.kappa = kappa;
        let out = epoch(&inp).unwrap();
        // 0.8 is backed by exactly 50% (V0); 0.4 by V1+V2 = 50%, 0.8 only by 20%.
        assert!(close(&out.consensus, &[0.0, 0.0, 0.0, 0.8, 0.4], 1e-12));
        // Clipped ranks: miner 3 = .5*.8+.3*.6+.2*.2 = .62, miner 4 = .5*.2+.3*.4+.2*.4 = .30.
        assert!(close(
            &out.incentive[3..],
            &[0.62 / 0.92, 0.30 / 0.92],
            1e-12
        ));
    }
    inp.params.kappa = 0.6; // needs V0+V1: miner 3 -> 0.6, miner 4 -> 0.2
    assert!(close(
        &epoch(&inp).unwrap().consensus[3..],
        &[0.6, 0.2],
        1e-12
    ));
}

#[test]
fn bonds_ema_moves_toward_new_weights_at_rate_alpha() {
    // Equal stakes, both on miner 2 now; before, only V0 held bonds there.
    let mut inp = input(
        vec![1.0, 1.0, 0.0],
        vec![vec![(2, 1)], vec![(2, 1)], vec![]],
    );
    inp.bonds[0] = vec![(2, 1.0)];
    let out = epoch(&inp).unwrap();
    // ΔB = (0.5, 0.5); B = 0.1·ΔB + 0.9·B_old.
    assert!(close(
        &[out.bonds[0][0].1, out.bonds[1][0].1],
        &[0.95, 0.05],
        1e-12
    ));
    assert!(close(&out.dividends, &[0.95, 0.05, 0.0], 1e-12));
    // Repeating converges geometrically: the gap to ΔB shrinks by (1-α) per epoch.
    let mut b = out.bonds.clone();
    for k in 2..=30 {
        inp.bonds = b;
        b = epoch(&inp).unwrap().bonds;
        let gap = 0.5 * 0.9_f64.powi(k);
        assert!((b[0][0].1 - (0.5 + gap)).abs() < 1e-12, "epoch {k}");
    }
    // Other α.
    inp.bonds = vec![vec![(2, 1.0)], vec![], vec![]];
    inp.params.bonds_moving_average = 500_000.0;
    assert!((epoch(&inp).unwrap().bonds[0][0].1 - 0.75).abs() < 1e-12);
    // Yuma3: absolute bonds B = (1-α)B_old + α W_b, capped at 1.
    inp.params = YumaParams {
        yuma3: true,
        ..YumaParams::default()
    };
    inp.bonds = vec![vec![(2, 0.5)], vec![(2, 1.0)], vec![]];
    let out = epoch(&inp).unwrap();
    assert!(close(
        &[out.bonds[0][0].1, out.bonds[1][0].1],
        &[0.55, 1.0],
        1e-12
    ));
    // Dividends: column-normalized bonds times incentive, times active stake.
    assert!(close(
        &out.dividends,
        &[0.55 / 1.55, 1.0 / 1.55, 0.0],
        1e-12
    ));
}
