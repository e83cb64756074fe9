//! The training step of one expert group: the group's partial model (tokens routed only to
//! its experts), where only the group's expert tensors get gradients and updates (AdamW with
//! global-norm clipping, warmup + cosine schedule, gradient accumulation); everything else is a
//! constant. Non-finite steps change nothing and are reported as skipped. [`TrainRun`] is the
//! one training loop (start or resume, step, checkpoint when due) every caller uses.

mod run;
mod saved;

pub use run::{BatchSource, RunOptions, StepOutcome, TrainError, TrainRun};
pub use saved::{SavedRun, SavedRunRecord, load_run, save_run};

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::{Sampler, TokenBatch};
use crate::model::dsv2::Routing;
use crate::model::{
    ModelConfig, Params, WeightDtype, from_params, group_shapes, losses_on_batch, to_param,
    to_params,
};
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
    /// Decoupled (AdamW) weight decay per unit of learning rate (0 = plain Adam).
    pub weight_decay: f64,
    /// Linear warmup from 0 to `lr` over this many steps (0 = none).
    pub warmup_steps: u64,
    /// Cosine decay from `lr` to `lr · min_lr_ratio` over this many steps after warmup
    /// (0 = constant learning rate).
    pub cosine_steps: u64,
    pub min_lr_ratio: f64,
    /// Micro-batches whose gradients are averaged into one optimizer step.
    pub accumulation: usize,
    /// Weight of the architecture's auxiliary balance loss (already times `aux_loss_alpha`)
    /// added to the cross-entropy. 0 (the default) as in SN102's miners, which report it but
    /// do not train on it.
    pub aux_loss_coef: f64,
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
            weight_decay: 0.0,
            warmup_steps: 0,
            cosine_steps: 0,
            min_lr_ratio: 0.1,
            accumulation: 1,
            aux_loss_coef: 0.0,
        }
    }
}

/// Learning rate of optimizer step `step` (1-based): linear warmup, then cosine decay to
/// `lr · min_lr_ratio`, then flat.
pub fn lr_at(cfg: &TrainConfig, step: u64) -> f64 {
    if cfg.warmup_steps > 0 && step <= cfg.warmup_steps {
        return cfg.lr * step as f64 / cfg.warmup_steps as f64;
    }
    if cfg.cosine_steps == 0 {
        return cfg.lr;
    }
    let t = (step - cfg.warmup_steps).min(cfg.cosine_steps) as f64 / cfg.cosine_steps as f64;
    let min = cfg.lr * cfg.min_lr_ratio;
    min + (cfg.lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

/// What one step reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Cross-entropy (nats) averaged over the micro-batches.
    pub loss: f32,
    /// The architecture's auxiliary balance loss (0 where the model has none).
    pub aux_loss: f32,
    pub grad_norm: f32,
    pub tokens: usize,
    /// The loss or gradient was not finite; the step changed nothing.
    pub skipped: bool,
}

/// Everything needed to continue a training run exactly where it stopped: the trained tensors,
/// the optimizer moments and the step count (the data cursor is the caller's, see
/// [`Sampler::cursor`]). On the CPU backend a restored run continues bit-identically.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub steps: u64,
    pub params: StateDict,
    pub m: StateDict,
    pub v: StateDict,
}

