//! Yuma Consensus: one epoch as Subtensor computes it (the production sparse path), plus the
//! emission split and the SDK's weight normalization. PROTOCOL.md §7.
//!
//! Numbers are plain `f64`. The chain computes in fixed point (I64F64 for stake, I32F32 for the
//! rest, resolution 2^-32), so f64 is strictly more precise than the chain and the only
//! disagreements come from the chain's own truncation: expect agreement within about 1e-6 on the
//! normalized outputs (consensus, incentive, dividends, validator trust, bonds). Two places can
//! differ by more: exact ties (a stake sum exactly equal to kappa, equal stakes at the permit
//! cut-off), where both sides may round either way; and the u16 values the chain stores (bonds,
//! incentive), which it truncates, so they can differ by one or two units in the last place.
//!
//! Everything here is pure: no I/O, no clocks, no randomness.

pub mod cli;
mod cli_rows;
#[cfg(test)]
pub(crate) mod scenarios;
mod sparse;
mod yuma;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_chain;
#[cfg(test)]
mod tests_cli_scenarios;
#[cfg(test)]
mod tests_permits;
#[cfg(test)]
mod tests_scenarios;

use serde::{Deserialize, Serialize};

pub use yuma::epoch;

/// Sparse matrix row by row: row `i` lists `(column uid, value)`.
pub type SparseRows<T> = Vec<Vec<(u16, T)>>;

/// Subnet hyperparameters that enter the epoch, in float form (the chain stores several of
/// them as u16 fractions of 65535).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct YumaParams {
    /// Consensus majority; chain default `Kappa = 32767`, i.e. 32767/65535 (just under 0.5).
    pub kappa: f64,
    /// β in `W_b = W + β(W̄ - W)`; chain default `BondsPenalty = 65535`, i.e. 1.0.
    pub bonds_penalty: f64,
    /// Raw `BondsMovingAverage` (default 900_000); bond EMA rate α = 1 - bma/1e6.
    pub bonds_moving_average: f64,
    /// Yuma3: absolute bonds in [0, 1] and stake-weighted dividends.
    pub yuma3: bool,
    /// Liquid alpha (only used by Yuma3, as on chain): per-bond α from a sigmoid.
    pub liquid_alpha: bool,
    /// Liquid alpha bounds; chain default `AlphaValues = (45875, 58982)` / 65535 (0.7, 0.9).
    pub alpha_low: f64,
    pub alpha_high: f64,
    /// Liquid alpha sigmoid steepness; chain default 1000.
    pub alpha_sigmoid_steepness: f64,
    /// Blocks without a weight update after which a uid counts as inactive (default 5000).
    pub activity_cutoff: u64,
    /// `MaxAllowedValidators`: number of validator permits (64 on new subnets).
    pub max_validators: usize,
    /// Raw stake below which a uid's stake is zeroed (chain default 0).
    pub stake_threshold: f64,
    /// Tempo in blocks (default 360); only used to find the previous epoch for the bond mask.
    pub tempo: u64,
}

impl Default for YumaParams {
    fn default() -> Self {
        Self {
            kappa: 32_767.0 / 65_535.0,
            bonds_penalty: 1.0,
            bonds_moving_average: 900_000.0,
            yuma3: false,
            liquid_alpha: false,
            alpha_low: 45_875.0 / 65_535.0,
            alpha_high: 58_982.0 / 65_535.0,
            alpha_sigmoid_steepness: 1000.0,
            activity_cutoff: 5000,
            max_validators: 64,
            stake_threshold: 0.0,
            tempo: 360,
        }
    }
}

