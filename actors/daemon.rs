//! The supervision trees of the two daemons, wired in one place.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use burn::tensor::Device;
use connito::chain::ChainClient;
use connito::config::LocalnetConfig;
use connito::phase::PhaseClock;
use connito::submission::Hotkey;

use connito::config::Role;
use ractor::{Actor, ActorCell, ActorRef, OutputPort};

use crate::miner::adversary::{Strategy, Target};
use crate::miner::publisher::{Publisher, PublisherArgs};
use crate::miner::trainer::{Trainer, TrainerArgs};
use crate::node::chain_sync::{ChainSync, ChainSyncArgs};
use crate::node::context::{Ctx, latest_model};
use crate::node::http::{Handler, Response};
use crate::node::metrics::Metrics;
use crate::node::supervisor::{
    ChildSpec, RestartPolicy, SpawnFn, Supervisor, SupervisorArgs, SupervisorMsg,
};
use crate::validator::aggregator::Aggregator;
use crate::validator::evaluator::Evaluator;
use crate::validator::intake::Intake;
use crate::validator::weight_setter::WeightSetter;
use connito::store::Store;
use connito::store::records::ModelRecord;
use connito::store::tables::MODELS;

/// Builds a spawn function for a child whose arguments can be rebuilt on every restart.
fn child<A, F>(label: &'static str, ctx: &Ctx, actor: fn() -> A, args: F) -> ChildSpec
where
    A: Actor,
    F: Fn() -> A::Arguments + Send + Sync + 'static,
{
    let name = ctx.actor_name(label);
    let spawn: SpawnFn = Arc::new(move |sup: ActorCell| {
        let (name, a) = (name.clone(), args());
        Box::pin(async move {
            Actor::spawn_linked(Some(name), actor(), a, sup)
                .await
                .map(|(r, _)| r.get_cell())
        })
    });
    ChildSpec { label, spawn }
}

/// localnet's poll interval: a third of a block.
pub fn poll_for_block_time(block_time_ms: u64) -> Duration {
    Duration::from_millis((block_time_ms / 3).clamp(10, 2000))
}

/// Fault injection (localnet's `--crash-at`, drills): the daemon's supervisor kills the actor
/// `label` from outside, and restarts it as it would after any failure.
pub fn crash(d: &Running, label: &str) {
    let _ = d.sup.cast(SupervisorMsg::Kill(label.to_string()));
}

pub async fn spawn_validator(ctx: Ctx) -> Result<ActorRef<SupervisorMsg>, ractor::SpawnErr> {
    let c = ctx.clone();
    let children = vec![
        child("chain_sync", &ctx, || ChainSync, {
            let c = c.clone();
            move || ChainSyncArgs {
                ctx: c.clone(),
                read_commitments: true,
            }
        }),
        child("intake", &ctx, || Intake, {
            let c = c.clone();
            move || c.clone()
        }),
        child("evaluator", &ctx, || Evaluator, {
            let c = c.clone();
            move || c.clone()
        }),
        child("aggregator", &ctx, || Aggregator, {
            let c = c.clone();
            move || c.clone()
        }),
        child("weight_setter", &ctx, || WeightSetter, {
            let c = c.clone();
            move || c.clone()
        }),
    ];
    spawn_supervisor(ctx, children).await
}

pub async fn spawn_miner(
    ctx: Ctx,
    role: Role,
    group: u16,
    target: Option<Target>,
) -> Result<ActorRef<SupervisorMsg>, ractor::SpawnErr> {
    let c = ctx.clone();
    let children = vec![
        child("chain_sync", &ctx, || ChainSync, {
            let c = c.clone();
            move || ChainSyncArgs {
                ctx: c.clone(),
                read_commitments: false,
            }
        }),
        child("trainer", &ctx, || Trainer, {
            let c = c.clone();
            move || TrainerArgs {
                ctx: c.clone(),
                strategy: Strategy(role),
                group,
            }
        }),
        child("publisher", &ctx, || Publisher, {
            let c = c.clone();
            move || PublisherArgs {
                ctx: c.clone(),
                strategy: Strategy(role),
                group,
                target: target.clone(),
                tarpit: None,
            }
        }),
    ];
    spawn_supervisor(ctx, children).await
}

async fn spawn_supervisor(
    ctx: Ctx,
    children: Vec<ChildSpec>,
) -> Result<ActorRef<SupervisorMsg>, ractor::SpawnErr> {
    let args = SupervisorArgs {
        daemon: ctx.daemon.clone(),
        children,
        policy: RestartPolicy::default(),
        metrics: ctx.metrics.clone(),
    };
    let (r, _) = Actor::spawn(Some(ctx.actor_name("supervisor")), Supervisor, args).await?;
    Ok(r)
}

/// The HTTP routes of a daemon: `/metrics`; a miner's shards (`/s/...`) or a validator's global
/// models (`/m/{version}`).
/// `miner`: the miner's strategy (a garbage server also serves random bytes), `None` for a
/// validator.
pub fn http_handler(
    metrics: Metrics,
    store: Store,
    clock: PhaseClock,
    miner: Option<Strategy>,
) -> Handler {
    Arc::new(move |path: &str| {
        if path == "/metrics" {
            return Response::ok("text/plain; version=0.0.4", metrics.render().into_bytes());
        }
        if let Some(strategy) = miner {
            return strategy
                .extra_route(path)
                .or_else(|| crate::miner::publisher::route(&store, &clock, path))
                .unwrap_or_else(Response::not_found);
        }
        // Validator: /m/{version} serves a global model.
        let served = path
            .strip_prefix("/m/")
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|v| {
                let rec: ModelRecord = store.get(&MODELS, &v).ok()??;
                store.blob_bytes(&rec.hash).ok()
            });
        match served {
            Some(bytes) => Response::ok("application/octet-stream", bytes),
            None => Response::not_found(),
        }
    })
}

