//! The one training loop: a group's run started from a global model or resumed from its saved
//! checkpoint, stepped until its budget, checkpointed when due. `connito train` and the miner's
//! Trainer actor both drive a [`TrainRun`], so they count steps and checkpoint alike:
//!
//! - The budget is optimizer steps taken ([`GroupTrainer::steps`]); a skipped (non-finite)
//!   step takes none. Attempts (skipped ones included) are counted and saved too.
//! - A run gives up ([`TrainError::NotFinite`]) once more than `max(100, 3 · budget)` steps
//!   were skipped: its model does not train.
//! - A checkpoint is saved after each optimizer step whose count is a multiple of
//!   `checkpoint_every` (0: never), and belongs to the run's `start` tag: a checkpoint of
//!   another start (another global model) is never resumed.

use burn::tensor::Device;

use super::{GroupTrainer, SavedRunRecord, StepStats, TrainConfig, load_run, save_run};
use crate::data::{Sampler, TokenBatch};
use crate::model::ModelConfig;
use crate::store::{Store, StoreError, Table};
use crate::tensors::StateDict;

/// Where a run's batches come from.
pub trait BatchSource {
    /// The next `n` micro-batches of `rows` rows of `seq_len` predictions.
    fn next_batches(&mut self, n: usize, rows: usize, seq_len: usize) -> Vec<TokenBatch>;
    /// How far the source has read (saved with a checkpoint; a resumed source starts there).
    fn cursor(&self) -> u64;
    /// A batch like the next one, without consuming it (for expert-load probes).
    fn peek(&self, rows: usize, seq_len: usize) -> TokenBatch;
}

impl BatchSource for Sampler {
    fn next_batches(&mut self, n: usize, rows: usize, seq_len: usize) -> Vec<TokenBatch> {
        (0..n).map(|_| self.next_batch(rows, seq_len)).collect()
    }

    fn cursor(&self) -> u64 {
        self.cursor
    }

    fn peek(&self, rows: usize, seq_len: usize) -> TokenBatch {
        self.clone().next_batch(rows, seq_len)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Transient for the caller only in the sense that a new global model may train; this run
    /// is over.
    #[error("{skipped} of {attempts} steps were not finite; the run gives up")]
    NotFinite { skipped: u64, attempts: u64 },
    #[error("saving or reading the checkpoint: {0}")]
    Store(#[from] StoreError),
}

/// Everything a run needs besides its data.
pub struct RunOptions<'a> {
    pub model: &'a ModelConfig,
    pub train: &'a TrainConfig,
    pub global: &'a StateDict,
    pub group: u16,
    pub device: &'a Device,
    /// Optimizer steps to take.
    pub budget: u64,
    /// Save a checkpoint every this many optimizer steps (0: never).
    pub checkpoint_every: u64,
    /// Where checkpoints live: `store`, table `table`, key `key`.
    pub store: &'a Store,
    pub table: &'static Table<u64, SavedRunRecord>,
    pub key: u64,
    /// Which start a checkpoint belongs to (the global model's version or hash).
    pub start: u64,
}

/// What one [`TrainRun::step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    pub stats: StepStats,
    pub checkpointed: bool,
}

/// A training run in progress.
pub struct TrainRun<'a, S: BatchSource> {
    pub trainer: GroupTrainer,
    pub source: S,
    opts: RunOptions<'a>,
    /// Steps attempted, skipped ones included.
    pub attempts: u64,
    /// The optimizer step a resumed run continued from.
    pub resumed_from: Option<u64>,
    /// Cross-entropy of the last step that was taken.
    pub last_loss: Option<f32>,
}

impl<'a, S: BatchSource> TrainRun<'a, S> {
    /// Resumes the run saved under `opts`' key for `opts.start`, or starts a new one.
    /// `source(cursor)` makes the data source: at the saved cursor, or (`None`) where a new
    /// run starts.
    pub fn start_or_resume(
        opts: RunOptions<'a>,
        source: impl FnOnce(Option<u64>) -> S,
    ) -> Result<Self, TrainError> {
        let saved = load_run(opts.store, opts.table, opts.key, opts.start)?;
        let (trainer, cursor, attempts, resumed_from) = match saved {
            Some(s) => (
                GroupTrainer::restore(
                    opts.model,
                    opts.train,
                    opts.global,
                    opts.group,
                    opts.device,
                    &s.checkpoint,
                ),
                Some(s.cursor),
                s.attempts as u64,
                Some(s.checkpoint.steps),
            ),
            None => (
                GroupTrainer::new(opts.model, opts.train, opts.global, opts.group, opts.device),
                None,
                0,
                None,
            ),
        };
        Ok(Self {
            trainer,
            source: source(cursor),
            opts,
            attempts,
            resumed_from,
            last_loss: None,
        })
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.trainer.steps
    }

    /// Steps that were skipped (not finite).
    pub fn skipped(&self) -> u64 {
        self.attempts - self.trainer.steps
    }

    /// The budget is spent.
    pub fn done(&self) -> bool {
        self.trainer.steps >= self.opts.budget
    }