/// A group's training run on one device.
pub struct GroupTrainer {
    cfg: ModelConfig,
    tcfg: TrainConfig,
    device: Device,
    /// The group's partial model: tokens go only to its experts.
    routing: Routing,
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
        let group_tensors = group_shapes(cfg, group);
        // Frozen weights in the configured dtype; the trained tensors in f32.
        let params = global
            .iter()
            .map(|(k, t)| {
                let dtype = if group_tensors.contains_key(k) {
                    WeightDtype::F32
                } else {
                    cfg.weight_dtype
                };
                (k.clone(), to_param(k, t, device).cast(dtype.float()))
            })
            .collect();
        let trainable: Vec<String> = group_tensors.into_keys().collect();
        Self {
            cfg: cfg.clone(),
            tcfg: tcfg.clone(),
            device: device.clone(),
            routing: cfg.routing(Some(group)),
            params,
            trainable,
            moments: BTreeMap::new(),
            steps: 0,
        }
    }

    /// One optimizer step on `batch`.
    pub fn step(&mut self, batch: &TokenBatch) -> StepStats {
        self.step_accumulated(std::slice::from_ref(batch))
    }

    /// One optimizer step on the averaged gradients of `micro` batches.
    pub fn step_accumulated(&mut self, micro: &[TokenBatch]) -> StepStats {
        let ad = self.device.clone().autodiff();
        let k = micro.len().max(1);
        let tokens: usize = micro.iter().map(|b| b.rows * b.seq_len).sum();
        let mut acc: Vec<Option<Tensor<2>>> = vec![None; self.trainable.len()];
        let mut loss_value = 0f32;
        let mut aux_value = 0f32;
        for batch in micro {
            let mut view = self.params.clone();
            for name in &self.trainable {
                let leaf = self.params[name].clone().autodiff().require_grad();
                view.insert(name.clone(), leaf);
            }
            let out = losses_on_batch(&self.cfg, &view, batch, &self.routing, &ad);
            let loss = out.loss;
            let l: f32 = loss.clone().inner().into_scalar();
            let a: f32 = match &out.aux {
                Some(aux) => aux.clone().inner().into_scalar(),
                None => 0.0,
            };
            loss_value += l / k as f32;
            aux_value += a / k as f32;
            if !l.is_finite() || !a.is_finite() {
                return StepStats {
                    loss: l,
                    aux_loss: a,
                    grad_norm: f32::NAN,
                    tokens,
                    skipped: true,
                };
            }
            let loss = match out.aux {
                Some(aux) if self.tcfg.aux_loss_coef != 0.0 => {
                    loss.add(aux.mul_scalar(self.tcfg.aux_loss_coef))
                }
                _ => loss,
            };
            let loss = if k > 1 {
                loss.div_scalar(k as f64)
            } else {
                loss
            };
            let grads = loss.backward();
            for (slot, name) in acc.iter_mut().zip(&self.trainable) {
                let g = view[name]
                    .grad(&grads)
                    .unwrap_or_else(|| self.params[name].zeros_like());
                *slot = Some(match slot.take() {
                    Some(a) => a.add(g),
                    None => g,
                });
            }
        }
        let mut gs: Vec<(String, Tensor<2>)> = Vec::with_capacity(self.trainable.len());
        let mut sq = 0f64;
        for (name, g) in self.trainable.iter().zip(acc) {
            let g = g.expect("at least one micro-batch");
            let s: f32 = g.clone().powf_scalar(2.0).sum().into_scalar();
            sq += s as f64;
            gs.push((name.clone(), g));
        }
        let norm = sq.sqrt();
        if !norm.is_finite() {
            return StepStats {
                loss: loss_value,
                aux_loss: aux_value,
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
        let lr = lr_at(&self.tcfg, self.steps);
        let lr_t = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        let decay = 1.0 - lr * self.tcfg.weight_decay;
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
            let p = self.params[&name].clone();
            let p = if self.tcfg.weight_decay != 0.0 {
                p.mul_scalar(decay)
            } else {
                p
            };
            let p = p.sub(update);
            self.params.insert(name.clone(), p);
            self.moments.insert(name, (m, v));
        }
        StepStats {
            loss: loss_value,
            aux_loss: aux_value,
            grad_norm: norm as f32,
            tokens,
            skipped: false,
        }
    }

    /// Runs `n` steps drawing batches from `sampler`.
    pub fn run(&mut self, sampler: &mut Sampler, n: usize) -> Vec<StepStats> {
        (0..n)
            .map(|_| {
                let micro: Vec<TokenBatch> = (0..self.tcfg.accumulation.max(1))
                    .map(|_| sampler.next_batch(self.tcfg.batch_rows, self.cfg.seq_len))
                    .collect();
                self.step_accumulated(&micro)
            })
            .collect()
    }

    /// The run's state now.
    pub fn checkpoint(&self) -> Checkpoint {
        let pick = |f: &dyn Fn(&(Tensor<2>, Tensor<2>)) -> Tensor<2>| -> Params {
            self.moments
                .iter()
                .map(|(k, mv)| (k.clone(), f(mv)))
                .collect()
        };
        Checkpoint {
            steps: self.steps,
            params: self.shard(),
            m: from_params(&self.cfg, &pick(&|(m, _)| m.clone())),
            v: from_params(&self.cfg, &pick(&|(_, v)| v.clone())),
        }
    }

    /// Continues a run from `ckpt` (taken from a run that started at `global` for `group`).
    pub fn restore(
        cfg: &ModelConfig,
        tcfg: &TrainConfig,
        global: &StateDict,
        group: u16,
        device: &Device,
        ckpt: &Checkpoint,
    ) -> Self {
        let mut tr = Self::new(
            cfg,
            tcfg,
            &crate::model::with_shard(global, &ckpt.params),
            group,
            device,
        );
        tr.steps = ckpt.steps;
        let m = to_params(&ckpt.m, device);
        let v = to_params(&ckpt.v, device);
        for (k, mt) in m {
            if let Some(vt) = v.get(&k) {
                tr.moments.insert(k, (mt, vt.clone()));
            }
        }
        tr
    }

    /// Learning rate the next optimizer step will use.
    pub fn lr(&self) -> f64 {
        lr_at(&self.tcfg, self.steps + 1)
    }

    /// Per MoE layer, the share of `batch`'s routing slots each expert gets in the group's
    /// partial model.
    pub fn expert_load(&self, batch: &TokenBatch) -> Vec<Vec<f64>> {
        crate::model::expert_load(&self.cfg, &self.params, batch, &self.routing, &self.device)
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
    fn resumed_run_is_bit_identical_to_an_uninterrupted_one() {
        let cfg = ModelConfig::tiny();
        let global = init_state_dict(&cfg, 8);
        let device = Device::flex();
        let tcfg = TrainConfig {
            warmup_steps: 3,
            cosine_steps: 10,
            ..Default::default()
        };
        let mut straight = GroupTrainer::new(&cfg, &tcfg, &global, 1, &device);
        let mut s1 = Sampler::new(Domain::Sorting, 8, Split::Train, 8, 0);
        straight.run(&mut s1, 10);

        let mut first = GroupTrainer::new(&cfg, &tcfg, &global, 1, &device);
        let mut s2 = Sampler::new(Domain::Sorting, 8, Split::Train, 8, 0);
        first.run(&mut s2, 4);
        let (ckpt, cursor) = (first.checkpoint(), s2.cursor);
        drop(first); // "kill -9"
        let mut resumed = GroupTrainer::restore(&cfg, &tcfg, &global, 1, &device, &ckpt);
        let mut s3 = Sampler::new(Domain::Sorting, 8, Split::Train, 8, cursor);
        resumed.run(&mut s3, 6);
        assert_eq!(resumed.steps, 10);
        assert_eq!(
            resumed.shard(),
            straight.shard(),
            "weights differ after resume"
        );
    }

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let cfg = TrainConfig {
            lr: 1.0,
            warmup_steps: 10,
            cosine_steps: 100,
            min_lr_ratio: 0.1,
            ..Default::default()
        };
        assert!((lr_at(&cfg, 1) - 0.1).abs() < 1e-12);
        assert!((lr_at(&cfg, 10) - 1.0).abs() < 1e-12);
        assert!(
            (lr_at(&cfg, 60) - 0.55).abs() < 1e-12,
            "half way down the cosine"
        );
        assert!((lr_at(&cfg, 110) - 0.1).abs() < 1e-12);
        assert!((lr_at(&cfg, 500) - 0.1).abs() < 1e-12);
        assert_eq!(lr_at(&TrainConfig::default(), 7), TrainConfig::default().lr);
    }

    #[test]
    fn accumulation_of_one_batch_twice_equals_one_step_on_it() {
        let cfg = ModelConfig::tiny();
        let global = init_state_dict(&cfg, 6);
        let device = Device::flex();
        let b = Sampler::new(Domain::Arithmetic, 6, Split::Train, 8, 0).next_batch(4, cfg.seq_len);
        let mut one = GroupTrainer::new(&cfg, &TrainConfig::default(), &global, 0, &device);
        let mut two = GroupTrainer::new(&cfg, &TrainConfig::default(), &global, 0, &device);
        let s1 = one.step(&b);
        let s2 = two.step_accumulated(&[b.clone(), b.clone()]);
        assert!(
            (s1.grad_norm - s2.grad_norm).abs() < 1e-4 * s1.grad_norm,
            "{s1:?} vs {s2:?}"
        );
        let (a, c) = (one.shard(), two.shard());
        for (k, t) in &a {
            let max = t
                .data
                .iter()
                .zip(&c[k].data)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(max < 1e-5, "{k} differs by {max}");
        }
    }

    #[test]
    fn weight_decay_is_decoupled_from_the_adam_update() {
        // AdamW: p' = p·(1 − lr·wd) − update, so with and without decay differ by lr·wd·p.
        let cfg = ModelConfig::tiny();
        let global = init_state_dict(&cfg, 7);
        let device = Device::flex();
        let plain = TrainConfig {
            lr: 0.01,
            ..Default::default()
        };
        let decayed = TrainConfig {
            weight_decay: 0.5,
            ..plain.clone()
        };
        let b = Sampler::new(Domain::Arithmetic, 7, Split::Train, 8, 0).next_batch(2, cfg.seq_len);
        let mut a = GroupTrainer::new(&cfg, &plain, &global, 0, &device);
        let mut w = GroupTrainer::new(&cfg, &decayed, &global, 0, &device);
        a.step(&b);
        w.step(&b);
        let (sa, sw) = (a.shard(), w.shard());
        for (k, t) in &sa {
            for ((x, y), p) in t.data.iter().zip(&sw[k].data).zip(&global[k].data) {
                assert!(
                    ((x - y) - 0.01 * 0.5 * p).abs() < 1e-6,
                    "{k}: {x} - {y} != lr·wd·{p}"
                );
            }
        }
    }

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

    #[test]
    fn frozen_weights_in_bf16_still_train_the_group_in_f32() {
        let cfg = ModelConfig {
            weight_dtype: crate::model::WeightDtype::Bf16,
            ..ModelConfig::tiny()
        };
        let global = init_state_dict(&cfg, 5);
        let device = Device::flex();
        let mut tr = GroupTrainer::new(&cfg, &TrainConfig::default(), &global, 1, &device);
        let frozen = &tr.params["model.layers.1.self_attn.o_proj.weight"];
        assert_eq!(frozen.dtype(), burn::tensor::DType::BF16);
        let mut s = Sampler::new(Domain::Sorting, 5, Split::Train, 8, 0);
        let stats = tr.run(&mut s, 30);
        let first: f32 = stats[..5].iter().map(|s| s.loss).sum::<f32>() / 5.0;
        let last: f32 = stats[25..].iter().map(|s| s.loss).sum::<f32>() / 5.0;
        assert!(last < first - 0.3, "loss {first} -> {last} did not drop");
        // The trained tensors are f32: their values are not all bf16-representable.
        let bf16 =
            |x: f32| f32::from_bits(u32::from(crate::model::dsv2::weights::f32_to_bf16(x)) << 16);
        let shard = tr.shard();
        assert!(shard.values().flat_map(|t| &t.data).any(|x| bf16(*x) != *x));
    }

    #[test]
    fn a_non_finite_step_changes_nothing_and_is_reported() {
        let cfg = ModelConfig::tiny();
        let mut global = init_state_dict(&cfg, 5);
        global.get_mut("lm_head.weight").unwrap().data[0] = f32::NAN;
        let device = Device::flex();
        let mut tr = GroupTrainer::new(&cfg, &TrainConfig::default(), &global, 0, &device);
        let b = Sampler::new(Domain::Arithmetic, 1, Split::Train, 8, 0).next_batch(2, cfg.seq_len);
        let s = tr.step(&b);
        assert!(s.skipped, "{s:?}");
        assert_eq!(tr.steps, 0);
        let after = tr.state_dict();
        for (k, t) in &global {
            if k != "lm_head.weight" {
                assert_eq!(&after[k], t, "{k} changed on a skipped step");
            }
        }
    }

    #[test]
    fn clipping_scales_the_gradient_to_the_limit() {
        // With eps = 1 the first Adam update is nearly proportional to the gradient, so
        // clipping to a tenth of the gradient norm makes the update about ten times smaller.
        let cfg = ModelConfig::tiny();
        let global = init_state_dict(&cfg, 6);
        let device = Device::flex();
        let b = Sampler::new(Domain::Sorting, 2, Split::Train, 8, 0).next_batch(2, cfg.seq_len);
        let moved = |clip: f64| {
            let tcfg = TrainConfig {
                eps: 1.0,
                clip_norm: clip,
                ..Default::default()
            };
            let mut tr = GroupTrainer::new(&cfg, &tcfg, &global, 0, &device);
            let s = tr.step(&b);
            let after = tr.shard();
            let d: f64 = after
                .iter()
                .flat_map(|(k, t)| t.data.iter().zip(&global[k].data))
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            (s.grad_norm as f64, d.sqrt())
        };
        let (norm, free) = moved(0.0);
        let (norm2, clipped) = moved(norm / 10.0);
        assert_eq!(norm, norm2, "the reported norm is the one before clipping");
        let ratio = free / clipped;
        assert!((9.0..11.0).contains(&ratio), "update ratio {ratio}");
    }
}
