//! Subtensor's two-server Yuma3 scenarios ([`TWO_SERVER`]) replayed through
//! `connito consensus yuma`, epoch after epoch, feeding each epoch's bonds and permits back in as
//! the chain stores them. In sparse form (the explicit zero entries the chain holds) they meet the
//! chain's targets; as a matrix (zeros are no entry) they do not.

use serde_json::{Value, json};

use super::cli::run_json;
use super::scenarios::{TWO_SERVER, TWO_SERVER_UIDS, TwoServer};

const U16: f64 = 65_535.0;

/// How far one replay landed from the chain's targets.
struct Deviation {
    dividends: f64,
    bonds: f64,
}

/// Sparse rows in the chosen form: as they are, or as an n×n matrix (absent = 0).
fn rows_json<T: Copy + Default + serde::Serialize>(rows: &[Vec<(u16, T)>], sparse: bool) -> Value {
    if sparse {
        return json!(rows);
    }
    let dense: Vec<Vec<T>> = rows
        .iter()
        .map(|r| {
            let mut d = vec![T::default(); rows.len()];
            for &(j, v) in r {
                d[usize::from(j)] = v;
            }
            d
        })
        .collect();
    json!(dense)
}

/// Output bonds (either form) as the chain stores them for the next epoch: `floor(x·65535)`
/// (Yuma3 bonds are absolute), read back as `x/65535`, entries kept.
fn stored_bonds(out: &Value) -> Vec<Vec<(u16, f64)>> {
    let quantize = |x: f64| (x * U16).floor() / U16;
    out["bonds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let row = row.as_array().unwrap();
            if row.first().is_some_and(Value::is_array) || row.is_empty() {
                row.iter()
                    .map(|e| {
                        let uid = e[0].as_u64().unwrap() as u16;
                        (uid, quantize(e[1].as_f64().unwrap()))
                    })
                    .collect()
            } else {
                row.iter()
                    .enumerate()
                    .filter(|(_, x)| x.as_f64().unwrap() != 0.0)
                    .map(|(j, x)| (j as u16, quantize(x.as_f64().unwrap())))
                    .collect()
            }
        })
        .collect()
}

/// The scenario's hyperparameters as `params` (u16 proportions as k/65535).
fn params(liquid_alpha: bool) -> Value {
    json!({
        "yuma3": true, "liquid_alpha": liquid_alpha,
        "alpha_low": 6553.0 / U16, "alpha_high": 19660.0 / U16,
        "alpha_sigmoid_steepness": 1000, "bonds_penalty": 0.0,
        "bonds_moving_average": 975000, "kappa": 32767.0 / U16,
        "max_validators": 3, "tempo": 1
    })
}

/// Replays `sc` through the CLI; returns the largest deviations from the chain's targets.
fn replay(sc: &TwoServer, sparse: bool) -> Deviation {
    let n = 5;
    let mut stake = sc.stakes.to_vec();
    stake.extend([0.0, 0.0]);
    let mut weights: Vec<Vec<(u16, u16)>> = vec![Vec::new(); n];
    let mut bonds: Vec<Vec<(u16, f64)>> = vec![Vec::new(); n];
    let mut last_update = vec![1_u64; n];
    let mut permit = vec![false; n];
    let mut block = 1;
    let mut dev = Deviation {
        dividends: 0.0,
        bonds: 0.0,
    };
    // Epoch -1 hands out the permits; epochs 0.. are checked.
    for e in -1_i64..sc.dividends.len() as i64 {
        if e >= 0
            && let Some(rows) = sc.weights[e as usize]
        {
            for (i, r) in rows.iter().enumerate() {
                weights[i] = TWO_SERVER_UIDS.iter().copied().zip(*r).collect();
                last_update[i] = block;
            }
        }
        block += 1;
        let input = json!({
            "stake": stake, "weights": rows_json(&weights, sparse),
            "bonds": rows_json(&bonds, sparse), "last_update": last_update,
            "block_at_registration": vec![1; n], "current_block": block,
            "validator_permit": permit, "params": params(sc.liquid_alpha),
        });
        let out: Value = serde_json::from_str(&run_json(&input.to_string()).unwrap()).unwrap();
        bonds = stored_bonds(&out);
        permit = serde_json::from_value(out["validator_permit"].clone()).unwrap();
        let Ok(e) = usize::try_from(e) else { continue };
        for (got, want) in out["dividends"]
            .as_array()
            .unwrap()
            .iter()
            .zip(sc.dividends[e])
        {
            dev.dividends = dev.dividends.max((got.as_f64().unwrap() - want).abs());
        }
        for (i, row) in sc.bonds[e].iter().enumerate() {
            for (&j, &want) in TWO_SERVER_UIDS.iter().zip(row) {
                let got = bonds[i].iter().find(|b| b.0 == j).map_or(0.0, |b| b.1);
                dev.bonds = dev.bonds.max((got - want).abs());
            }
        }
    }
    dev
}

#[test]
fn two_server_scenarios_meet_the_chain_targets_in_sparse_form() {
    for sc in &TWO_SERVER {
        let d = replay(sc, true);
        eprintln!(
            "consensus yuma, sparse: {}: largest deviation dividends {:.2e}, bonds {:.2e}",
            sc.name, d.dividends, d.bonds
        );
        assert!(
            d.dividends <= 1e-3,
            "{}: dividends {}",
            sc.name,
            d.dividends
        );
        assert!(d.bonds <= 1e-3, "{}: bonds {}", sc.name, d.bonds);
    }
}

