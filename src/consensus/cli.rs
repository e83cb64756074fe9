//! # `connito consensus yuma`: one epoch, JSON in, JSON out
//!
//! Reads one epoch's input as JSON on stdin, runs Yuma Consensus as Subtensor's epoch does (the
//! production sparse path, [`epoch`]) and prints the result as one line of JSON on stdout, so an
//! operator can ask "what if": change a weight, a stake or a hyperparameter and see what the
//! chain would pay.
//!
//! The implementation is f64 and agrees with the chain's fixed point to about 1e-6 (the chain
//! computes in I32F32 / I64F64; exact ties, such as a stake sum exactly at kappa or equal stakes at
//! the permit cut-off, may round either way).
//!
//! ## Input
//!
//! `n = stake.len()`; every per-uid array has `n` entries and every matrix is `n×n`, indexed by
//! uid. Unknown keys are rejected, so a misspelt parameter is an error rather than a silent
//! default.
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `stake` | `[f64]` | stake per uid, raw units |
//! | `weights` | `[[f64]]` or `[[[uid, f64]]]` | row `i` = uid `i`'s weights, as an n×n matrix (a 0 is no entry) or as sparse rows of `[uid, value]` pairs the way Subtensor stores them (a listed pair is an entry even at 0). If any value anywhere is > 1, all values are u16 as stored on chain (integers 0..=65535). Otherwise each row is floats, max-upscaled to u16 as the SDK does (largest → 65535, the rest `round(w·65535/max)`, half up; a sparse row of only zeros stays zeros). In matrix form zeros, given or after upscaling, are no entry. Self-weights and rows without a permit are accepted and masked as on chain |
//! | `bonds` | `[[f64]]` or `[[[uid, f64]]]`, optional | previous bonds on the scale the chain reads them: stored u16 / 65535, each in [0, 1]; either form, as for `weights` (a listed 0 is an entry). Default: none |
//! | `last_update` | `[u64]` | block of each uid's last weight update |
//! | `block_at_registration` | `[u64]` | block each uid registered at |
//! | `current_block` | `u64` | block the epoch runs at |
//! | `validator_permit` | `[bool]`, optional | the permits stored by the previous epoch (the chain masks with those and stores new ones). Default: every uid with non-zero stake |
//! | `params` | object, optional | hyperparameters below; every key optional |
//!
//! | param | default (chain) | meaning |
//! | --- | --- | --- |
//! | `kappa` | 0.5 → 32767/65535 | consensus majority |
//! | `bonds_penalty` | 1.0 | β in `W_b = W + β(W̄ − W)` |
//! | `bonds_moving_average` | 900000 | raw; bond EMA rate α = 1 − x/1e6 |
//! | `yuma3` | false | Yuma3: absolute bonds, stake-weighted dividends |
//! | `liquid_alpha` | false | per-bond α from a sigmoid (Yuma3 only, as on chain) |
//! | `alpha_low`, `alpha_high` | 45875/65535, 58982/65535 (≈ 0.70001, 0.90001) | liquid alpha bounds |
//! | `alpha_sigmoid_steepness` | 1000 | liquid alpha sigmoid steepness |
//! | `activity_cutoff` | 5000 | uids without a weight update for longer are inactive |
//! | `max_validators` | 64 | number of validator permits (top-k by stake) |
//! | `stake_threshold` | 0 | raw stake below which a uid's stake counts as 0 |
//! | `tempo` | 360 | with `last_mechanism_step_block`, decides which miners registered since the last epoch (their bonds are dropped) |
//! | `last_mechanism_step_block` | `current_block − tempo` | block of the previous epoch |
//! | `owner_uid` | none | the subnet owner's uid: keeps its self-weight and a permit |
//!
//! `kappa`, `bonds_penalty`, `alpha_low` and `alpha_high` are stored on chain as u16: give them as
//! floats in [0, 1]; they are read as the chain would read them, `floor(x·65535 + 1e-9)/65535`, so
//! `k/65535` round-trips and 0.5 gives the chain default 32767 (note that 0.7 gives 45874, one
//! below the default `alpha_low`).
//!
//! ## Output
//!
//! `{"consensus","incentive","dividends","validator_trust","bonds","validator_permit","active"}`:
//! per-uid floats (incentive and dividends each sum to 1, or are all 0), `bonds` in the form
//! `weights` was given (a dense `n×n` matrix, or sparse `[uid, value]` rows) on the scale the
//! chain stores them (original Yuma: column-normalized, which the
//! chain stores column max-upscaled to u16; Yuma3: absolute, in [0, 1]; rows of uids without a
//! new permit are 0), `validator_permit` the new permits, `active` who updated weights within
//! the activity cutoff. The output `bonds` and `validator_permit` can be fed back as the next
//! epoch's input. Invalid input is rejected with a message naming the field ([`CliError`]).
//!
//! ## Example
//!
//! Uids 0 and 1 are validators (stake 600 and 400); uid 2 is a miner without stake that last
//! updated at block 10, so it is inactive at block 6000. Uid 0 weights uid 1 at 0.6 and uid 2 at
//! 1 (normalized: 0.375, 0.625); uid 1 weights uid 2 only.
//!
//! ```sh
//! echo '{"stake":[600,400,0],"weights":[[0,0.6,1],[0,0,1],[0,0,0]],"last_update":[5990,5950,10],"block_at_registration":[0,0,0],"current_block":6000}' | connito consensus yuma
//! ```
//!
//! ```json
//! {"consensus":[0.0,0.375,0.625],"incentive":[0.0,0.2647058823529412,0.7352941176470589],"dividends":[0.7058823529411765,0.29411764705882354,0.0],"validator_trust":[1.0,0.625,0.0],"bonds":[[0.0,1.0,0.6],[0.0,0.0,0.4],[0.0,0.0,0.0]],"validator_permit":[true,true,false],"active":[true,true,false]}
//! ```
//!
//! Uid 0 alone holds 60% of the stake, more than kappa, so consensus for uid 1 is its 0.375 and
//! for uid 2 both validators' 0.625; uid 1's weight of 1 on uid 2 is clipped to 0.625, its
//! validator trust. Incentive is `Σ stake·clipped weight` normalized: 0.225 and 0.625 over 0.85.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cli_rows::{Form, Rows, parse_rows};
use super::{EpochInput, EpochOutput, SparseRows, YumaError, YumaParams, epoch, max_upscale_u16};

