//! Sparse-matrix and vector helpers with the chain's semantics (subtensor `epoch/math.rs`),
//! in f64. Rows are `(column, value)` lists; columns are `< n`, checked by the caller.

use super::SparseRows;

pub(crate) type Sparse = SparseRows<f64>;

/// Sum starting from +0.0 (`Iterator::sum` starts from -0.0, so empty sums would be -0.0).
pub(crate) fn sum(it: impl IntoIterator<Item = f64>) -> f64 {
    it.into_iter().fold(0.0, |a, b| a + b)
}

/// Normalize to sum 1; a vector summing to zero is left as it is.
pub(crate) fn normalize(x: &mut [f64]) {
    let sum = sum(x.iter().copied());
    if sum > 0.0 {
        x.iter_mut().for_each(|v| *v /= sum);
    }
}

/// Normalize each row to sum 1 (rows summing to zero are left alone).
pub(crate) fn row_normalize(m: &mut Sparse) {
    for row in m.iter_mut() {
        let sum = sum(row.iter().map(|e| e.1));
        if sum > 0.0 {
            row.iter_mut().for_each(|e| e.1 /= sum);
        }
    }
}

fn col_reduce(m: &Sparse, n: usize, init: f64, f: fn(f64, f64) -> f64) -> Vec<f64> {
    let mut acc = vec![init; n];
    for &(j, v) in m.iter().flatten() {
        if let Some(a) = acc.get_mut(usize::from(j)) {
            *a = f(*a, v);
        }
    }
    acc
}

fn col_divide(m: &mut Sparse, by: &[f64]) {
    for e in m.iter_mut().flatten() {
        let d = by.get(usize::from(e.0)).copied().unwrap_or(0.0);
        if d != 0.0 {
            e.1 /= d;
        }
    }
}

/// Normalize each column to sum 1 (columns summing to zero are left alone).
pub(crate) fn col_normalize(m: &mut Sparse, n: usize) {
    let sums = col_reduce(m, n, 0.0, |a, v| a + v);
    col_divide(m, &sums);
}

/// Scale each column so its largest entry is 1.
pub(crate) fn col_max_upscale(m: &mut Sparse, n: usize) {
    let maxes = col_reduce(m, n, 0.0, f64::max);
    col_divide(m, &maxes);
}

/// `result_i = Σ_j m_ij`.
pub(crate) fn row_sums(m: &Sparse) -> Vec<f64> {
    m.iter().map(|row| sum(row.iter().map(|e| e.1))).collect()
}

/// `result_j = Σ_i v_i m_ij`.
pub(crate) fn matmul(m: &Sparse, v: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n];
    for (row, &vi) in m.iter().zip(v) {
        for &(j, x) in row {
            out[usize::from(j)] += vi * x;
        }
    }
    out
}

/// `result_i = Σ_j m_ij v_j`.
pub(crate) fn matmul_transpose(m: &Sparse, v: &[f64]) -> Vec<f64> {
    m.iter()
        .map(|row| sum(row.iter().map(|&(j, x)| x * v[usize::from(j)])))
        .collect()
}

/// `m_ij · v_i` (zeros kept, as on chain).
pub(crate) fn row_hadamard(m: &Sparse, v: &[f64]) -> Sparse {
    m.iter()
        .zip(v)
        .map(|(row, &vi)| row.iter().map(|&(j, x)| (j, x * vi)).collect())
        .collect()
}

/// `min(m_ij, c_j)`; an entry clipped down to a zero threshold disappears, as on chain.
pub(crate) fn col_clip(m: &Sparse, c: &[f64]) -> Sparse {
    m.iter()
        .map(|row| {
            row.iter()
                .filter_map(|&(j, x)| {
                    let th = c[usize::from(j)];
                    if th < x {
                        (th > 0.0).then_some((j, th))
                    } else {
                        Some((j, x))
                    }
                })
                .collect()
        })
        .collect()
}

fn dense_row(row: &[(u16, f64)], n: usize) -> Vec<f64> {
    let mut d = vec![0.0; n];
    for &(j, x) in row {
        d[usize::from(j)] = x;
    }
    d
}

/// `a + ratio·(b - a)`; ratio 0 and 1 return `a` and `b` unchanged, otherwise only positive
/// entries are kept (chain `interpolate_sparse`).
pub(crate) fn interpolate(a: &Sparse, b: &Sparse, n: usize, ratio: f64) -> Sparse {
    if ratio == 0.0 {
        return a.clone();
    }
    if ratio == 1.0 {
        return b.clone();
    }
    a.iter()
        .zip(b)
        .map(|(ra, rb)| {
            let (da, db) = (dense_row(ra, n), dense_row(rb, n));
            (0..n)
                .filter_map(|j| {
                    let v = da[j] + ratio * (db[j] - da[j]);
                    (v > 0.0).then_some((j as u16, v))
                })
                .collect()
        })
        .collect()
}

