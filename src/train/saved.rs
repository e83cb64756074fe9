//! Training runs saved in the store: the checkpoint blobs (trained tensors, optimizer moments)
//! and a small record naming them with the step, the data cursor and the global version the run
//! started from. Blobs go first and the record last (durably), so a crash at any point leaves
//! either the previous checkpoint or the new one, never a record naming missing blobs.

use serde::{Deserialize, Serialize};

use super::{Checkpoint, GroupTrainer};
use crate::store::{Store, StoreError, Table};
use crate::tensors::Hash32;

/// The record of a saved run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRunRecord {
    /// Version of the global model the run started from (a checkpoint of another start is
    /// never resumed).
    pub global_version: u64,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Steps attempted, skipped ones included.
    pub attempts: usize,
    /// Data cursor of the run's training sampler.
    pub cursor: u64,
    pub params: Hash32,
    pub m: Hash32,
    pub v: Hash32,
}

/// A run read back: continue it with [`GroupTrainer::restore`] and a sampler at `cursor`.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedRun {
    pub checkpoint: Checkpoint,
    pub cursor: u64,
    pub attempts: usize,
}

/// Saves `tr`'s state under `table`/`key` and drops the blobs of the checkpoint it replaces.
pub fn save_run(
    store: &Store,
    table: &Table<u64, SavedRunRecord>,
    key: u64,
    tr: &GroupTrainer,
    global_version: u64,
    cursor: u64,
    attempts: usize,
) -> Result<(), StoreError> {
    let c = tr.checkpoint();
    let rec = SavedRunRecord {
        global_version,
        steps: c.steps,
        attempts,
        cursor,
        params: store.put_state_dict(&c.params)?,
        m: store.put_state_dict(&c.m)?,
        v: store.put_state_dict(&c.v)?,
    };
    let old = store.get(table, &key)?;
    store.put_durable(table, &key, &rec)?;
    if let Some(old) = old {
        for h in [old.params, old.m, old.v] {
            if ![rec.params, rec.m, rec.v].contains(&h) {
                store.remove_blob(&h)?;
            }
        }
    }
    Ok(())
}

/// The run saved under `table`/`key`, if there is one that started from `global_version`.
pub fn load_run(
    store: &Store,
    table: &Table<u64, SavedRunRecord>,
    key: u64,
    global_version: u64,
) -> Result<Option<SavedRun>, StoreError> {
    let Some(rec) = store
        .get(table, &key)?
        .filter(|r| r.global_version == global_version)
    else {
        return Ok(None);
    };
    Ok(Some(SavedRun {
        checkpoint: Checkpoint {
            steps: rec.steps,
            params: store.get_state_dict(&rec.params)?,
            m: store.get_state_dict(&rec.m)?,
            v: store.get_state_dict(&rec.v)?,
        },
        cursor: rec.cursor,
        attempts: rec.attempts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Domain, Sampler, Split};
    use crate::model::{ModelConfig, init_state_dict};
    use crate::store::tables::TRAIN_CHECKPOINTS;
    use crate::train::TrainConfig;
    use burn::tensor::Device;

    #[test]
    fn a_saved_run_reads_back_and_replaced_blobs_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cfg = ModelConfig::tiny();
        let tcfg = TrainConfig {
            batch_rows: 2,
            ..TrainConfig::default()
        };
        let global = init_state_dict(&cfg, 1);
        let device = Device::flex();
        let mut tr = GroupTrainer::new(&cfg, &tcfg, &global, 1, &device);
        let mut s = Sampler::new(Domain::Sorting, 1, Split::Train, 8, 0);
        tr.run(&mut s, 2);
        save_run(&store, &TRAIN_CHECKPOINTS, 1, &tr, 7, s.cursor, 2).unwrap();
        let first = store.get(&TRAIN_CHECKPOINTS, &1).unwrap().unwrap();
        tr.run(&mut s, 1);
        save_run(&store, &TRAIN_CHECKPOINTS, 1, &tr, 7, s.cursor, 3).unwrap();
        assert!(
            store.get_state_dict(&first.params).is_err(),
            "old blob kept"
        );
        assert_eq!(load_run(&store, &TRAIN_CHECKPOINTS, 1, 8).unwrap(), None);
        let back = load_run(&store, &TRAIN_CHECKPOINTS, 1, 7).unwrap().unwrap();
        assert_eq!(back.checkpoint, tr.checkpoint());
        assert_eq!((back.cursor, back.attempts), (s.cursor, 3));
    }
}