#[test]
fn the_matrix_form_drops_the_zero_entries_and_misses_the_targets() {
    let mut worst: f64 = 0.0;
    for sc in &TWO_SERVER {
        let d = replay(sc, false);
        eprintln!(
            "consensus yuma, matrix: {}: largest deviation dividends {:.2e}, bonds {:.2e}",
            sc.name, d.dividends, d.bonds
        );
        worst = worst.max(d.dividends);
    }
    assert!(worst > 0.05, "zero entries should matter here: {worst}");
}

/// The README's example (epoch 2 of `test_yuma_3_one_epoch_switch`): validator C moved to
/// server 2 and keeps an explicit 0 for server 1, so its bond there decays instead of vanishing.
#[test]
fn readme_example_sparse_and_matrix_forms_pay_different_dividends() {
    let common = json!({
        "stake": [33, 33, 34, 0, 0], "last_update": [4, 4, 4, 1, 1],
        "block_at_registration": [1, 1, 1, 1, 1], "current_block": 5,
        "validator_permit": [true, true, true, false, false],
        "params": {"yuma3": true, "liquid_alpha": true, "alpha_low": 0.1, "alpha_high": 0.3,
                   "bonds_penalty": 0, "bonds_moving_average": 975000, "max_validators": 3,
                   "tempo": 1}
    });
    let with = |weights: Value, bonds: Value| {
        let mut v = common.clone();
        v["weights"] = weights;
        v["bonds"] = bonds;
        let out: Value = serde_json::from_str(&run_json(&v.to_string()).unwrap()).unwrap();
        let d: Vec<f64> = serde_json::from_value(out["dividends"].clone()).unwrap();
        (d, out["bonds"].clone())
    };
    let (sparse, sparse_bonds) = with(
        json!([
            [[3, 65535], [4, 0]],
            [[3, 65535], [4, 0]],
            [[3, 0], [4, 65535]],
            [],
            []
        ]),
        json!([[[3, 0.1924]], [[3, 0.1924]], [[3, 0.1924]], [], []]),
    );
    let (matrix, _) = with(
        json!([
            [0, 0, 0, 65535, 0],
            [0, 0, 0, 65535, 0],
            [0, 0, 0, 0, 65535],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0]
        ]),
        json!([
            [0, 0, 0, 0.1924, 0],
            [0, 0, 0, 0.1924, 0],
            [0, 0, 0, 0.1924, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0]
        ]),
    );
    let round = |d: &[f64]| {
        d.iter()
            .map(|x| (x * 1e4).round() / 1e4)
            .collect::<Vec<_>>()
    };
    assert_eq!(round(&sparse), [0.3782, 0.3782, 0.2436, 0.0, 0.0]);
    assert_eq!(round(&matrix), [0.5, 0.5, 0.0, 0.0, 0.0]);
    // Sparse in, sparse out: C still holds a (decayed) bond on server 1.
    assert_eq!(sparse_bonds[2][0][0], json!(3));
    assert!(sparse_bonds[2][0][1].as_f64().unwrap() > 0.17);
}

#[test]
fn sparse_float_rows_are_upscaled_and_keep_their_listed_zeros() {
    let base = json!({
        "stake": [600, 400, 0], "last_update": [5990, 5990, 10],
        "block_at_registration": [0, 0, 0], "current_block": 6000
    });
    let run = |weights: Value| {
        let mut v = base.clone();
        v["weights"] = weights;
        serde_json::from_str::<Value>(&run_json(&v.to_string()).unwrap()).unwrap()
    };
    // Floats (all ≤ 1) in sparse form give what the same matrix gives when no zero is listed.
    let sparse = run(json!([[[1, 0.6], [2, 1]], [[2, 1]], []]));
    let matrix = run(json!([[0, 0.6, 1], [0, 0, 1], [0, 0, 0]]));
    assert_eq!(sparse["incentive"], matrix["incentive"]);
    assert_eq!(sparse["dividends"], matrix["dividends"]);
    // A row of listed zeros is accepted (entries, nothing to normalize), as the chain stores
    // it: uid 0 (60% of the stake) backs nobody, so uid 1's 40% alone is below kappa.
    let zeros = run(json!([[[1, 0], [2, 0]], [[2, 1]], []]));
    assert_eq!(zeros["incentive"], json!([0.0, 0.0, 0.0]));
    assert_eq!(zeros["validator_trust"], json!([0.0, 0.0, 0.0]));
}

#[test]
fn bad_sparse_rows_are_rejected_with_the_place_named() {
    let base = json!({
        "stake": [1, 1], "last_update": [1, 1], "block_at_registration": [0, 0],
        "current_block": 2
    });
    let cases = [
        (json!([[[1, 0.5], [1, 0.2]], []]), "names uid 1 twice"),
        (json!([[[2, 0.5]], []]), "uid 2, not an integer in 0..2"),
        (
            json!([[[1, -0.5]], []]),
            "weights[0] for uid 1 = -0.5 is negative",
        ),
        (json!([[[1, 2.5]], [[0, 3]]]), "weights[0] for uid 1 = 2.5"),
        (json!([[0, 1], [[0, 1]]]), "row 1 is not in the form"),
        (
            json!([[[1]], []]),
            "weights[0][0] is not a [uid, value] pair",
        ),
    ];
    for (weights, want) in cases {
        let mut v = base.clone();
        v["weights"] = weights.clone();
        let err = run_json(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains(want), "{weights}: {err}");
    }
    let mut v = base.clone();
    v["weights"] = json!([[], []]);
    v["bonds"] = json!([[[1, 1.5]], []]);
    let err = run_json(&v.to_string()).unwrap_err().to_string();
    assert!(
        err.contains("bonds[0] for uid 1 = 1.5 is outside [0, 1]"),
        "{err}"
    );
}
