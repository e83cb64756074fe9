//! `connito localnet`: a dev chain, one validator and the configured miners in one process,
//! each daemon a supervised actor tree with its own sled database and `/metrics` endpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use connito::chain::{ChainError, DevChain};
use connito::config::{LocalnetConfig, Role};
use connito::phase::PhaseClock;
use connito::store::Store;
use connito::submission::Hotkey;
use ractor::ActorRef;

use crate::context::Ctx;
use crate::http;
use crate::metrics::Metrics;
use crate::report::{self, MinerInfo};
use crate::supervisor::SupervisorMsg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
}

/// A crash to inject: at block `cycle · L + offset`, make `daemon/actor` panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashAt {
    pub cycle: u64,
    /// Blocks into the cycle.
    pub offset: u64,
    pub daemon: String,
    pub actor: String,
}

impl std::str::FromStr for CrashAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "expected CYCLE[+BLOCKS]:DAEMON/ACTOR (e.g. 2:validator/evaluator or 2+10:miner-0/trainer), got {s:?}"
            )
        };
        let (c, rest) = s.split_once(':').ok_or_else(err)?;
        let (daemon, actor) = rest.split_once('/').ok_or_else(err)?;
        let (c, offset) = c.split_once('+').unwrap_or((c, "0"));
        Ok(Self {
            cycle: c.parse().map_err(|_| err())?,
            offset: offset.parse().map_err(|_| err())?,
            daemon: daemon.into(),
            actor: actor.into(),
        })
    }
}

pub struct LocalnetOpts {
    pub cfg: LocalnetConfig,
    pub cycles: Option<u64>,
    pub report: ReportFormat,
    pub data_dir: Option<PathBuf>,
    pub crash: Vec<CrashAt>,
    /// Base HTTP port (validator; miner i at +1+i), or ephemeral ports.
    pub metrics_port: Option<u16>,
}

struct Daemon {
    ctx: Ctx,
    sup: ActorRef<SupervisorMsg>,
}

async fn register(chain: &DevChain, key: &Hotkey, netuid: u16) -> anyhow::Result<()> {
    match chain.register(key, netuid).await {
        Ok(_) | Err(ChainError::HotKeyAlreadyRegisteredInSubNet) => Ok(()),
        Err(e) => Err(e).context("registering on the dev chain"),
    }
}