/// Why `connito consensus yuma` rejected its input.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Not JSON, a missing required field, a value of the wrong type, or an unknown key.
    #[error("invalid input JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// More uids than the u16 uid space holds.
    #[error("{n} uids do not fit in the u16 uid space")]
    TooManyUids { n: usize },
    /// A per-uid array (or the number of rows of a matrix) does not have `n = stake.len()` entries.
    #[error("{field} has length {actual}, expected {expected} (one per uid, n = stake.len())")]
    WrongLength {
        field: &'static str,
        expected: usize,
        actual: usize,
    },
    /// A matrix row does not have `n` columns.
    #[error("{field} is not n×n: row {row} has {actual} columns, expected {expected}")]
    NotSquare {
        field: &'static str,
        row: usize,
        expected: usize,
        actual: usize,
    },
    /// `weights` or `bonds` is not a list of rows, each a list.
    #[error("{field} must be a list of n rows: an n×n matrix or lists of [uid, value] pairs")]
    NotRows { field: &'static str },
    /// Some rows are matrix rows (numbers) and others sparse rows (pairs).
    #[error(
        "{field}: row {row} is not in the form of the rows before it (all matrix rows of numbers, \
         or all lists of [uid, value] pairs)"
    )]
    MixedForms { field: &'static str, row: usize },
    /// A matrix entry is not a number.
    #[error("{field}[{row}][{col}] is not a number")]
    NotANumber {
        field: &'static str,
        row: usize,
        col: usize,
    },
    /// An entry of a sparse row is not a `[uid, value]` pair of numbers.
    #[error("{field}[{row}][{index}] is not a [uid, value] pair of numbers")]
    NotAPair {
        field: &'static str,
        row: usize,
        index: usize,
    },
    /// A sparse row names a uid that is not an integer in `0..n`.
    #[error("{field}[{row}] names uid {uid}, not an integer in 0..{n}")]
    UidOutOfRange {
        field: &'static str,
        row: usize,
        uid: f64,
        n: usize,
    },
    /// A sparse row names one uid twice (the chain rejects that as `DuplicateUids`).
    #[error("{field}[{row}] names uid {uid} twice")]
    DuplicateUid {
        field: &'static str,
        row: usize,
        uid: u16,
    },
    /// A weight is negative (JSON has no NaN or infinity). `col` is the uid.
    #[error("weights[{row}] for uid {col} = {value} is negative")]
    NegativeWeight { row: usize, col: usize, value: f64 },
    /// The weights are in u16 mode (some value > 1) but this one is not an integer in
    /// 0..=65535. `col` is the uid.
    #[error(
        "weights[{row}] for uid {col} = {value}: the weights have values > 1, so they are read \
         as u16 and every one must be an integer in 0..=65535"
    )]
    InvalidU16Weight { row: usize, col: usize, value: f64 },
    /// A previous bond outside [0, 1], the scale on which the chain reads stored bonds. `col` is
    /// the uid.
    #[error(
        "bonds[{row}] for uid {col} = {value} is outside [0, 1] (stored u16 bonds are read as \
         x/65535)"
    )]
    BondOutOfRange { row: usize, col: usize, value: f64 },
    /// A proportion the chain stores as u16 (kappa, bonds_penalty, alpha_low, alpha_high) is not a
    /// float in [0, 1].
    #[error("params.{name} = {value} is outside [0, 1]")]
    ProportionOutOfRange { name: &'static str, value: f64 },
    /// The epoch itself rejected the converted input (negative stake, owner uid out of range,
    /// alpha_low > alpha_high, bonds_moving_average outside [0, 1e6], ...).
    #[error(transparent)]
    Epoch(#[from] YumaError),
}

/// The JSON read on stdin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    stake: Vec<f64>,
    /// A matrix or sparse rows ([`parse_rows`]).
    weights: Value,
    #[serde(default)]
    bonds: Option<Value>,
    last_update: Vec<u64>,
    block_at_registration: Vec<u64>,
    current_block: u64,
    #[serde(default)]
    validator_permit: Option<Vec<bool>>,
    #[serde(default)]
    params: Params,
}

