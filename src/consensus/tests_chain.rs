//! Agreement with subtensor's own epoch test targets (`pallets/subtensor/src/tests/epoch.rs`),
//! error variants, and the emission / weight helpers.

use super::tests::{BLOCK, close, input};
use super::*;

/// Run an epoch and round-trip the bonds through u16 storage, as the chain does between epochs.
fn step(inp: &mut EpochInput) -> (EpochOutput, SparseRows<u16>) {
    let out = epoch(inp).unwrap();
    let stored = bonds_to_u16(&out.bonds, inp.params.yuma3);
    inp.bonds = bonds_from_u16(&stored);
    inp.current_block += 1;
    (out, stored)
}

fn stored_col(stored: &SparseRows<u16>, col: u16, rows: usize) -> Vec<i64> {
    (0..rows)
        .map(|i| {
            let hit = stored[i].iter().find(|e| e.0 == col);
            hit.map_or(0, |e| i64::from(e.1))
        })
        .collect()
}

fn near_u16(actual: &[i64], chain: &[i64]) -> bool {
    actual.iter().zip(chain).all(|(a, c)| (a - c).abs() <= 2)
}

/// subtensor `test_bonds`: 4 validators (stake 1..4), 4 servers, original Yuma, β = 1.
#[test]
fn chain_test_bonds_original_yuma() {
    let servers: Vec<(u16, u16)> = vec![(4, 16383), (5, 32767), (6, 49149), (7, 65535)];
    let mut w = vec![servers.clone(); 4];
    w.extend(vec![Vec::new(); 4]);
    let mut inp = input(vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0], w);
    inp.params.max_validators = 8;
    inp.params.tempo = 1;
    inp.current_block = BLOCK + 1;

    let (out, b) = step(&mut inp);
    let chain_i = [0.0999975582, 0.2000012207, 0.2999926752, 0.4000085455];
    assert!(close(&out.incentive[4..], &chain_i, 1e-6));
    assert!(close(&out.dividends[..4], &[0.1, 0.2, 0.3, 0.4], 1e-6));
    assert!(near_u16(
        &stored_col(&b, 4, 4),
        &[16383, 32767, 49151, 65535]
    ));

    inp.weights[0] = vec![(0, 65535)]; // val1 self-weight only
    let (out, b) = step(&mut inp);
    let chain_d = [0.0899967032, 0.2022211233, 0.303334432, 0.404447741];
    assert!(close(&out.dividends[..4], &chain_d, 1e-6));
    assert!(near_u16(
        &stored_col(&b, 4, 4),
        &[14582, 32767, 49151, 65535]
    ));

    inp.weights[1] = vec![(1, 65535)];
    let (out, b) = step(&mut inp);
    let chain_d = [0.0809936118, 0.1819995677, 0.3158592721, 0.421147548];
    assert!(close(&out.dividends[..4], &chain_d, 1e-5));
    assert!(near_u16(
        &stored_col(&b, 4, 4),
        &[12603, 28321, 49151, 65535]
    ));

    // Only val4 (40% < kappa) weighs servers: consensus, incentive, dividends all zero.
    inp.weights[2] = vec![(2, 65535)];
    let (out, b) = step(&mut inp);
    assert!(
        out.consensus
            .iter()
            .chain(&out.incentive)
            .all(|&x| x == 0.0)
    );
    assert!(out.dividends.iter().all(|&x| x == 0.0));
    assert!(near_u16(
        &stored_col(&b, 7, 4),
        &[12602, 28320, 49150, 65535]
    ));

    inp.weights[2] = vec![(7, 65535)];
    let chain = [
        [10951, 24609, 49150, 65535],
        [9559, 21482, 49150, 65535],
        [8376, 18824, 49150, 65535],
    ];
    let chain_d = [
        [0.0728874663, 0.1637972582, 0.3271309866, 0.4361842885],
        [0.0655988548, 0.1474132247, 0.3372762585, 0.4497116616],
        [0.0590361361, 0.1326722752, 0.3464062694, 0.4618853189],
    ];
    for (bonds, divs) in chain.iter().zip(&chain_d) {
        let (out, b) = step(&mut inp);
        assert_eq!(out.incentive, vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert!(close(&out.dividends[..4], divs, 1e-4));
        assert!(near_u16(&stored_col(&b, 7, 4), bonds));
    }
}

