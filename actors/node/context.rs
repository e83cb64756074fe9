//! What every actor of a daemon shares and the block tick they all react to. The records they
//! keep in sled are `connito::store::records`, in the trees `connito::store::tables` lists.

use std::sync::Arc;

use burn::tensor::Device;
use connito::chain::{BlockInfo, ChainClient};
use connito::config::LocalnetConfig;
use connito::phase::{PhaseClock, Position};
use connito::store::Store;
use connito::store::records::ModelRecord;
use connito::store::tables::MODELS;
use connito::submission::Hotkey;
use ractor::OutputPort;

use crate::node::metrics::Metrics;

/// Group id used in a validator's commitment of the global model.
pub use connito::protocol::connito::GLOBAL_GROUP;

#[derive(Clone)]
pub struct Ctx {
    /// Daemon name, unique in the process (`validator`, `miner-0`, ...); prefixes actor names.
    pub daemon: String,
    pub chain: Arc<dyn ChainClient>,
    pub store: Store,
    pub metrics: Metrics,
    pub clock: PhaseClock,
    pub cfg: Arc<LocalnetConfig>,
    pub hotkey: Hotkey,
    pub netuid: u16,
    pub device: Device,
    /// How often ChainSync asks for a new finalized block.
    pub poll: std::time::Duration,
    /// Base URL others reach this daemon's HTTP server (metrics, shards, models) at; a miner
    /// commits its shard location under it.
    pub public_url: String,
    /// ChainSync's block ticks. Each actor subscribes in `pre_start`, so a restarted actor is
    /// subscribed again by construction (a dead one's subscription ends with it).
    pub ticks: Arc<OutputPort<Tick>>,
    /// The wire profile: every format and rule that differs between connito and sn102.
    pub wire: Arc<dyn connito::protocol::Wire>,
}

impl Ctx {
    pub fn actor_name(&self, label: &str) -> String {
        format!("{}/{label}", self.daemon)
    }

    /// The tensors of `group`'s shard (the model's contiguous groups).
    pub fn layout(&self, group: u16) -> connito::protocol::wire::GroupLayout {
        connito::protocol::wire::GroupLayout::of(&self.cfg.model, group, None)
    }
}

/// Sent by ChainSync to every actor of its daemon on each new block.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub pos: Position,
    /// The finalized block this tick is for: every read of the tick is pinned to it.
    pub at: BlockInfo,
}

/// Runs a blocking closure off the actor loop.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ractor::ActorProcessingErr> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("blocking task: {e}").into())
}

/// Runs `job` on a blocking thread (heavy work never runs on an actor's message loop), logs its
/// error, then calls `done` (which casts the actor's completion message).
pub fn spawn_job(
    ctx: &Ctx,
    what: &'static str,
    cycle: u64,
    job: impl FnOnce(&Ctx) -> Result<(), ractor::ActorProcessingErr> + Send + 'static,
    done: impl FnOnce() + Send + 'static,
) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let c2 = ctx.clone();
        match blocking(move || job(&c2)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => tracing::error!(daemon = %ctx.daemon, cycle, "{what}: {e}"),
        }
        done();
    });
}

pub fn latest_model(store: &Store) -> Result<Option<ModelRecord>, connito::store::StoreError> {
    Ok(store.last(&MODELS)?.map(|(_, m)| m))
}