/// Everything one epoch reads, indexed by uid (`n = stake.len()`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EpochInput {
    /// Per-uid stake, raw units.
    pub stake: Vec<f64>,
    /// Sparse weight rows as stored on chain: row `i` = uid `i`'s `(target uid, u16 value)`.
    /// Explicit zeros are kept, as the chain keeps them (they matter under liquid alpha).
    pub weights: SparseRows<u16>,
    /// Previous bonds, sparse. Original Yuma: any per-column scale (the chain column-normalizes
    /// them first; [`bonds_from_u16`] of storage works). Yuma3: absolute values in [0, 1].
    pub bonds: SparseRows<f64>,
    pub last_update: Vec<u64>,
    pub block_at_registration: Vec<u64>,
    pub current_block: u64,
    pub params: YumaParams,
    /// Subnet owner's uid: always permitted, keeps its self-weight, exempt from the threshold.
    pub owner_uid: Option<u16>,
    /// The permits stored by the previous epoch (the chain masks with those and only stores the
    /// new ones). `None`: use this epoch's top-k permits.
    pub prev_validator_permit: Option<Vec<bool>>,
    /// Block of the last epoch step (`LastMechansimStepBlock`); 0 = unknown, then
    /// `current_block - tempo`. Bonds towards uids registered since then are dropped.
    pub last_step_block: u64,
}

impl EpochInput {
    /// An input with the optional chain context (owner, previous permits, last step) left unset.
    pub fn new(
        stake: Vec<f64>,
        weights: SparseRows<u16>,
        bonds: SparseRows<f64>,
        last_update: Vec<u64>,
        block_at_registration: Vec<u64>,
        current_block: u64,
        params: YumaParams,
    ) -> Self {
        Self {
            stake,
            weights,
            bonds,
            last_update,
            block_at_registration,
            current_block,
            params,
            ..Self::default()
        }
    }
}

/// Per-uid results of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochOutput {
    pub active: Vec<bool>,
    /// The new permits (what the chain stores as `ValidatorPermit`).
    pub validator_permit: Vec<bool>,
    pub consensus: Vec<f64>,
    pub incentive: Vec<f64>,
    pub dividends: Vec<f64>,
    pub validator_trust: Vec<f64>,
    /// New bonds; rows of uids without a new permit are empty, as on chain. Original Yuma:
    /// column-normalized (the chain stores them column max-upscaled, see [`bonds_to_u16`]).
    /// Yuma3: absolute values in [0, 1].
    pub bonds: SparseRows<f64>,
    /// Stake after the threshold, normalized.
    pub stake: Vec<f64>,
    /// Stake of active, permitted uids, normalized (all zero if there is none).
    pub active_stake: Vec<f64>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum YumaError {
    #[error("{field} has length {actual}, expected {expected}")]
    LengthMismatch {
        field: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("{field} row {row} refers to uid {uid}, which is out of range")]
    UidOutOfRange {
        field: &'static str,
        row: usize,
        uid: u16,
    },
    #[error("{field} row {row} lists uid {uid} more than once")]
    DuplicateUid {
        field: &'static str,
        row: usize,
        uid: u16,
    },
    #[error("{n} uids do not fit in u16 uid space")]
    TooManyUids { n: usize },
    #[error("stake of uid {uid} is not finite")]
    NonFiniteStake { uid: usize },
    #[error("stake of uid {uid} is negative")]
    NegativeStake { uid: usize },
    #[error("bond of row {row} to uid {uid} is negative or not finite")]
    InvalidBond { row: usize, uid: u16 },
    #[error("parameter {name} = {value} is out of range")]
    InvalidParam { name: &'static str, value: f64 },
    #[error("weight at index {index} is negative or not finite")]
    InvalidWeight { index: usize },
    #[error("all weights are zero (or there are none)")]
    ZeroWeights,
}

/// Emission split: miners get `I_i/(ΣI+ΣD)·E'`, validators `D_i/(ΣI+ΣD)·E'` with
/// `E' = E·(1 - owner_cut)`; returns per-uid emission and the owner's cut `E·owner_cut`.
/// If incentive and dividends are all zero nothing but the owner cut is emitted (the chain would
/// instead pay validators by stake in that case). Missing entries of the shorter slice count as
/// zero; negative or non-finite entries count as zero; `owner_cut` is clamped to [0, 1].
pub fn split_emission(
    incentive: &[f64],
    dividends: &[f64],
    emission: f64,
    owner_cut: f64,
) -> (Vec<f64>, f64) {
    let clean = |x: Option<&f64>| match x {
        Some(&v) if v.is_finite() && v > 0.0 => v,
        _ => 0.0,
    };
    let cut = if owner_cut.is_nan() {
        0.0
    } else {
        owner_cut.clamp(0.0, 1.0)
    };
    let owner = emission * cut;
    let rest = emission - owner;
    let n = incentive.len().max(dividends.len());
    let combined: Vec<f64> = (0..n)
        .map(|i| clean(incentive.get(i)) + clean(dividends.get(i)))
        .collect();
    let total = sparse::sum(combined.iter().copied());
    if total <= 0.0 {
        return (vec![0.0; n], owner);
    }
    (combined.iter().map(|c| c / total * rest).collect(), owner)
}

/// SDK-style weight normalization: scale so the largest weight becomes 65535, rounding half up.
/// Errors on a negative or non-finite weight, and with [`YumaError::ZeroWeights`] when the input
/// is empty or all zero (there is nothing to commit).
pub fn max_upscale_u16(weights: &[f64]) -> Result<Vec<u16>, YumaError> {
    if let Some(index) = weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
        return Err(YumaError::InvalidWeight { index });
    }
    let max = weights.iter().copied().fold(0.0_f64, f64::max);
    if max <= 0.0 {
        return Err(YumaError::ZeroWeights);
    }
    let scale = f64::from(u16::MAX);
    Ok(weights
        .iter()
        // `round` is half away from zero, i.e. half up for non-negative values.
        .map(|w| (w * scale / max).round().min(scale) as u16)
        .collect())
}

