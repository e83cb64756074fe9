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
use ractor::{Actor, ActorCell, ActorRef};

use crate::aggregator::{Aggregator, AggregatorMsg};
use crate::chain_sync::{ChainSync, ChainSyncArgs, ChainSyncMsg};
use crate::context::{Ctx, ModelRecord, Tick, cast_named, latest_model};
use crate::evaluator::{Evaluator, EvaluatorMsg};
use crate::http::{Handler, Response};
use crate::intake::{Intake, IntakeMsg};
use crate::metrics::Metrics;
use crate::publisher::{Publisher, PublisherArgs, PublisherMsg};
use crate::supervisor::{
    ChildSpec, RestartPolicy, SpawnFn, Supervisor, SupervisorArgs, SupervisorMsg,
};
use crate::trainer::{Trainer, TrainerArgs, TrainerMsg};
use crate::weight_setter::{WeightSetter, WeightSetterMsg};
use connito::store::{Store, key};

pub const VALIDATOR_ACTORS: &[&str] = &[
    "chain_sync",
    "intake",
    "evaluator",
    "aggregator",
    "weight_setter",
];
pub const MINER_ACTORS: &[&str] = &["chain_sync", "trainer", "publisher"];

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

fn validator_tick(ctx: &Ctx, label: &str, t: Tick) {
    let name = ctx.actor_name(label);
    match label {
        "intake" => cast_named(&name, IntakeMsg::Tick(t)),
        "evaluator" => cast_named(&name, EvaluatorMsg::Tick(t)),
        "aggregator" => cast_named(&name, AggregatorMsg::Tick(t)),
        "weight_setter" => cast_named(&name, WeightSetterMsg::Tick(t)),
        _ => {}
    }
}

fn miner_tick(ctx: &Ctx, label: &str, t: Tick) {
    let name = ctx.actor_name(label);
    match label {
        "trainer" => cast_named(&name, TrainerMsg::Tick(t)),
        "publisher" => cast_named(&name, PublisherMsg::Tick(t)),
        _ => {}
    }
}

/// Makes an actor of a daemon panic (fault injection for tests and drills).
pub fn crash(ctx: &Ctx, label: &str) {
    let name = ctx.actor_name(label);
    match label {
        "chain_sync" => cast_named(&name, ChainSyncMsg::Crash),
        "intake" => cast_named(&name, IntakeMsg::Crash),
        "evaluator" => cast_named(&name, EvaluatorMsg::Crash),
        "aggregator" => cast_named(&name, AggregatorMsg::Crash),
        "weight_setter" => cast_named(&name, WeightSetterMsg::Crash),
        "trainer" => cast_named(&name, TrainerMsg::Crash),
        "publisher" => cast_named(&name, PublisherMsg::Crash),
        _ => {}
    }
}

pub async fn spawn_validator(ctx: Ctx) -> Result<ActorRef<SupervisorMsg>, ractor::SpawnErr> {
    let c = ctx.clone();
    let subscribers: Vec<&'static str> = VALIDATOR_ACTORS[1..].to_vec();
    let children = vec![
        child("chain_sync", &ctx, || ChainSync, {
            let c = c.clone();
            move || ChainSyncArgs {
                ctx: c.clone(),
                subscribers: subscribers.clone(),
                poll: c.poll,
                tick: validator_tick,
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
    let subscribers: Vec<&'static str> = MINER_ACTORS[1..].to_vec();
    let children = vec![
        child("chain_sync", &ctx, || ChainSync, {
            let c = c.clone();
            move || ChainSyncArgs {
                ctx: c.clone(),
                subscribers: subscribers.clone(),
                poll: c.poll,
                tick: miner_tick,
                read_commitments: false,
            }
        }),
        child("trainer", &ctx, || Trainer, {
            let c = c.clone();
            move || TrainerArgs {
                ctx: c.clone(),
                role,
                group,
            }
        }),
        child("publisher", &ctx, || Publisher, {
            let c = c.clone();
            move || PublisherArgs {
                ctx: c.clone(),
                role,
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
/// `miner`: the miner's role (a garbage server also serves random bytes), `None` for a validator.
pub fn http_handler(
    metrics: Metrics,
    store: Store,
    clock: PhaseClock,
    miner: Option<Role>,
) -> Handler {
    Arc::new(move |path: &str| {
        if path == "/metrics" {
            return Response::ok("text/plain; version=0.0.4", metrics.render().into_bytes());
        }
        if let Some(role) = miner {
            let garbage = (role == Role::GarbageServer)
                .then(|| crate::adversary::garbage(path))
                .flatten();
            return garbage
                .or_else(|| crate::publisher::route(&store, &clock, path))
                .unwrap_or_else(Response::not_found);
        }
        // Validator: /m/{version} serves a global model.
        let served = path
            .strip_prefix("/m/")
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|v| {
                let rec: ModelRecord = store.get("models", &key(&[v])).ok()??;
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
    let heldout = crate::aggregator::heldout_losses(ctx, &genesis);
    let hash = ctx.store.put_state_dict(&genesis)?;
    ctx.store.put(
        "models",
        &key(&[0]),
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

/// Another daemon an adversary acts on: its hotkey and its HTTP base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub hotkey: [u8; 32],
    pub url: String,
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
        Kind::Miner { role, .. } => Some(*role),
        Kind::Validator => None,
    };
    let handler = http_handler(
        metrics.clone(),
        spec.store.clone(),
        spec.clock.clone(),
        miner,
    );
    let (addr, http) = crate::http::serve_on(&spec.bind, handler)
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