    /// One optimizer step (accumulating `train.accumulation` micro-batches), then a checkpoint
    /// if one is due.
    pub fn step(&mut self) -> Result<StepOutcome, TrainError> {
        let t = self.opts.train;
        let micro =
            self.source
                .next_batches(t.accumulation.max(1), t.batch_rows, self.opts.model.seq_len);
        let stats = self.trainer.step_accumulated(&micro);
        self.attempts += 1;
        if stats.skipped {
            if self.skipped() > (3 * self.opts.budget).max(100) {
                return Err(TrainError::NotFinite {
                    skipped: self.skipped(),
                    attempts: self.attempts,
                });
            }
            return Ok(StepOutcome {
                stats,
                checkpointed: false,
            });
        }
        self.last_loss = Some(stats.loss);
        let every = self.opts.checkpoint_every;
        let checkpointed = every > 0 && self.trainer.steps.is_multiple_of(every);
        if checkpointed {
            self.checkpoint()?;
        }
        Ok(StepOutcome {
            stats,
            checkpointed,
        })
    }

    /// Saves the run now.
    pub fn checkpoint(&self) -> Result<(), TrainError> {
        save_run(
            self.opts.store,
            self.opts.table,
            self.opts.key,
            &self.trainer,
            self.opts.start,
            self.source.cursor(),
            self.attempts as usize,
        )?;
        Ok(())
    }

    /// Per MoE layer, the expert load of the next batch in the group's partial model.
    pub fn expert_load(&self) -> Vec<Vec<f64>> {
        let batch = self
            .source
            .peek(self.opts.train.batch_rows, self.opts.model.seq_len);
        self.trainer.expert_load(&batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Domain, Split};
    use crate::model::init_state_dict;

    fn opts<'a>(
        cfg: &'a ModelConfig,
        tcfg: &'a TrainConfig,
        global: &'a StateDict,
        store: &'a Store,
        device: &'a Device,
    ) -> RunOptions<'a> {
        RunOptions {
            model: cfg,
            train: tcfg,
            global,
            group: 1,
            device,
            budget: 6,
            checkpoint_every: 2,
            store,
            table: &crate::store::tables::TRAIN_CHECKPOINTS,
            key: 1,
            start: 9,
        }
    }

    fn sampler(cursor: Option<u64>) -> Sampler {
        Sampler::new(Domain::Sorting, 3, Split::Train, 8, cursor.unwrap_or(0))
    }

    #[test]
    fn a_killed_run_resumes_at_its_checkpoint_and_ends_where_an_uninterrupted_one_does() {
        let cfg = ModelConfig::tiny();
        let tcfg = TrainConfig {
            batch_rows: 2,
            ..Default::default()
        };
        let global = init_state_dict(&cfg, 2);
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut straight =
            TrainRun::start_or_resume(opts(&cfg, &tcfg, &global, &store, &device), sampler)
                .unwrap();
        let mut saved = 0;
        while !straight.done() {
            saved += straight.step().unwrap().checkpointed as usize;
        }
        assert_eq!((straight.steps(), saved), (6, 3));

        let other = tempfile::tempdir().unwrap();
        let store2 = Store::open(other.path()).unwrap();
        let mut first =
            TrainRun::start_or_resume(opts(&cfg, &tcfg, &global, &store2, &device), sampler)
                .unwrap();
        for _ in 0..3 {
            first.step().unwrap(); // checkpoint at 2; step 3 is lost with the process
        }
        drop(first);
        let mut resumed =
            TrainRun::start_or_resume(opts(&cfg, &tcfg, &global, &store2, &device), sampler)
                .unwrap();
        assert_eq!(resumed.resumed_from, Some(2));
        while !resumed.done() {
            resumed.step().unwrap();
        }
        assert_eq!(resumed.trainer.shard(), straight.trainer.shard());
        assert_eq!(resumed.attempts, 6);

        // A checkpoint of another start is not resumed.
        let fresh = TrainRun::start_or_resume(
            RunOptions {
                start: 10,
                ..opts(&cfg, &tcfg, &global, &store2, &device)
            },
            sampler,
        )
        .unwrap();
        assert_eq!((fresh.resumed_from, fresh.steps()), (None, 0));
    }

    #[test]
    fn a_run_that_cannot_train_gives_up_with_a_typed_error() {
        let cfg = ModelConfig::tiny();
        let tcfg = TrainConfig {
            batch_rows: 1,
            ..Default::default()
        };
        let mut global = init_state_dict(&cfg, 2);
        global.get_mut("lm_head.weight").unwrap().data[0] = f32::NAN;
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut run = TrainRun::start_or_resume(
            RunOptions {
                budget: 1,
                ..opts(&cfg, &tcfg, &global, &store, &device)
            },
            sampler,
        )
        .unwrap();
        let err = loop {
            match run.step() {
                Ok(o) => assert!(o.stats.skipped && !o.checkpointed),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(
                err,
                TrainError::NotFinite {
                    skipped: 101,
                    attempts: 101
                }
            ),
            "{err}"
        );
    }
}
