//! One Yuma Consensus epoch (subtensor `epoch_mechanism`, sparse path) in f64.

use super::sparse::{self, Sparse};
use super::{EpochInput, EpochOutput, YumaError, YumaParams};

/// Run one epoch. Steps as in PROTOCOL.md §7 and subtensor's `epoch_mechanism`:
///
/// 1. active: `last_update + activity_cutoff >= current_block`;
/// 2. stake below the threshold zeroed (owner exempt), normalized;
/// 3. new permits: top-`max_validators` non-zero stake (owner always);
/// 4. active stake: stake of active uids holding a (previous) permit, normalized;
/// 5. weights: permitted rows only, no self-weight (owner excepted), no weight set at or before
///    the target's registration, rows normalized;
/// 6. consensus: stake-weighted median per column with majority kappa;
/// 7. clipped weights `min(w, c)`, validator trust = row sums;
/// 8. incentive = normalized ranks `Σ_i S_i W̄_ij`;
/// 9. bonds and dividends (original Yuma or Yuma3), bonds to uids registered since the previous
///    epoch dropped first.
pub fn epoch(input: &EpochInput) -> Result<EpochOutput, YumaError> {
    validate(input)?;
    let n = input.stake.len();
    let p = &input.params;
    let owner = input.owner_uid.map(usize::from);

    // 1. Active.
    let active: Vec<bool> = input
        .last_update
        .iter()
        .map(|&u| u.saturating_add(p.activity_cutoff) >= input.current_block)
        .collect();

    // 2. Stake.
    let mut stake: Vec<f64> = input
        .stake
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            if Some(i) != owner && s < p.stake_threshold {
                0.0
            } else {
                s
            }
        })
        .collect();
    sparse::normalize(&mut stake);

    // 3. Permits: new ones are the output; the chain masks with the stored (previous) ones.
    let mut new_permit = sparse::is_topk_nonzero(&stake, p.max_validators);
    let mut permit = input
        .prev_validator_permit
        .clone()
        .unwrap_or_else(|| new_permit.clone());
    if let Some(o) = owner {
        new_permit[o] = true;
        permit[o] = true;
    }

    // 4. Active stake.
    let mut active_stake: Vec<f64> = (0..n)
        .map(|i| {
            if active[i] && permit[i] {
                stake[i]
            } else {
                0.0
            }
        })
        .collect();
    sparse::normalize(&mut active_stake);

    // 5. Weights.
    let mut weights: Sparse = input
        .weights
        .iter()
        .enumerate()
        .map(|(i, row)| {
            if !permit[i] {
                return Vec::new();
            }
            row.iter()
                .filter(|&&(j, _)| {
                    let j = usize::from(j);
                    (i != j || Some(i) == owner)
                        && input.last_update[i] > input.block_at_registration[j]
                })
                .map(|&(j, v)| (j, f64::from(v)))
                .collect()
        })
        .collect();
    sparse::row_normalize(&mut weights);

    // 6-8. Consensus, clipping, trust, incentive.
    let consensus = sparse::weighted_median_cols(&active_stake, &weights, n, p.kappa);
    let clipped = sparse::col_clip(&weights, &consensus);
    let validator_trust = sparse::row_sums(&clipped);
    let mut incentive = sparse::matmul(&clipped, &active_stake, n);
    sparse::normalize(&mut incentive);

    // 9. Bonds and dividends.
    let weights_for_bonds = sparse::interpolate(&weights, &clipped, n, p.bonds_penalty);
    let last_tempo = if input.last_step_block == 0 {
        input.current_block.saturating_sub(p.tempo)
    } else {
        input.last_step_block.saturating_add(1)
    };
    let old_bonds: Sparse = input
        .bonds
        .iter()
        .map(|row| {
            row.iter()
                .filter(|&&(j, _)| last_tempo > input.block_at_registration[usize::from(j)])
                .copied()
                .collect()
        })
        .collect();
    let alpha = 1.0 - p.bonds_moving_average / 1e6;
    let (dividends, mut bonds) = if p.yuma3 {
        yuma3_bonds(
            p,
            &weights_for_bonds,
            &old_bonds,
            &consensus,
            &incentive,
            &active_stake,
            alpha,
        )
    } else {
        original_bonds(
            &weights_for_bonds,
            old_bonds,
            &incentive,
            &active_stake,
            alpha,
        )
    };
    for (row, &permitted) in bonds.iter_mut().zip(&new_permit) {
        if !permitted {
            row.clear();
        }
    }

    Ok(EpochOutput {
        active,
        validator_permit: new_permit,
        consensus,
        incentive,
        dividends,
        validator_trust,
        bonds,
        stake,
        active_stake,
    })
}