/// `params`: every key optional; absent (or null) means the chain default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Params {
    kappa: Option<f64>,
    bonds_penalty: Option<f64>,
    bonds_moving_average: Option<f64>,
    yuma3: Option<bool>,
    liquid_alpha: Option<bool>,
    alpha_low: Option<f64>,
    alpha_high: Option<f64>,
    alpha_sigmoid_steepness: Option<f64>,
    activity_cutoff: Option<u64>,
    max_validators: Option<usize>,
    stake_threshold: Option<f64>,
    tempo: Option<u64>,
    last_mechanism_step_block: Option<u64>,
    owner_uid: Option<u16>,
}

/// The JSON printed on stdout, keys in this order.
#[derive(Debug, Serialize)]
struct Output {
    consensus: Vec<f64>,
    incentive: Vec<f64>,
    dividends: Vec<f64>,
    validator_trust: Vec<f64>,
    bonds: BondsOut,
    validator_permit: Vec<bool>,
    active: Vec<bool>,
}

/// Output bonds in the form the weights came in.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum BondsOut {
    Matrix(Vec<Vec<f64>>),
    Sparse(SparseRows<f64>),
}

/// Run `connito consensus yuma`: one epoch's input as JSON (see the module doc) in, the epoch's
/// output as one line of compact JSON out (no trailing newline).
pub fn run_json(input: &str) -> Result<String, CliError> {
    let parsed: Input = serde_json::from_str(input)?;
    let (input, form) = to_epoch_input(parsed)?;
    let out = epoch(&input)?;
    Ok(serde_json::to_string(&to_output(out, form))?)
}