/// A validator's first run: stores the genesis global model (version 0) and its held-out losses.
pub fn ensure_genesis(ctx: &Ctx) -> anyhow::Result<()> {
    if latest_model(&ctx.store)?.is_some() {
        return Ok(());
    }
    let genesis = connito::genesis::genesis_model(&ctx.cfg);
    let heldout = crate::validator::aggregator::heldout_losses(ctx, &genesis);
    let hash = ctx.store.put_state_dict(&genesis)?;
    ctx.store.put(
        &MODELS,
        &0,
        &ModelRecord {
            version: 0,
            hash,
            cycle: None,
            heldout,
            momentum: None,
            merged_uids: vec![],
        },
    )?;
    Ok(())
}

/// What a daemon does.
#[derive(Debug, Clone)]
pub enum Kind {
    Validator,
    /// A miner of `group`; localnet's adversaries act on `target` (the honest miner of their
    /// group, or for `ssrf` the validator).
    Miner {
        role: Role,
        group: u16,
        target: Option<Target>,
    },
}

/// Everything one daemon needs, in its own process (`connito validator|miner`) or in localnet.
pub struct DaemonSpec {
    /// Unique in the process; prefixes actor names.
    pub name: String,
    pub kind: Kind,
    pub chain: Arc<dyn ChainClient>,
    pub store: Store,
    pub clock: PhaseClock,
    pub cfg: Arc<LocalnetConfig>,
    pub hotkey: Hotkey,
    pub netuid: u16,
    pub device: Device,
    /// `HOST:PORT` of its HTTP server.
    pub bind: String,
    /// Base URL others reach the server at (default `http://<bound address>`).
    pub advertise: Option<String>,
    pub poll: Duration,
    /// The wire profile it speaks.
    pub wire: Arc<dyn connito::protocol::Wire>,
}

/// A started daemon.
pub struct Running {
    pub ctx: Ctx,
    pub sup: ActorRef<SupervisorMsg>,
    pub addr: SocketAddr,
    http: tokio::task::JoinHandle<()>,
}

/// Starts a daemon: its HTTP server (`/metrics` and its content), the validator's genesis model
/// on a first run, and its supervision tree.
pub async fn start(spec: DaemonSpec) -> anyhow::Result<Running> {
    let metrics = Metrics::new();
    let miner = match &spec.kind {
        Kind::Miner { role, .. } => Some(Strategy(*role)),
        Kind::Validator => None,
    };
    let handler = http_handler(
        metrics.clone(),
        spec.store.clone(),
        spec.clock.clone(),
        miner,
    );
    let (addr, http) = crate::node::http::serve_on(&spec.bind, handler)
        .await
        .with_context(|| format!("{}: binding the HTTP server to {}", spec.name, spec.bind))?;
    let ctx = Ctx {
        daemon: spec.name,
        chain: spec.chain,
        store: spec.store,
        metrics,
        clock: spec.clock,
        cfg: spec.cfg,
        hotkey: spec.hotkey,
        netuid: spec.netuid,
        device: spec.device,
        public_url: spec.advertise.unwrap_or_else(|| format!("http://{addr}")),
        poll: spec.poll,
        ticks: Arc::new(OutputPort::default()),
        wire: spec.wire,
    };
    let sup = match spec.kind {
        Kind::Validator => {
            ensure_genesis(&ctx)?;
            spawn_validator(ctx.clone()).await?
        }
        Kind::Miner {
            role,
            group,
            target,
        } => spawn_miner(ctx.clone(), role, group, target).await?,
    };
    Ok(Running {
        ctx,
        sup,
        addr,
        http,
    })
}

impl Running {
    /// Whether its supervisor gave up (a child exhausted its restart budget).
    pub fn failed(&self) -> bool {
        self.sup.get_status() == ractor::ActorStatus::Stopped
    }

    /// Stops the supervision tree and waits for it, stops the HTTP server and waits for it,
    /// flushes sled.
    pub async fn stop(self) -> anyhow::Result<()> {
        let name = self.ctx.daemon.clone();
        if let Err(e) = self
            .sup
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(30)))
            .await
        {
            tracing::warn!(daemon = %name, "stopping the actors: {e}");
        }
        self.http.abort();
        let _ = self.http.await;
        self.ctx
            .store
            .flush()
            .with_context(|| format!("{name}: flushing its database"))?;
        Ok(())
    }
}