/// subtensor `setup_yuma_3_scenario`: 3 validators, 2 servers (uids 3, 4), Yuma3, β = 0,
/// bonds moving average 975000, kappa 32767, 3 permits.
fn yuma3_scenario(stakes: [f64; 3], liquid_alpha: bool) -> EpochInput {
    let mut inp = input(
        vec![stakes[0], stakes[1], stakes[2], 0.0, 0.0],
        vec![vec![]; 5],
    );
    inp.params = YumaParams {
        yuma3: true,
        bonds_penalty: 0.0,
        bonds_moving_average: 975_000.0,
        max_validators: 3,
        liquid_alpha,
        // set_alpha_values_32(0.1, 0.3) stores floor(x·65535).
        alpha_low: 6553.0 / 65535.0,
        alpha_high: 19660.0 / 65535.0,
        tempo: 1,
        ..YumaParams::default()
    };
    inp
}

fn set_weights(inp: &mut EpochInput, rows: [[u16; 2]; 3]) {
    for (i, r) in rows.iter().enumerate() {
        inp.weights[i] = vec![(3, r[0]), (4, r[1])];
        inp.last_update[i] = inp.current_block;
    }
    inp.current_block += 1;
}

const S1: [u16; 2] = [u16::MAX, 0];
const S2: [u16; 2] = [0, u16::MAX];

#[test]
fn chain_test_yuma3_liquid_alpha_disabled() {
    let mut inp = yuma3_scenario([33.0, 33.0, 34.0], false);
    let chain_d = [
        [0.3300, 0.3300, 0.3400],
        [0.3300, 0.3300, 0.3400],
        [0.3734, 0.3734, 0.2532],
        [0.3611, 0.3611, 0.2779],
        [0.3541, 0.3541, 0.2919],
        [0.3495, 0.3495, 0.3009],
    ];
    // Bonds to server 1 of validators A and C: 0.025, then B = 0.975 B + 0.025 W.
    let chain_b = [0.0250, 0.0494, 0.0731, 0.0963, 0.1189, 0.1409];
    for (e, (d, b)) in chain_d.iter().zip(chain_b).enumerate() {
        let rows = if e == 2 { [S1, S1, S2] } else { [S1; 3] };
        set_weights(&mut inp, rows);
        let (out, _) = step(&mut inp);
        assert!(close(&out.dividends[..3], d, 1e-4), "epoch {e}");
        assert!((out.bonds[0][0].1 - b).abs() < 1e-4, "epoch {e}");
    }
}

#[test]
fn chain_test_yuma3_kappa_moves_first_liquid_alpha() {
    let mut inp = yuma3_scenario([8.0, 1.0, 1.0], true);
    let chain_d = [
        [0.8000, 0.1000, 0.1000],
        [1.0000, 0.0000, 0.0000],
        [0.9382, 0.0618, 0.0000],
        [0.8819, 0.0773, 0.0407],
        [0.8564, 0.0844, 0.0592],
        [0.8418, 0.0884, 0.0697],
    ];
    let chain_b = [
        [[0.1013, 0.0000], [0.1013, 0.0000], [0.1013, 0.0000]],
        [[0.0908, 0.1013], [0.3697, 0.0000], [0.3697, 0.0000]],
        [[0.0815, 0.1924], [0.3170, 0.1013], [0.5580, 0.0000]],
        [[0.0731, 0.2742], [0.2765, 0.1924], [0.4306, 0.1013]],
    ];
    for (e, d) in chain_d.iter().enumerate() {
        match e {
            0 => set_weights(&mut inp, [S1; 3]),
            1 => set_weights(&mut inp, [S2, S1, S1]),
            2 => set_weights(&mut inp, [S2, S2, S1]),
            3 => set_weights(&mut inp, [S2; 3]),
            _ => inp.current_block += 1,
        }
        let (out, _) = step(&mut inp);
        assert!(
            close(&out.dividends[..3], d, 1e-4),
            "epoch {e}: {:?}",
            out.dividends
        );
        if let Some(rows) = chain_b.get(e) {
            for (i, row) in rows.iter().enumerate() {
                let get = |j: u16| out.bonds[i].iter().find(|x| x.0 == j).map_or(0.0, |x| x.1);
                assert!(close(&[get(3), get(4)], row, 1e-4), "epoch {e} row {i}");
            }
        }
    }
}

