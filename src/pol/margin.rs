//! The score rule: a candidate earns only a real improvement over the global model.
//!
//! Both models are evaluated on the same held-out batches, so the test is paired: per batch
//! `d_i = baseline_i − candidate_i`, and the improvement counts only when its mean exceeds
//! `min_delta` and `sigmas` standard errors of the mean (`sd(d) / √n`, sample standard deviation).
//! Noise added to the global experts moves the per-batch losses both ways and fails the test on
//! any backend. A candidate with any non-finite batch loss has loss `+inf`: a shard cannot pick
//! which batches count by overflowing on the hard ones.

use serde::{Deserialize, Serialize};

/// The score of one submission and how it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolScore {
    /// Mean loss of the global model over the batches.
    #[serde(with = "crate::serde_f64")]
    pub baseline: f64,
    /// Mean loss of the candidate (`+inf` if any batch loss is not finite).
    #[serde(with = "crate::serde_f64")]
    pub candidate: f64,
    /// The credited improvement: `baseline − candidate` when significant, else 0.
    pub delta: f64,
    /// Standard error of the mean per-batch improvement (`+inf` with fewer than two batches).
    #[serde(with = "crate::serde_f64")]
    pub std_err: f64,
    /// Whether the improvement passed the margin test.
    pub significant: bool,
    /// `delta^exponent`.
    pub score: f64,
}

/// The margin a candidate's improvement must clear (part of `[pol]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Margin {
    /// Standard errors the mean improvement must exceed (0 turns the paired test off).
    pub sigmas: f64,
    /// Absolute improvement (nats) the mean must exceed.
    pub min_delta: f64,
    /// `score = delta^exponent`.
    pub exponent: f64,
}

/// Mean of the batch losses; `+inf` when any is not finite or there are none.
pub fn mean_loss(losses: &[f64]) -> f64 {
    if losses.is_empty() || losses.iter().any(|l| !l.is_finite()) {
        return f64::INFINITY;
    }
    losses.iter().sum::<f64>() / losses.len() as f64
}

/// Mean and standard error of the paired improvements `baseline_i − candidate_i`.
pub fn paired_improvement(baseline: &[f64], candidate: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = baseline.iter().zip(candidate).map(|(b, c)| b - c).collect();
    let n = d.len() as f64;
    if d.is_empty() {
        return (0.0, f64::INFINITY);
    }
    let mean = d.iter().sum::<f64>() / n;
    if d.len() < 2 {
        return (mean, f64::INFINITY);
    }
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Scores a candidate from the per-batch losses of the global model and of the candidate on the
/// same batches.
pub fn judge(baseline: &[f64], candidate: &[f64], m: &Margin) -> PolScore {
    let (b, c) = (mean_loss(baseline), mean_loss(candidate));
    let comparable = b.is_finite() && c.is_finite() && baseline.len() == candidate.len();
    let (mean, std_err) = if comparable {
        paired_improvement(baseline, candidate)
    } else {
        (0.0, f64::INFINITY)
    };
    let clears_noise = if m.sigmas > 0.0 {
        mean > m.sigmas * std_err
    } else {
        true
    };
    let significant = comparable && mean > m.min_delta && mean > 0.0 && clears_noise;
    let delta = if significant { mean } else { 0.0 };
    PolScore {
        baseline: b,
        candidate: c,
        delta,
        std_err,
        significant,
        score: if significant {
            delta.powf(m.exponent)
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Margin = Margin {
        sigmas: 2.0,
        min_delta: 0.0,
        exponent: 1.2,
    };

    #[test]
    fn mean_loss_is_inf_on_any_non_finite_batch() {
        assert_eq!(mean_loss(&[1.0, 3.0]), 2.0);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(mean_loss(&[1.0, bad, 3.0]), f64::INFINITY);
        }
        assert_eq!(mean_loss(&[]), f64::INFINITY);
    }

    #[test]
    fn paired_improvement_mean_and_standard_error() {
        let (m, se) = paired_improvement(&[3.0, 3.0, 3.0, 3.0], &[2.0, 2.2, 1.8, 2.0]);
        assert!((m - 1.0).abs() < 1e-12);
        // d = 1, 0.8, 1.2, 1: sample variance 0.08/3, se = sqrt(0.08/3/4).
        assert!((se - (0.08f64 / 12.0).sqrt()).abs() < 1e-12);
        assert_eq!(paired_improvement(&[1.0], &[0.5]), (0.5, f64::INFINITY));
        assert_eq!(paired_improvement(&[], &[]), (0.0, f64::INFINITY));
    }

    #[test]
    fn judge_table() {
        let base = [3.0, 3.1, 2.9, 3.0];
        let nan = f64::NAN;
        // (candidate, significant, delta)
        let rows: [(&[f64], bool, f64); 7] = [
            // A clear, consistent improvement.
            (&[2.0, 2.1, 1.9, 2.0], true, 1.0),
            // Noise: better on some batches, worse on others; mean 0.025 within 2 se.
            (&[2.9, 3.2, 2.8, 3.0], false, 0.0),
            // Worse everywhere.
            (&[3.5, 3.6, 3.4, 3.5], false, 0.0),
            // Unchanged (a free rider).
            (&base, false, 0.0),
            // Brilliant on three batches, overflows on the hard one: +inf, nothing.
            (&[0.1, 0.1, 0.1, nan], false, 0.0),
            (&[0.1, 0.1, 0.1, f64::INFINITY], false, 0.0),
            // A different number of batches is never compared.
            (&[2.0, 2.0, 2.0], false, 0.0),
        ];
        for (cand, significant, delta) in rows {
            let s = judge(&base, cand, &M);
            assert_eq!(s.significant, significant, "{cand:?}: {s:?}");
            assert!((s.delta - delta).abs() < 1e-9, "{cand:?}: {s:?}");
            assert_eq!(s.score, if significant { delta.powf(1.2) } else { 0.0 });
        }
        assert_eq!(
            judge(&base, &[0.1, 0.1, 0.1, nan], &M).candidate,
            f64::INFINITY
        );
    }

    #[test]
    fn min_delta_and_the_switched_off_test() {
        let base = [3.0, 3.0];
        let cand = [2.95, 2.95];
        let strict = Margin {
            min_delta: 0.1,
            ..M
        };
        assert!(
            judge(&base, &cand, &M).significant,
            "zero variance clears any sigma"
        );
        assert!(!judge(&base, &cand, &strict).significant);
        let off = Margin { sigmas: 0.0, ..M };
        assert!(judge(&[3.0], &[2.9], &off).significant);
        assert!(
            !judge(&[3.0], &[2.9], &M).significant,
            "one batch has no standard error"
        );
        let broken_global = judge(&[f64::NAN, 3.0], &[2.0, 2.0], &M);
        assert!(!broken_global.significant);
        assert_eq!(broken_global.baseline, f64::INFINITY);
    }
}