/// Original Yuma: `ΔB = colnorm(S ⊙ W_b)`, `B = colnorm(α ΔB + (1-α) colnorm(B_old))`,
/// `D = normalize(B I)`.
fn original_bonds(
    weights_for_bonds: &Sparse,
    mut old: Sparse,
    incentive: &[f64],
    active_stake: &[f64],
    alpha: f64,
) -> (Vec<f64>, Sparse) {
    let n = incentive.len();
    sparse::col_normalize(&mut old, n);
    let mut delta = sparse::row_hadamard(weights_for_bonds, active_stake);
    sparse::col_normalize(&mut delta, n);
    let mut bonds = sparse::ema(&delta, &old, n, alpha);
    sparse::col_normalize(&mut bonds, n);
    let mut dividends = sparse::matmul_transpose(&bonds, incentive);
    sparse::normalize(&mut dividends);
    (dividends, bonds)
}

/// Yuma3: absolute bonds `B = min(1, (1-α) B_old + α W_b)` (per-entry α under liquid alpha),
/// `D_i = normalize((colnorm(B) I)_i · S_i)` — the chain weighs dividends by active stake.
fn yuma3_bonds(
    p: &YumaParams,
    weights_for_bonds: &Sparse,
    old: &Sparse,
    consensus: &[f64],
    incentive: &[f64],
    active_stake: &[f64],
    alpha: f64,
) -> (Vec<f64>, Sparse) {
    let n = incentive.len();
    let bonds: Sparse = if p.liquid_alpha && consensus.iter().any(|&c| c != 0.0) {
        let alphas = sparse::liquid_alphas(
            weights_for_bonds,
            old,
            consensus,
            p.alpha_low,
            p.alpha_high,
            p.alpha_sigmoid_steepness,
        );
        sparse::ema_per_entry(weights_for_bonds, old, &alphas, n)
    } else {
        let mut b = sparse::ema(weights_for_bonds, old, n, alpha);
        b.iter_mut().flatten().for_each(|e| e.1 = e.1.min(1.0));
        b
    };
    let mut normalized = bonds.clone();
    sparse::col_normalize(&mut normalized, n);
    let per_validator = sparse::matmul_transpose(&normalized, incentive);
    let mut dividends: Vec<f64> = per_validator
        .iter()
        .zip(active_stake)
        .map(|(d, s)| d * s)
        .collect();
    sparse::normalize(&mut dividends);
    (dividends, bonds)
}

fn check_param(name: &'static str, value: f64, lo: f64, hi: f64) -> Result<(), YumaError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(YumaError::InvalidParam { name, value })
    }
}

fn check_len(field: &'static str, expected: usize, actual: usize) -> Result<(), YumaError> {
    if expected == actual {
        Ok(())
    } else {
        Err(YumaError::LengthMismatch {
            field,
            expected,
            actual,
        })
    }
}

fn check_rows<T>(field: &'static str, rows: &[Vec<(u16, T)>], n: usize) -> Result<(), YumaError> {
    let mut seen = vec![usize::MAX; n];
    for (row, entries) in rows.iter().enumerate() {
        for &(uid, _) in entries {
            let j = usize::from(uid);
            if j >= n {
                return Err(YumaError::UidOutOfRange { field, row, uid });
            }
            if seen[j] == row {
                return Err(YumaError::DuplicateUid { field, row, uid });
            }
            seen[j] = row;
        }
    }
    Ok(())
}

fn validate(input: &EpochInput) -> Result<(), YumaError> {
    let n = input.stake.len();
    if n > usize::from(u16::MAX) + 1 {
        return Err(YumaError::TooManyUids { n });
    }
    check_len("weights", n, input.weights.len())?;
    check_len("bonds", n, input.bonds.len())?;
    check_len("last_update", n, input.last_update.len())?;
    check_len(
        "block_at_registration",
        n,
        input.block_at_registration.len(),
    )?;
    if let Some(prev) = &input.prev_validator_permit {
        check_len("prev_validator_permit", n, prev.len())?;
    }
    if let Some(uid) = input.owner_uid.filter(|&o| usize::from(o) >= n) {
        return Err(YumaError::UidOutOfRange {
            field: "owner_uid",
            row: 0,
            uid,
        });
    }
    for (uid, &s) in input.stake.iter().enumerate() {
        if !s.is_finite() {
            return Err(YumaError::NonFiniteStake { uid });
        }
        if s < 0.0 {
            return Err(YumaError::NegativeStake { uid });
        }
    }
    check_rows("weights", &input.weights, n)?;
    check_rows("bonds", &input.bonds, n)?;
    for (row, entries) in input.bonds.iter().enumerate() {
        if let Some(&(uid, _)) = entries.iter().find(|e| !e.1.is_finite() || e.1 < 0.0) {
            return Err(YumaError::InvalidBond { row, uid });
        }
    }
    let p = &input.params;
    check_param("kappa", p.kappa, 0.0, 1.0)?;
    check_param("bonds_penalty", p.bonds_penalty, 0.0, 1.0)?;
    check_param("bonds_moving_average", p.bonds_moving_average, 0.0, 1e6)?;
    check_param("alpha_low", p.alpha_low, 0.0, 1.0)?;
    check_param("alpha_high", p.alpha_high, p.alpha_low, 1.0)?;
    check_param(
        "alpha_sigmoid_steepness",
        p.alpha_sigmoid_steepness,
        f64::MIN,
        f64::MAX,
    )?;
    check_param("stake_threshold", p.stake_threshold, f64::MIN, f64::MAX)?;
    Ok(())
}