#[test]
fn every_error_variant_is_reachable() {
    let good = input(vec![1.0, 0.0], vec![vec![(1, 1)], vec![]]);
    assert!(epoch(&good).is_ok());
    let bad = |f: &dyn Fn(&mut EpochInput)| {
        let mut i = good.clone();
        f(&mut i);
        epoch(&i).unwrap_err()
    };
    let e = bad(&|i| i.last_update.truncate(1));
    assert_eq!(
        e,
        YumaError::LengthMismatch {
            field: "last_update",
            expected: 2,
            actual: 1
        }
    );
    let e = bad(&|i| i.prev_validator_permit = Some(vec![true]));
    assert!(matches!(
        e,
        YumaError::LengthMismatch {
            field: "prev_validator_permit",
            ..
        }
    ));
    let e = bad(&|i| i.weights[0].push((2, 5)));
    let want = YumaError::UidOutOfRange {
        field: "weights",
        row: 0,
        uid: 2,
    };
    assert_eq!(e, want);
    let e = bad(&|i| i.bonds[1].push((7, 0.5)));
    assert!(matches!(
        e,
        YumaError::UidOutOfRange {
            field: "bonds",
            row: 1,
            uid: 7
        }
    ));
    let e = bad(&|i| i.owner_uid = Some(2));
    assert!(matches!(
        e,
        YumaError::UidOutOfRange {
            field: "owner_uid",
            ..
        }
    ));
    let e = bad(&|i| i.weights[0].push((1, 3)));
    let want = YumaError::DuplicateUid {
        field: "weights",
        row: 0,
        uid: 1,
    };
    assert_eq!(e, want);
    let e = bad(&|i| {
        i.stake = vec![1.0; 65537];
        i.weights = vec![vec![]; 65537];
    });
    assert_eq!(e, YumaError::TooManyUids { n: 65537 });
    assert_eq!(
        bad(&|i| i.stake[1] = f64::NAN),
        YumaError::NonFiniteStake { uid: 1 }
    );
    assert_eq!(
        bad(&|i| i.stake[0] = f64::INFINITY),
        YumaError::NonFiniteStake { uid: 0 }
    );
    assert_eq!(
        bad(&|i| i.stake[1] = -1.0),
        YumaError::NegativeStake { uid: 1 }
    );
    let e = bad(&|i| i.bonds[0] = vec![(1, -0.1)]);
    assert_eq!(e, YumaError::InvalidBond { row: 0, uid: 1 });
    let e = bad(&|i| i.params.kappa = 1.5);
    let want = YumaError::InvalidParam {
        name: "kappa",
        value: 1.5,
    };
    assert_eq!(e, want);
    let e = bad(&|i| i.params.bonds_moving_average = 2e6);
    assert!(matches!(
        e,
        YumaError::InvalidParam {
            name: "bonds_moving_average",
            ..
        }
    ));
    let e = bad(&|i| i.params.bonds_penalty = f64::NAN);
    assert!(matches!(
        e,
        YumaError::InvalidParam {
            name: "bonds_penalty",
            ..
        }
    ));
    let e = max_upscale_u16(&[0.5, -1.0]).unwrap_err();
    assert_eq!(e, YumaError::InvalidWeight { index: 1 });
    assert_eq!(
        max_upscale_u16(&[f64::NAN]),
        Err(YumaError::InvalidWeight { index: 0 })
    );
    assert_eq!(max_upscale_u16(&[0.0, 0.0]), Err(YumaError::ZeroWeights));
    assert_eq!(max_upscale_u16(&[]), Err(YumaError::ZeroWeights));
}