/// `alpha·new + (1-alpha)·old`, positive entries only (chain `mat_ema_sparse`).
pub(crate) fn ema(new: &Sparse, old: &Sparse, n: usize, alpha: f64) -> Sparse {
    new.iter()
        .zip(old)
        .map(|(rn, ro)| {
            let mut acc = vec![0.0; n];
            for &(j, x) in rn {
                acc[usize::from(j)] += alpha * x;
            }
            for &(j, x) in ro {
                acc[usize::from(j)] += (1.0 - alpha) * x;
            }
            (0..n)
                .filter_map(|j| (acc[j] > 0.0).then_some((j as u16, acc[j])))
                .collect()
        })
        .collect()
}

/// Per-entry EMA with `alpha[i][j]`, capped at 1 (chain `mat_ema_alpha_sparse`). As on chain,
/// only columns present in the new row survive: an old bond without any new entry (not even an
/// explicit zero weight) is dropped.
pub(crate) fn ema_per_entry(new: &Sparse, old: &Sparse, alpha: &[Vec<f64>], n: usize) -> Sparse {
    new.iter()
        .zip(old)
        .zip(alpha)
        .map(|((rn, ro), ra)| {
            let d_old = dense_row(ro, n);
            rn.iter()
                .filter_map(|&(j, x)| {
                    let a = ra[usize::from(j)];
                    let v = ((1.0 - a) * d_old[usize::from(j)] + (a * x).max(0.0)).min(1.0);
                    (v > 0.0).then_some((j, v))
                })
                .collect()
        })
        .collect()
}

/// Liquid alpha per (validator, miner) pair (chain `alpha_sigmoid`), given the weights used for
/// bonds, the previous bonds and this epoch's consensus.
pub(crate) fn liquid_alphas(
    w: &Sparse,
    b: &Sparse,
    consensus: &[f64],
    low: f64,
    high: f64,
    steepness: f64,
) -> Vec<Vec<f64>> {
    let n = consensus.len();
    w.iter()
        .zip(b)
        .map(|(rw, rb)| {
            let (dw, db) = (dense_row(rw, n), dense_row(rb, n));
            (0..n)
                .map(|j| {
                    let combined = if dw[j] >= db[j] {
                        (dw[j] - consensus[j]).clamp(0.0, 1.0)
                    } else {
                        (db[j] - dw[j]).clamp(0.0, 1.0)
                    };
                    let exponent = (-steepness / 100.0 * (combined - 0.5)).clamp(-20.0, 20.0);
                    let sigmoid = 1.0 / (1.0 + exponent.exp());
                    (low + sigmoid * (high - low)).clamp(low, high)
                })
                .collect()
        })
        .collect()
}

/// Top-k by value among non-zero entries (chain `is_topk_nonzero`): with at least k entries,
/// the n-k smallest lose, and among equal values the lower index loses (stable ascending sort).
pub(crate) fn is_topk_nonzero(v: &[f64], k: usize) -> Vec<bool> {
    let mut out: Vec<bool> = v.iter().map(|&x| x != 0.0).collect();
    if v.len() < k {
        return out;
    }
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    for &i in idx.iter().take(v.len() - k) {
        out[i] = false;
    }
    out
}

/// Stake-weighted median per column with majority `kappa` (chain `weighted_median_col_sparse`).
///
/// Only rows with positive stake take part, their stake renormalized; a row without an entry in
/// a column counts as weight 0 there. The result is the largest value `x` in the column such
/// that the stake with weight `>= x` is at least `kappa`: the chain's
/// `stake(< x) <= Σstake - kappa < stake(<= x)`.
pub(crate) fn weighted_median_cols(stake: &[f64], w: &Sparse, n: usize, kappa: f64) -> Vec<f64> {
    let rows: Vec<usize> = (0..stake.len()).filter(|&i| stake[i] > 0.0).collect();
    let mut use_stake: Vec<f64> = rows.iter().map(|&i| stake[i]).collect();
    normalize(&mut use_stake);
    if use_stake.is_empty() {
        return vec![0.0; n];
    }
    let stake_sum = sum(use_stake.iter().copied());
    let minority = stake_sum - kappa;
    let mut cols: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n];
    for (k, &i) in rows.iter().enumerate() {
        for &(j, x) in &w[i] {
            cols[usize::from(j)].push((x, use_stake[k]));
        }
    }
    cols.into_iter()
        .map(|mut col| {
            if col.len() < rows.len() {
                // Rows without an entry weigh 0 here.
                let explicit = sum(col.iter().map(|e| e.1));
                col.push((0.0, (stake_sum - explicit).max(0.0)));
            }
            col.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut cum = 0.0;
            let mut k = 0;
            while k < col.len() {
                let x = col[k].0;
                while k < col.len() && col[k].0 == x {
                    cum += col[k].1;
                    k += 1;
                }
                if minority < cum {
                    return x;
                }
            }
            col.last().map_or(0.0, |e| e.0)
        })
        .collect()
}
