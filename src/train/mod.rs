//! The training step of one expert group: only that group's expert tensors get gradients and
//! updates (Adam with global-norm clipping); everything else is a constant.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::{Sampler, TokenBatch};
use crate::model::{ModelConfig, Params, from_params, group_shapes, loss_on_batch, to_params};
use crate::tensors::StateDict;

/// Inner-optimizer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Clip the global gradient norm to this (0 = off).
    pub clip_norm: f64,
    pub batch_rows: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lr: 3e-3,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            clip_norm: 1.0,
            batch_rows: 16,
        }
    }
}

/// What one step reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    pub loss: f32,
    pub grad_norm: f32,
    pub tokens: usize,
    /// The loss or gradient was not finite; the step changed nothing.
    pub skipped: bool,
}

/// A group's training run on one device.
pub struct GroupTrainer {
    cfg: ModelConfig,
    tcfg: TrainConfig,
    device: Device,
    params: Params,
    trainable: Vec<String>,
    moments: BTreeMap<String, (Tensor<2>, Tensor<2>)>,
    pub steps: u64,
}

impl GroupTrainer {
    /// Starts from `global` (the current global model) for `group`.
    pub fn new(
        cfg: &ModelConfig,
        tcfg: &TrainConfig,
        global: &StateDict,
        group: u16,
        device: &Device,
    ) -> Self {
        let trainable: Vec<String> = group_shapes(cfg, group).into_keys().collect();
        Self {
            cfg: cfg.clone(),
            tcfg: tcfg.clone(),
            device: device.clone(),
            params: to_params(global, device),
            trainable,
            moments: BTreeMap::new(),
            steps: 0,
        }
    }

    /// One optimizer step on `batch`.
    pub fn step(&mut self, batch: &TokenBatch) -> StepStats {
        let ad = self.device.clone().autodiff();
        let mut view = self.params.clone();
        for name in &self.trainable {
            let leaf = self.params[name].clone().autodiff().require_grad();
            view.insert(name.clone(), leaf);
        }
        let loss = loss_on_batch(&self.cfg, &view, batch, &ad);
        let loss_value: f32 = loss.clone().inner().into_scalar();
        let tokens = batch.rows * batch.seq_len;
        if !loss_value.is_finite() {
            return StepStats {
                loss: loss_value,
                grad_norm: f32::NAN,
                tokens,
                skipped: true,
            };
        }
        let grads = loss.backward();
        let mut gs: Vec<(String, Tensor<2>)> = Vec::with_capacity(self.trainable.len());
        let mut sq = 0f64;
        for name in &self.trainable {
            let g = view[name]
                .grad(&grads)
                .unwrap_or_else(|| self.params[name].zeros_like());
            let s: f32 = g.clone().powf_scalar(2.0).sum().into_scalar();
            sq += s as f64;
            gs.push((name.clone(), g));
        }
        let norm = sq.sqrt();
        if !norm.is_finite() {
            return StepStats {
                loss: loss_value,
                grad_norm: norm as f32,
                tokens,
                skipped: true,
            };
        }
        let scale = if self.tcfg.clip_norm > 0.0 && norm > self.tcfg.clip_norm {
            self.tcfg.clip_norm / norm
        } else {
            1.0
        };
        self.steps += 1;
        let t = self.steps as i32;
        let (b1, b2) = (self.tcfg.beta1, self.tcfg.beta2);
        let lr_t = self.tcfg.lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        for (name, g) in gs {
            let g = g.mul_scalar(scale);
            let (m, v) = self
                .moments
                .remove(&name)
                .unwrap_or_else(|| (g.zeros_like(), g.zeros_like()));
            let m = m.mul_scalar(b1).add(g.clone().mul_scalar(1.0 - b1));
            let v = v
                .mul_scalar(b2)
                .add(g.powf_scalar(2.0).mul_scalar(1.0 - b2));
            let update = m
                .clone()
                .div(v.clone().sqrt().add_scalar(self.tcfg.eps))
                .mul_scalar(lr_t);
            let p = self.params[&name].clone().sub(update);
            self.params.insert(name.clone(), p);
            self.moments.insert(name, (m, v));
        }
        StepStats {
            loss: loss_value,
            grad_norm: norm as f32,
            tokens,
            skipped: false,
        }
    }

    /// Runs `n` steps drawing batches from `sampler`.
    pub fn run(&mut self, sampler: &mut Sampler, n: usize) -> Vec<StepStats> {
        (0..n)
            .map(|_| {
                let batch = sampler.next_batch(self.tcfg.batch_rows, self.cfg.seq_len);
                self.step(&batch)
            })
            .collect()
    }

    /// Learning rate of the inner optimizer.
    pub fn lr(&self) -> f64 {
        self.tcfg.lr
    }

    /// Per layer, the fraction of `batch`'s routing weight each expert gets.
    pub fn expert_load(&self, batch: &TokenBatch) -> Vec<Vec<f64>> {
        crate::model::expert_load(&self.cfg, &self.params, batch, &self.device)
    }

    /// The full current model.
    pub fn state_dict(&self) -> StateDict {
        from_params(&self.cfg, &self.params)
    }

    /// Just the trained group's tensors (the shard a miner submits).
    pub fn shard(&self) -> StateDict {
        let sub: Params = self
            .trainable
            .iter()
            .map(|k| (k.clone(), self.params[k].clone()))
            .collect();
        from_params(&self.cfg, &sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Domain, Split};
    use crate::model::init_state_dict;

    #[test]
    fn training_lowers_loss_and_touches_only_the_group() {
        let cfg = ModelConfig::tiny();
        let global = init_state_dict(&cfg, 5);
        let device = Device::flex();
        let mut tr = GroupTrainer::new(&cfg, &TrainConfig::default(), &global, 1, &device);
        let mut s = Sampler::new(Domain::Sorting, 5, Split::Train, 8, 0);
        let stats = tr.run(&mut s, 40);
        let first: f32 = stats[..5].iter().map(|s| s.loss).sum::<f32>() / 5.0;
        let last: f32 = stats[35..].iter().map(|s| s.loss).sum::<f32>() / 5.0;
        assert!(last < first - 0.3, "loss {first} -> {last} did not drop");
        let after = tr.state_dict();
        let group = group_shapes(&cfg, 1);
        for (k, t) in &global {
            if group.contains_key(k) {
                assert_ne!(&after[k], t, "{k} of the trained group did not change");
            } else {
                assert_eq!(&after[k], t, "{k} outside the group changed");
            }
        }
        assert_eq!(tr.shard().len(), group.len());
    }
}