#[test]
fn max_upscale_u16_examples() {
    assert_eq!(max_upscale_u16(&[0.5, 1.0]).unwrap(), vec![32768, 65535]);
    assert_eq!(max_upscale_u16(&[1.0, 0.5]).unwrap(), vec![65535, 32768]);
    assert_eq!(
        max_upscale_u16(&[2.0, 0.0, 1.0]).unwrap(),
        vec![65535, 0, 32768]
    );
    assert_eq!(max_upscale_u16(&[0.25, 0.75]).unwrap(), vec![21845, 65535]);
    assert_eq!(max_upscale_u16(&[3.0, 1.0]).unwrap(), vec![65535, 21845]);
    assert_eq!(max_upscale_u16(&[1e-9]).unwrap(), vec![65535]);
    // x·65535 = 0.5 exactly rounds half up to 1.
    assert_eq!(
        max_upscale_u16(&[1.0, 1.0 / 131070.0]).unwrap(),
        vec![65535, 1]
    );
}

/// `chain_max_upscale` against Subtensor's I32F32 `vec_u16_max_upscale_to_u16` (expected values
/// worked out in exact integer arithmetic of the fixed-point steps).
#[test]
fn chain_max_upscale_table() {
    let table: &[(&[u16], &[u16])] = &[
        (&[], &[]),
        (&[0, 0], &[0, 0]),
        (&[65535, 0], &[65535, 0]),
        (&[0, 1], &[0, 65535]),
        (&[7], &[65535]),
        // max ≤ 32768: v·65535 / max, rounded half up (32767.5 → 32768).
        (&[1, 2], &[32768, 65535]),
        (&[3, 5], &[39321, 65535]),
        (&[100, 200, 300], &[21845, 43690, 65535]),
        (&[32768, 16384], &[65535, 32768]),
        // max > 32768: v · trunc(65535 / max): one below exact rounding here.
        (&[40000, 20000, 1], &[65535, 32767, 2]),
        (&[65534, 32767], &[65535, 32767]),
        (&[50000, 25000, 12500, 3], &[65535, 32767, 16384, 4]),
        (&[32769, 1], &[65535, 2]),
    ];
    for (input, want) in table {
        assert_eq!(chain_max_upscale(input), *want, "input {input:?}");
    }
}

#[test]
fn split_emission_examples() {
    let (e, owner) = split_emission(&[0.0, 0.6, 0.4], &[1.0, 0.0, 0.0], 100.0, 0.18);
    assert!((owner - 18.0).abs() < 1e-12);
    assert!(close(&e, &[41.0, 24.6, 16.4], 1e-9));
    assert!((e.iter().sum::<f64>() + owner - 100.0).abs() < 1e-9);
    let (e, owner) = split_emission(&[0.0, 0.0], &[0.0, 0.0], 100.0, 0.18);
    assert_eq!(e, vec![0.0, 0.0]);
    assert!((owner - 18.0).abs() < 1e-12);
    let (e, owner) = split_emission(&[1.0], &[0.0, 1.0], 10.0, 0.0);
    assert!(close(&e, &[5.0, 5.0], 1e-12) && owner == 0.0);
}

#[test]
fn bonds_storage_round_trip() {
    let b = vec![vec![(1, 0.25), (2, 0.5)], vec![(1, 0.75)], vec![]];
    assert_eq!(
        bonds_to_u16(&b, false),
        vec![vec![(1, 21845), (2, 65535)], vec![(1, 65535)], vec![]]
    );
    assert_eq!(
        bonds_to_u16(&b, true),
        vec![vec![(1, 16383), (2, 32767)], vec![(1, 49151)], vec![]]
    );
    let back = bonds_from_u16(&[vec![(0, 65535), (3, 0)]]);
    assert_eq!(back, vec![vec![(0, 1.0), (3, 0.0)]]);
    // Serde: params and inputs round-trip through JSON, missing fields take defaults.
    let p: YumaParams = serde_json::from_str(r#"{"kappa": 0.6}"#).unwrap();
    assert_eq!((p.kappa, p.max_validators), (0.6, 64));
    let mut inp = input(vec![1.0], vec![vec![]]);
    inp.params.kappa = 0.5; // serde_json parses floats to within 1 ulp, dyadic values exactly
    inp.params.alpha_low = 0.75;
    inp.params.alpha_high = 0.875;
    let json = serde_json::to_string(&inp).unwrap();
    assert_eq!(serde_json::from_str::<EpochInput>(&json).unwrap(), inp);
}
