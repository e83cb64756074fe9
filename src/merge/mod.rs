//! Aggregation: accepted expert shards into the global model with a DiLoCo-style outer step.
//!
//! Per tensor, pseudo-gradient `g = θ_global − θ_miner` (averaged over the chosen miners);
//! a miner with any non-finite element is dropped; SGD with Nesterov momentum:
//! `m ← μ·m + g`, `θ ← θ − lr·(g + μ·m)`. The momentum is a [`StateDict`] that the caller
//! persists, so a restart continues the same trajectory.

use serde::{Deserialize, Serialize};

use crate::tensors::{StateDict, TensorBlob};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OuterConfig {
    pub lr: f64,
    pub momentum: f64,
}

impl Default for OuterConfig {
    /// Plain averaging (`lr = 1`, no momentum). The reference uses lr 0.7, momentum 0.9.
    fn default() -> Self {
        Self {
            lr: 1.0,
            momentum: 0.0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("shard tensor {0} is not in the global model")]
    UnknownTensor(String),
    #[error("shard tensor {name} has shape {actual:?}, global {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
}

/// The outcome of one outer step.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub model: StateDict,
    pub momentum: StateDict,
    /// Shards dropped for non-finite values (by index into the input).
    pub dropped: Vec<usize>,
}

/// Applies one outer step with the given shards (all of one or several groups).
pub fn outer_step(
    cfg: &OuterConfig,
    global: &StateDict,
    momentum: &StateDict,
    shards: &[StateDict],
) -> Result<Merged, MergeError> {
    let mut dropped = vec![];
    let mut kept: Vec<&StateDict> = vec![];
    for (i, s) in shards.iter().enumerate() {
        for (k, t) in s {
            let g = global
                .get(k)
                .ok_or_else(|| MergeError::UnknownTensor(k.clone()))?;
            if g.shape != t.shape {
                return Err(MergeError::ShapeMismatch {
                    name: k.clone(),
                    expected: g.shape.clone(),
                    actual: t.shape.clone(),
                });
            }
        }
        if s.values().all(TensorBlob::is_finite) {
            kept.push(s);
        } else {
            dropped.push(i);
        }
    }
    let mut model = global.clone();
    let mut new_m = momentum.clone();
    let names: std::collections::BTreeSet<&String> = kept.iter().flat_map(|s| s.keys()).collect();
    for name in names {
        let theta = &global[name];
        let contributors: Vec<&TensorBlob> = kept.iter().filter_map(|s| s.get(name)).collect();
        let n = contributors.len() as f32;
        let mut g = vec![0f32; theta.data.len()];
        for c in &contributors {
            for (gi, (t, m)) in g.iter_mut().zip(theta.data.iter().zip(&c.data)) {
                *gi += (t - m) / n;
            }
        }
        let mu = cfg.momentum as f32;
        let lr = cfg.lr as f32;
        let m_old = momentum
            .get(name)
            .cloned()
            .unwrap_or_else(|| TensorBlob::zeros(theta.shape.clone()));
        let m: Vec<f32> = m_old.data.iter().zip(&g).map(|(m, g)| mu * m + g).collect();
        let updated: Vec<f32> = theta
            .data
            .iter()
            .zip(g.iter().zip(&m))
            .map(|(t, (g, m))| t - lr * (g + mu * m))
            .collect();
        model.insert(
            name.clone(),
            TensorBlob {
                shape: theta.shape.clone(),
                data: updated,
            },
        );
        if mu != 0.0 {
            new_m.insert(
                name.clone(),
                TensorBlob {
                    shape: theta.shape.clone(),
                    data: m,
                },
            );
        }
    }
    Ok(Merged {
        model,
        momentum: new_m,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(v: &[(&str, Vec<f32>)]) -> StateDict {
        v.iter()
            .map(|(k, d)| {
                (
                    k.to_string(),
                    TensorBlob {
                        shape: vec![d.len()],
                        data: d.clone(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn lr_one_without_momentum_adopts_the_shard() {
        let g = sd(&[("a", vec![1.0, 2.0]), ("b", vec![5.0])]);
        let s = sd(&[("a", vec![0.0, 4.0])]);
        let m = outer_step(
            &OuterConfig::default(),
            &g,
            &StateDict::new(),
            std::slice::from_ref(&s),
        )
        .unwrap();
        assert_eq!(m.model["a"], s["a"]);
        assert_eq!(m.model["b"], g["b"], "tensors no shard holds stay");
    }

    #[test]
    fn nesterov_step_matches_hand_computation() {
        let cfg = OuterConfig {
            lr: 0.7,
            momentum: 0.9,
        };
        let g = sd(&[("a", vec![1.0])]);
        let s = sd(&[("a", vec![0.0])]);
        let m1 = outer_step(&cfg, &g, &StateDict::new(), std::slice::from_ref(&s)).unwrap();
        // g = 1, m = 1, θ = 1 - 0.7 (1 + 0.9) = -0.33
        assert!((m1.model["a"].data[0] + 0.33).abs() < 1e-6);
        assert_eq!(m1.momentum["a"].data, vec![1.0]);
        let m2 = outer_step(&cfg, &g, &m1.momentum, &[s]).unwrap();
        // m = 0.9 + 1 = 1.9, θ = 1 - 0.7 (1 + 1.71)
        assert!((m2.model["a"].data[0] - (1.0 - 0.7 * 2.71)).abs() < 1e-5);
    }

    #[test]
    fn non_finite_shard_is_dropped() {
        let g = sd(&[("a", vec![1.0])]);
        let bad = sd(&[("a", vec![f32::NAN])]);
        let good = sd(&[("a", vec![3.0])]);
        let m = outer_step(&OuterConfig::default(), &g, &StateDict::new(), &[bad, good]).unwrap();
        assert_eq!(m.dropped, vec![0]);
        assert_eq!(m.model["a"].data, vec![3.0]);
    }

    #[test]
    fn foreign_or_misshapen_tensors_are_errors() {
        let g = sd(&[("a", vec![1.0])]);
        let e = outer_step(
            &OuterConfig::default(),
            &g,
            &StateDict::new(),
            &[sd(&[("x", vec![1.0])])],
        );
        assert_eq!(e, Err(MergeError::UnknownTensor("x".into())));
        let e = outer_step(
            &OuterConfig::default(),
            &g,
            &StateDict::new(),
            &[sd(&[("a", vec![1.0, 2.0])])],
        );
        assert!(matches!(e, Err(MergeError::ShapeMismatch { .. })));
    }
}