fn restarts(daemons: &[Daemon]) -> u64 {
    daemons
        .iter()
        .flat_map(|d| {
            d.ctx
                .metrics
                .render()
                .lines()
                .filter(|l| l.starts_with("connito_supervisor_restarts_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .sum::<f64>() as u64
}

pub async fn run(opts: LocalnetOpts) -> anyhow::Result<()> {
    let cfg = Arc::new(opts.cfg);
    let tmp;
    let dir = match &opts.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("connito-localnet-")
                .tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating data dir {}", dir.display()))?;
    eprintln!("connito localnet: data dir {}", dir.display());
    let device = crate::backend::device(cfg.backend).map_err(anyhow::Error::msg)?;
    let clock = PhaseClock::new(cfg.phases.clone())?;
    let l = clock.cycle_len();
    let netuid = cfg.chain.netuid;

    let chain_store = Store::open(&dir.join("chain"))
        .context("opening the dev chain's database (is another localnet using this data dir?)")?;
    let chain = Arc::new(DevChain::open(
        cfg.chain.clone(),
        chain_store.clone(),
        cfg.seed,
        l,
    )?);
    let vkey = Hotkey::dev("validator");
    register(&chain, &vkey, netuid).await?;
    let mg = chain.metagraph(netuid).await?;
    if mg
        .iter()
        .find(|n| n.hotkey == vkey.public())
        .is_some_and(|n| n.stake == 0.0)
    {
        chain.add_stake(&vkey, netuid, cfg.validator_stake).await?;
    }
    let miner_keys: Vec<Hotkey> = (0..cfg.miners.len())
        .map(|i| Hotkey::dev(&format!("miner-{i}")))
        .collect();
    for k in &miner_keys {
        register(&chain, k, netuid).await?;
    }

    let port_of = |offset: u16| opts.metrics_port.map_or(0, |p| p.saturating_add(offset));
    let mut daemons = vec![];
    let make_ctx = |name: String, hotkey: Hotkey, miner: bool| -> anyhow::Result<_> {
        let store =
            Store::open(&dir.join(&name)).with_context(|| format!("opening {name}'s database"))?;
        let metrics = Metrics::new();
        Ok((
            name,
            hotkey,
            store.clone(),
            metrics.clone(),
            crate::daemon::http_handler(metrics, store, miner),
        ))
    };
    // Validator.
    {
        let (name, hotkey, store, metrics, h) = make_ctx("validator".into(), vkey.clone(), false)?;
        let addr = http::serve(port_of(0), h)
            .await
            .with_context(|| format!("binding the validator's HTTP port {}", port_of(0)))?;
        let ctx = Ctx {
            daemon: name,
            chain: chain.clone(),
            store,
            metrics,
            clock: clock.clone(),
            cfg: cfg.clone(),
            hotkey,
            netuid,
            device: device.clone(),
            public_url: format!("http://{addr}"),
            poll: crate::daemon::poll_for_block_time(cfg.block_time_ms),
        };
        crate::daemon::ensure_genesis(&ctx)?;
        eprintln!(
            "validator  {}  metrics http://{addr}/metrics",
            vkey.address()
        );
        let sup = crate::daemon::spawn_validator(ctx.clone()).await?;
        daemons.push(Daemon { ctx, sup });
    }
    let mut infos = vec![];
    for (i, (spec, hotkey)) in cfg.miners.iter().zip(&miner_keys).enumerate() {
        let (name, hotkey, store, metrics, h) =
            make_ctx(format!("miner-{i}"), hotkey.clone(), true)?;
        let addr = http::serve(port_of(1 + i as u16), h)
            .await
            .with_context(|| format!("binding miner-{i}'s HTTP port {}", port_of(1 + i as u16)))?;
        let ctx = Ctx {
            daemon: name,
            chain: chain.clone(),
            store,
            metrics,
            clock: clock.clone(),
            cfg: cfg.clone(),
            hotkey: hotkey.clone(),
            netuid,
            device: device.clone(),
            public_url: format!("http://{addr}"),
            poll: crate::daemon::poll_for_block_time(cfg.block_time_ms),
        };
        let target = (spec.role == Role::Copier)
            .then(|| {
                cfg.miners
                    .iter()
                    .position(|o| o.role == Role::Honest && o.group == spec.group)
            })
            .flatten()
            .map(|j| miner_keys[j].public());
        eprintln!(
            "miner-{i} ({}, group {})  {}  metrics http://{addr}/metrics",
            spec.role.name(),
            spec.group,
            hotkey.address()
        );
        infos.push(MinerInfo {
            hotkey: hotkey.public(),
            role: spec.role.name(),
            group: spec.group,
        });
        let sup = crate::daemon::spawn_miner(ctx.clone(), spec.role, spec.group, target).await?;
        daemons.push(Daemon { ctx, sup });
    }

    // Block production and reports.
    let start = chain.best_block().await?.number;
    let mut next_report = start / l;
    let mut reported = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(cfg.block_time_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    eprintln!(
        "connito localnet: block {start}, cycle {} ({} blocks of {} ms)",
        start / l,
        l,
        cfg.block_time_ms
    );
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => { eprintln!("connito localnet: interrupted"); break; }
            _ = ticker.tick() => {}
        }
        if let Some(d) = daemons
            .iter()
            .find(|d| d.sup.get_status() == ractor::ActorStatus::Stopped)
        {
            // A supervisor stops only when a child exhausted its restart budget: exit non-zero so
            // the service manager restarts the whole process from its stored state.
            anyhow::bail!(
                "{}: an actor kept failing and its supervisor gave up (see the log above)",
                d.ctx.daemon
            );
        }
        let head = chain.produce_block()?;
        {
            for c in opts
                .crash
                .iter()
                .filter(|c| c.cycle * l + c.offset == head.number)
            {
                if let Some(d) = daemons.iter().find(|d| d.ctx.daemon == c.daemon) {
                    eprintln!(
                        "connito localnet: injecting a crash into {}/{}",
                        c.daemon, c.actor
                    );
                    crate::daemon::crash(&d.ctx, &c.actor);
                }
            }
        }
        // Cycle c is reported one block after the epoch at its end has run.
        if head.number > (next_report + 1) * l {
            let mg = chain.metagraph(netuid).await?;
            let r = report::build(
                &daemons[0].ctx.store,
                next_report,
                cfg.model.n_groups,
                &infos,
                &mg,
                restarts(&daemons),
            )?;
            match opts.report {
                ReportFormat::Json => println!("{}", serde_json::to_string(&r)?),
                ReportFormat::Table => println!("{}", report::table(&r)),
            }
            next_report += 1;
            reported += 1;
            if opts.cycles.is_some_and(|n| reported >= n) {
                break;
            }
        }
    }
    for d in &daemons {
        d.sup.stop(Some("shutdown".into()));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for d in &daemons {
        d.ctx.store.flush()?;
    }
    chain_store.flush()?;
    Ok(())
}