/// A proportion given as a float in [0, 1], read as the chain reads its u16 storage:
/// `floor(x·65535 + 1e-9) / 65535`, so `k/65535` round-trips and 0.5 gives 32767.
pub fn proportion_from_float(name: &'static str, x: f64) -> Result<f64, CliError> {
    if !(0.0..=1.0).contains(&x) {
        return Err(CliError::ProportionOutOfRange { name, value: x });
    }
    let scale = f64::from(u16::MAX);
    Ok((x * scale + 1e-9).floor().min(scale) / scale)
}

/// The epoch's input, and the form the weights were given in (the output bonds take it).
fn to_epoch_input(inp: Input) -> Result<(EpochInput, Form), CliError> {
    let n = inp.stake.len();
    if n > usize::from(u16::MAX) + 1 {
        return Err(CliError::TooManyUids { n });
    }
    check_len("last_update", n, inp.last_update.len())?;
    check_len("block_at_registration", n, inp.block_at_registration.len())?;
    let weight_rows = parse_rows("weights", &inp.weights, n)?;
    let bond_rows = match &inp.bonds {
        Some(b) => Some(parse_rows("bonds", b, n)?),
        None => None,
    };
    if let Some(permit) = &inp.validator_permit {
        check_len("validator_permit", n, permit.len())?;
    }

    let weights = weights_to_u16(&weight_rows)?;
    let bonds = match &bond_rows {
        Some(b) => bonds_to_sparse(b)?,
        None => vec![Vec::new(); n],
    };
    let prev_permit = inp
        .validator_permit
        .unwrap_or_else(|| inp.stake.iter().map(|&s| s > 0.0).collect());

    let p = inp.params;
    let mut params = YumaParams::default();
    let proportions = [
        ("kappa", p.kappa, &mut params.kappa),
        ("bonds_penalty", p.bonds_penalty, &mut params.bonds_penalty),
        ("alpha_low", p.alpha_low, &mut params.alpha_low),
        ("alpha_high", p.alpha_high, &mut params.alpha_high),
    ];
    for (name, given, slot) in proportions {
        if let Some(x) = given {
            *slot = proportion_from_float(name, x)?;
        }
    }
    if let Some(v) = p.bonds_moving_average {
        params.bonds_moving_average = v;
    }
    if let Some(v) = p.yuma3 {
        params.yuma3 = v;
    }
    if let Some(v) = p.liquid_alpha {
        params.liquid_alpha = v;
    }
    if let Some(v) = p.alpha_sigmoid_steepness {
        params.alpha_sigmoid_steepness = v;
    }
    if let Some(v) = p.activity_cutoff {
        params.activity_cutoff = v;
    }
    if let Some(v) = p.max_validators {
        params.max_validators = v;
    }
    if let Some(v) = p.stake_threshold {
        params.stake_threshold = v;
    }
    if let Some(v) = p.tempo {
        params.tempo = v;
    }

    let mut input = EpochInput::new(
        inp.stake,
        weights,
        bonds,
        inp.last_update,
        inp.block_at_registration,
        inp.current_block,
        params,
    );
    input.owner_uid = p.owner_uid;
    input.prev_validator_permit = Some(prev_permit);
    input.last_step_block = p.last_mechanism_step_block.unwrap_or(0);
    Ok((input, weight_rows.form))
}

fn check_len(field: &'static str, expected: usize, actual: usize) -> Result<(), CliError> {
    if expected == actual {
        Ok(())
    } else {
        Err(CliError::WrongLength {
            field,
            expected,
            actual,
        })
    }
}

