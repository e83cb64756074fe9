//! Rotary position embedding of the `qk_rope_head_dim` dimensions, default or YaRN, as
//! DeepSeek's code computes it. Tables are computed on the host in f64, so every backend sees
//! the same constants.
//!
//! A pair `(x[2i], x[2i+1])` is rotated by `pos · inv_freq[i]` and written back in place
//! (`transformers`' layout). DeepSeek's code writes the rotated pairs de-interleaved (evens, then
//! odds); queries and keys are permuted alike, so every attention logit is the same.

use super::config::{DsConfig, RopeScaling, Yarn};

/// YaRN's magnitude correction `0.1 · m · ln(s) + 1` (1 for `s <= 1`).
pub fn yarn_mscale(scale: f64, m: f64) -> f64 {
    if scale <= 1.0 {
        1.0
    } else {
        0.1 * m * scale.ln() + 1.0
    }
}

/// Per rotary pair `i`, its inverse frequency; and the factor on cos and sin.
pub fn inv_freq(cfg: &DsConfig) -> (Vec<f64>, f64) {
    let dim = cfg.qk_rope_head_dim;
    let base = cfg.rope_theta;
    let extrapolated: Vec<f64> = (0..dim / 2)
        .map(|i| base.powf(-((2 * i) as f64) / dim as f64))
        .collect();
    match cfg.rope_scaling {
        RopeScaling::None => (extrapolated, 1.0),
        RopeScaling::Yarn(y) => yarn(&extrapolated, dim, base, &y),
    }
}

fn yarn(extrapolated: &[f64], dim: usize, base: f64, y: &Yarn) -> (Vec<f64>, f64) {
    let pi2 = 2.0 * std::f64::consts::PI;
    let correction_dim = |rotations: f64| {
        dim as f64 * (y.original_max_position_embeddings as f64 / (rotations * pi2)).ln()
            / (2.0 * base.ln())
    };
    let low = correction_dim(y.beta_fast).floor().max(0.0);
    let mut high = correction_dim(y.beta_slow).ceil().min(dim as f64 - 1.0);
    if low == high {
        high += 0.001;
    }
    let freqs = extrapolated
        .iter()
        .enumerate()
        .map(|(i, &extra)| {
            let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
            let inter = extra / y.factor;
            inter * ramp + extra * (1.0 - ramp)
        })
        .collect();
    let a = yarn_mscale(y.factor, y.mscale) / yarn_mscale(y.factor, y.mscale_all_dim);
    (freqs, a)
}

/// `(cos, sin)` for positions `0..t`, each `[t, dim]` with a pair's value repeated at `2i` and
/// `2i + 1`, scaled by YaRN's factor.
pub fn tables(cfg: &DsConfig, t: usize) -> (Vec<f32>, Vec<f32>) {
    let (freqs, a) = inv_freq(cfg);
    let dim = cfg.qk_rope_head_dim;
    let mut cos = Vec::with_capacity(t * dim);
    let mut sin = Vec::with_capacity(t * dim);
    for pos in 0..t {
        for f in &freqs {
            let angle = pos as f64 * f;
            for _ in 0..2 {
                cos.push((a * angle.cos()) as f32);
                sin.push((a * angle.sin()) as f32);
            }
        }
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dsv2::DsConfig;

    #[test]
    fn yarn_of_deepseek_v2_lite() {
        let cfg = DsConfig::deepseek_v2_lite();
        let (f, a) = inv_freq(&cfg);
        assert_eq!(f.len(), 32);
        // Dimensions below the correction range keep their frequency, above it are divided by
        // the factor (low = 10, high = 23 for V2-Lite).
        assert!((f[0] - 1.0).abs() < 1e-12);
        assert!((f[5] - 10_000f64.powf(-10.0 / 64.0)).abs() < 1e-12);
        let last = 10_000f64.powf(-62.0 / 64.0) / 40.0;
        assert!((f[31] - last).abs() < 1e-15);
        assert_eq!(a, 1.0, "mscale == mscale_all_dim");
        let scale = cfg.softmax_scale();
        assert!((scale - 0.114_721).abs() < 1e-5, "{scale}");
    }

    #[test]
    fn default_rope_has_plain_frequencies() {
        let mut cfg = DsConfig::deepseek_v2_lite();
        cfg.rope_scaling = RopeScaling::None;
        let (f, a) = inv_freq(&cfg);
        assert_eq!(a, 1.0);
        for (i, v) in f.iter().enumerate() {
            assert!((v - 10_000f64.powf(-((2 * i) as f64) / 64.0)).abs() < 1e-15);
        }
        assert!((cfg.softmax_scale() - 192f64.powf(-0.5)).abs() < 1e-15);
        let (cos, sin) = tables(&cfg, 3);
        assert_eq!(cos.len(), 3 * 64);
        assert_eq!((cos[0], sin[0]), (1.0, 0.0));
        assert_eq!(cos[64], cos[65], "a pair shares its angle");
        assert!((sin[64] - 1f32.sin()).abs() < 1e-7);
    }
}