/// Subtensor's `vec_u16_max_upscale_to_u16`, bit for bit: what `set_weights` and
/// `reveal_weights` store for the values they were sent. Every value stays an entry (zeros too);
/// the largest becomes 65535. The chain computes in I32F32 fixed point, which this follows
/// exactly: with a maximum above 32768 it multiplies by the truncated quotient `65535 / max`,
/// otherwise it divides `v · 65535` by `max` (truncated to 32 fractional bits); either is then
/// rounded half up. So `[40000, 20000]` stores `[65535, 32767]`, where exact arithmetic would give
/// 32768. An all-zero (or empty) input is stored as it is.
pub fn chain_max_upscale(values: &[u16]) -> Vec<u16> {
    const FRAC: u32 = 32;
    let max = u128::from(values.iter().copied().max().unwrap_or(0));
    if max == 0 {
        return values.to_vec();
    }
    let quotient = (u128::from(u16::MAX) << (2 * FRAC)) / (max << FRAC);
    values
        .iter()
        .map(|&v| {
            let v = u128::from(v);
            let bits = if max > 32_768 {
                v * quotient
            } else {
                ((v * u128::from(u16::MAX)) << FRAC) / max
            };
            let rounded = (bits + (1 << (FRAC - 1))) >> FRAC;
            rounded.min(u128::from(u16::MAX)) as u16
        })
        .collect()
}

/// Bonds as the chain stores them (`Bonds` storage, u16). Original Yuma: each column
/// max-upscaled, then `floor(x·65535)`; Yuma3: `floor(x·65535)` of the absolute bond.
pub fn bonds_to_u16(bonds: &[Vec<(u16, f64)>], yuma3: bool) -> SparseRows<u16> {
    let mut scaled: SparseRows<f64> = bonds.to_vec();
    if !yuma3 {
        let cols = bonds
            .iter()
            .flatten()
            .map(|&(j, _)| usize::from(j) + 1)
            .max()
            .unwrap_or(0);
        sparse::col_max_upscale(&mut scaled, cols);
    }
    let scale = f64::from(u16::MAX);
    scaled
        .iter()
        .map(|row| {
            row.iter()
                .map(|&(j, v)| (j, (v * scale).floor().clamp(0.0, scale) as u16))
                .collect()
        })
        .collect()
}

/// Stored u16 bonds as input bonds: `x / 65535` (absolute for Yuma3; for original Yuma the
/// scale does not matter).
pub fn bonds_from_u16(stored: &[Vec<(u16, u16)>]) -> SparseRows<f64> {
    stored
        .iter()
        .map(|row| {
            row.iter()
                .map(|&(j, v)| (j, f64::from(v) / f64::from(u16::MAX)))
                .collect()
        })
        .collect()
}