/// Weights to the chain's sparse u16 rows. Any value > 1 anywhere: every value is u16 as stored
/// on chain. Otherwise each row is max-upscaled to u16 as the SDK does (half up; a row of only
/// zeros stays zeros). In matrix form zeros, given or after upscaling, are no entry (an all-zero
/// row is an empty row); in sparse form every listed pair stays an entry.
fn weights_to_u16(rows: &Rows) -> Result<SparseRows<u16>, CliError> {
    if let Some((row, col, value)) = rows.values().find(|e| e.2.is_nan() || e.2 < 0.0) {
        let col = usize::from(col);
        return Err(CliError::NegativeWeight { row, col, value });
    }
    let raw_u16 = rows.values().any(|e| e.2 > 1.0);
    if raw_u16 {
        let bad = rows
            .values()
            .find(|e| e.2.fract() != 0.0 || e.2 > f64::from(u16::MAX));
        if let Some((row, col, value)) = bad {
            let col = usize::from(col);
            return Err(CliError::InvalidU16Weight { row, col, value });
        }
    }
    let mut sparse = Vec::with_capacity(rows.rows.len());
    for row in &rows.rows {
        let values: Vec<f64> = row.iter().map(|e| e.1).collect();
        let stored: Vec<u16> = if raw_u16 {
            values.iter().map(|&v| v as u16).collect()
        } else if values.iter().all(|&v| v == 0.0) {
            vec![0; values.len()]
        } else {
            max_upscale_u16(&values)?
        };
        let keep_zeros = rows.keeps_zeros();
        sparse.push(
            row.iter()
                .zip(stored)
                .filter(|&(_, v)| keep_zeros || v != 0)
                .map(|(&(j, _), v)| (j, v))
                .collect(),
        );
    }
    Ok(sparse)
}

/// Bonds in [0, 1]; a matrix's zeros are no entry, a sparse row's listed zeros are.
fn bonds_to_sparse(rows: &Rows) -> Result<SparseRows<f64>, CliError> {
    if let Some((row, col, value)) = rows.values().find(|e| !(0.0..=1.0).contains(&e.2)) {
        let col = usize::from(col);
        return Err(CliError::BondOutOfRange { row, col, value });
    }
    let keep_zeros = rows.keeps_zeros();
    Ok(rows
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .copied()
                .filter(|&(_, v)| keep_zeros || v != 0.0)
                .collect()
        })
        .collect())
}

fn to_output(out: EpochOutput, form: Form) -> Output {
    let n = out.consensus.len();
    let bonds = match form {
        Form::Sparse => BondsOut::Sparse(out.bonds),
        Form::Matrix => BondsOut::Matrix(
            out.bonds
                .iter()
                .map(|row| {
                    let mut dense = vec![0.0; n];
                    for &(j, v) in row {
                        dense[usize::from(j)] = v;
                    }
                    dense
                })
                .collect(),
        ),
    };
    Output {
        consensus: out.consensus,
        incentive: out.incentive,
        dividends: out.dividends,
        validator_trust: out.validator_trust,
        bonds,
        validator_permit: out.validator_permit,
        active: out.active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The module doc's worked example: two validators (uids 0, 1) and one miner (uid 2).
    const EXAMPLE: &str = r#"{"stake":[600,400,0],"weights":[[0,0.6,1],[0,0,1],[0,0,0]],"last_update":[5990,5950,10],"block_at_registration":[0,0,0],"current_block":6000}"#;
    /// Its output, as printed in the module doc.
    const EXAMPLE_OUTPUT: &str = r#"{"consensus":[0.0,0.375,0.625],"incentive":[0.0,0.2647058823529412,0.7352941176470589],"dividends":[0.7058823529411765,0.29411764705882354,0.0],"validator_trust":[1.0,0.625,0.0],"bonds":[[0.0,1.0,0.6],[0.0,0.0,0.4],[0.0,0.0,0.0]],"validator_permit":[true,true,false],"active":[true,true,false]}"#;

    fn run(v: &Value) -> Result<Value, CliError> {
        let out = run_json(&v.to_string())?;
        Ok(serde_json::from_str(&out).unwrap())
    }

    fn floats(v: &Value, key: &str) -> Vec<f64> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    fn base() -> Value {
        serde_json::from_str(EXAMPLE).unwrap()
    }

    #[test]
    fn example_runs_end_to_end() {
        let out = run_json(EXAMPLE).unwrap();
        println!("echo '{EXAMPLE}' | connito consensus yuma\n{out}");
        assert_eq!(out, EXAMPLE_OUTPUT, "update the module doc");
        let keys = [
            "consensus",
            "incentive",
            "dividends",
            "validator_trust",
            "bonds",
            "validator_permit",
            "active",
        ];
        let at: Vec<usize> = keys
            .iter()
            .map(|k| out.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "keys in order: {at:?}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v.as_object().unwrap().len(), keys.len());
        let incentive = floats(&v, "incentive");
        assert!((incentive.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Consensus is [0, 0.375, 0.625]: uid 0 alone (60% of stake) weights uid 1.
        assert!((incentive[1] - 0.225 / 0.85).abs() < 1e-12);
        assert!((incentive[2] - 0.625 / 0.85).abs() < 1e-12);
        let dividends = floats(&v, "dividends");
        assert!((dividends.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(dividends[2] == 0.0 && dividends[0] > dividends[1]);
        assert_eq!(v["validator_permit"], json!([true, true, false]));
        assert_eq!(v["active"], json!([true, true, false]));
        let bonds = v["bonds"].as_array().unwrap();
        assert_eq!(bonds.len(), 3);
        assert!(bonds.iter().all(|r| r.as_array().unwrap().len() == 3));
    }

    #[test]
    fn u16_and_float_weights_give_the_same_result() {
        // 0.6·65535 = 39321 exactly; row 1 is a single full weight; 0.5 rounds half up to 32768.
        let mut floats_in = base();
        floats_in["weights"] = json!([[0, 0.6, 1], [0, 0, 1], [0, 0.5, 1]]);
        floats_in["stake"] = json!([600, 400, 5]);
        floats_in["last_update"] = json!([5990, 5990, 5990]);
        let mut u16_in = floats_in.clone();
        u16_in["weights"] = json!([[0, 39321, 65535], [0, 0, 65535], [0, 32768, 65535]]);
        let a = run(&floats_in).unwrap();
        let b = run(&u16_in).unwrap();
        assert_eq!(a, b);
        // The conversion itself: half up, zeros dropped, an all-zero row empty.
        let rows = json!([[0.0, 0.5, 1.0], [0.0, 0.0, 0.0], [0.2, 0.0, 0.1]]);
        let rows = parse_rows("weights", &rows, 3).unwrap();
        assert_eq!(
            weights_to_u16(&rows).unwrap(),
            vec![
                vec![(1, 32_768), (2, 65_535)],
                vec![],
                vec![(0, 65_535), (2, 32_768)]
            ]
        );
    }

    #[test]
    fn a_single_value_above_one_makes_the_whole_matrix_u16() {
        // Row 0 stays [0, 0.6, 1] but is now read as u16: 0.6 is not an integer.
        let mut v = base();
        v["weights"] = json!([[0, 0.6, 1], [0, 0, 2], [0, 0, 0]]);
        assert!(matches!(
            run(&v),
            Err(CliError::InvalidU16Weight { row: 0, col: 1, .. })
        ));
        // As integers it is accepted, and [0, 0, 2] weights uid 2 fully, as [0, 0, 65535] does.
        v["weights"] = json!([[0, 3, 5], [0, 0, 2], [0, 0, 0]]);
        let two = run(&v).unwrap();
        v["weights"] = json!([[0, 3, 5], [0, 0, 65535], [0, 0, 0]]);
        assert_eq!(run(&v).unwrap(), two);
    }

    #[test]
    fn defaults_match_explicit_chain_defaults() {
        let mut explicit = base();
        explicit["validator_permit"] = json!([true, true, false]);
        explicit["bonds"] = json!([[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
        explicit["params"] = json!({
            "kappa": 0.5, "bonds_penalty": 1.0, "bonds_moving_average": 900000,
            "yuma3": false, "liquid_alpha": false, "alpha_low": 45_875.0 / 65_535.0, "alpha_high": 0.90001,
            "alpha_sigmoid_steepness": 1000, "activity_cutoff": 5000, "max_validators": 64,
            "stake_threshold": 0, "tempo": 360, "last_mechanism_step_block": null,
            "owner_uid": null
        });
        assert_eq!(run(&base()).unwrap(), run(&explicit).unwrap());
    }

    #[test]
    fn proportions_are_read_as_the_chain_stores_them() {
        let p = |x| proportion_from_float("kappa", x).unwrap();
        assert_eq!(p(0.5), 32_767.0 / 65_535.0);
        assert_eq!(p(0.7), 45_874.0 / 65_535.0);
        assert_eq!(p(0.9), 58_981.0 / 65_535.0);
        assert_eq!(p(0.0), 0.0);
        assert_eq!(p(1.0), 1.0);
        for k in [1_u16, 3, 32_767, 45_875, 58_982, 65_534] {
            let x = f64::from(k) / 65_535.0;
            assert_eq!(p(x), x, "{k}/65535 round-trips");
        }
    }

    #[test]
    fn yuma3_bonds_are_absolute_and_feed_back() {
        let mut v = base();
        v["params"] = json!({"yuma3": true, "liquid_alpha": true});
        let first = run(&v).unwrap();
        let bonds = first["bonds"].clone();
        let flat: Vec<f64> = bonds
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect();
        assert!(flat.iter().all(|b| (0.0..=1.0).contains(b)));
        assert!(flat.iter().any(|&b| b > 0.0));
        v["bonds"] = bonds;
        let second = run(&v).unwrap();
        // Bonds grow towards the weights epoch after epoch.
        let b1 = first["bonds"][0][2].as_f64().unwrap();
        let b2 = second["bonds"][0][2].as_f64().unwrap();
        assert!(b2 > b1, "{b1} -> {b2}");
    }

    #[test]
    fn previous_permits_default_to_non_zero_stake() {
        // uid 2 has stake but only 2 permits go round: by default it still held one last epoch,
        // so its weights count now. Given explicitly without a permit, they don't.
        let mut v = base();
        v["stake"] = json!([600, 400, 300]);
        v["weights"] = json!([[0, 0, 1], [0, 0, 1], [1, 0, 0]]);
        v["last_update"] = json!([5990, 5990, 5990]);
        // uid 2 holds 300/1300 of the stake: enough for a consensus with kappa 0.2.
        v["params"] = json!({"max_validators": 2, "kappa": 0.2});
        let default = run(&v).unwrap();
        assert_eq!(default["validator_permit"], json!([true, true, false]));
        v["validator_permit"] = json!([true, true, true]);
        assert_eq!(run(&v).unwrap(), default);
        v["validator_permit"] = json!([true, true, false]);
        let without = run(&v).unwrap();
        assert_ne!(without["incentive"], default["incentive"]);
        assert_eq!(floats(&without, "incentive")[0], 0.0);
    }

    #[test]
    fn bad_json_is_rejected() {
        assert!(matches!(run_json("{"), Err(CliError::Json(_))));
        assert!(matches!(run_json("[]"), Err(CliError::Json(_))));
        // Missing required field.
        let mut v = base();
        v.as_object_mut().unwrap().remove("current_block");
        assert!(matches!(run(&v), Err(CliError::Json(_))));
        // Wrong type.
        let mut v = base();
        v["last_update"] = json!([5990, -1, 10]);
        assert!(matches!(run(&v), Err(CliError::Json(_))));
        // A misspelt key is an error, not a silently ignored what-if.
        let mut v = base();
        v["params"] = json!({"kapa": 0.6});
        let err = run(&v).unwrap_err();
        assert!(matches!(err, CliError::Json(_)));
        assert!(err.to_string().contains("kapa"), "{err}");
        let mut v = base();
        v["stakes"] = json!([1, 1, 1]);
        assert!(matches!(run(&v), Err(CliError::Json(_))));
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        let cases = [
            ("last_update", json!([5990, 5950])),
            ("block_at_registration", json!([0, 0, 0, 0])),
            ("validator_permit", json!([true])),
            ("weights", json!([[0, 0, 1], [0, 0, 1]])),
            ("bonds", json!([])),
        ];
        for (field, value) in cases {
            let mut v = base();
            v[field] = value;
            match run(&v) {
                Err(CliError::WrongLength { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_square_matrices_are_rejected() {
        let mut v = base();
        v["weights"] = json!([[0, 0.6, 1], [0, 1], [0, 0, 0]]);
        assert!(matches!(
            run(&v),
            Err(CliError::NotSquare {
                field: "weights",
                row: 1,
                expected: 3,
                actual: 2
            })
        ));
        let mut v = base();
        v["bonds"] = json!([[0, 0, 0], [0, 0, 0], [0, 0, 0, 0]]);
        assert!(matches!(
            run(&v),
            Err(CliError::NotSquare {
                field: "bonds",
                row: 2,
                ..
            })
        ));
    }

    #[test]
    fn bad_weights_are_rejected() {
        let mut v = base();
        v["weights"] = json!([[0, 0.6, 1], [0, -0.1, 1], [0, 0, 0]]);
        assert!(matches!(
            run(&v),
            Err(CliError::NegativeWeight { row: 1, col: 1, .. })
        ));
        v["weights"] = json!([[0, 0, 65536], [0, 0, 1], [0, 0, 0]]);
        assert!(matches!(
            run(&v),
            Err(CliError::InvalidU16Weight { row: 0, col: 2, .. })
        ));
        v["weights"] = json!([[0, 0, 2.5], [0, 0, 1], [0, 0, 0]]);
        assert!(matches!(
            run(&v),
            Err(CliError::InvalidU16Weight { row: 0, col: 2, .. })
        ));
    }

    #[test]
    fn out_of_range_proportions_are_rejected() {
        for (name, value) in [
            ("kappa", 1.5),
            ("bonds_penalty", -0.01),
            ("alpha_low", 2.0),
            ("alpha_high", -1.0),
        ] {
            let mut v = base();
            v["params"] = json!({ name: value });
            match run(&v) {
                Err(CliError::ProportionOutOfRange { name: n, value: x }) => {
                    assert_eq!((n, x), (name, value));
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn out_of_range_bonds_are_rejected() {
        let mut v = base();
        v["bonds"] = json!([[0, 0, 40000], [0, 0, 0], [0, 0, 0]]);
        assert!(matches!(
            run(&v),
            Err(CliError::BondOutOfRange { row: 0, col: 2, .. })
        ));
        v["bonds"] = json!([[0, 0, 0], [0, 0, -0.5], [0, 0, 0]]);
        assert!(matches!(
            run(&v),
            Err(CliError::BondOutOfRange { row: 1, col: 2, .. })
        ));
    }

    #[test]
    fn too_many_uids_are_rejected() {
        let mut v = base();
        v["stake"] = Value::Array(vec![json!(0); 65_537]);
        assert!(matches!(run(&v), Err(CliError::TooManyUids { n: 65_537 })));
    }

    #[test]
    fn epoch_errors_are_passed_through() {
        let mut v = base();
        v["stake"] = json!([600, -400, 0]);
        assert!(matches!(
            run(&v),
            Err(CliError::Epoch(YumaError::NegativeStake { uid: 1 }))
        ));
        let mut v = base();
        v["params"] = json!({"alpha_low": 0.95, "alpha_high": 0.9});
        assert!(matches!(
            run(&v),
            Err(CliError::Epoch(YumaError::InvalidParam {
                name: "alpha_high",
                ..
            }))
        ));
        let mut v = base();
        v["params"] = json!({"owner_uid": 3});
        assert!(matches!(
            run(&v),
            Err(CliError::Epoch(YumaError::UidOutOfRange {
                field: "owner_uid",
                ..
            }))
        ));
        let mut v = base();
        v["params"] = json!({"bonds_moving_average": 2e6});
        assert!(matches!(
            run(&v),
            Err(CliError::Epoch(YumaError::InvalidParam {
                name: "bonds_moving_average",
                ..
            }))
        ));
    }
}
