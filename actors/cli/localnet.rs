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

use crate::cli::report::{self, MinerInfo};
use crate::daemon::{DaemonSpec, Kind, Running};
use crate::miner::adversary::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
}

/// A crash to inject: at block `cycle · L + offset`, the supervisor kills `daemon/actor` (and
/// restarts it).
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

async fn register(chain: &DevChain, key: &Hotkey, netuid: u16) -> anyhow::Result<()> {
    match chain.register(key, netuid).await {
        Ok(_) | Err(ChainError::HotKeyAlreadyRegisteredInSubNet) => Ok(()),
        Err(e) => Err(e).context("registering on the dev chain"),
    }
}

fn restarts(daemons: &[Running]) -> u64 {
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

/// A localnet: the dev chain and the same daemons `connito validator` and `connito miner` run
/// (`crate::daemon::start`), in one process, on the in-process chain.
pub struct Localnet {
    chain: Arc<DevChain>,
    chain_store: Store,
    daemons: Vec<Running>,
    infos: Vec<MinerInfo>,
    cfg: Arc<LocalnetConfig>,
    crash: Vec<CrashAt>,
    report: ReportFormat,
    cycles: Option<u64>,
    cycle_len: u64,
    next_report: u64,
    reported: u64,
    _tmp: Option<tempfile::TempDir>,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// The requested number of cycles has been reported.
    Done,
}

/// Registers localnet's development keys (and stakes the validator) on a fresh chain.
async fn register_all(chain: &DevChain, cfg: &LocalnetConfig) -> anyhow::Result<Vec<Hotkey>> {
    let netuid = cfg.chain.netuid;
    let vkey = Hotkey::dev("validator");
    register(chain, &vkey, netuid).await?;
    let mg = chain.metagraph(netuid).await?;
    if mg
        .iter()
        .find(|n| n.hotkey == vkey.public())
        .is_some_and(|n| n.stake == 0.0)
    {
        chain.add_stake(&vkey, netuid, cfg.validator_stake).await?;
    }
    let mut keys = vec![vkey];
    for i in 0..cfg.miners.len() {
        let k = Hotkey::dev(&format!("miner-{i}"));
        register(chain, &k, netuid).await?;
        keys.push(k);
    }
    Ok(keys)
}

/// Daemon `i` of localnet: the validator (0), then the configured miners; a copier copies the
/// honest miner of its group.
fn daemon_kind(cfg: &LocalnetConfig, keys: &[Hotkey], urls: &[String], i: usize) -> (String, Kind) {
    if i == 0 {
        return ("validator".to_string(), Kind::Validator);
    }
    let spec = &cfg.miners[i - 1];
    let victim = spec
        .role
        .needs_victim()
        .then(|| {
            cfg.miners
                .iter()
                .position(|o| o.role == Role::Honest && o.group == spec.group)
        })
        .flatten()
        .map(|j| j + 1);
    let target = match spec.role {
        Role::Ssrf => Some(0),
        _ => victim,
    }
    .filter(|d| *d < urls.len())
    .map(|d| Target {
        hotkey: keys[d].public(),
        url: urls[d].clone(),
    });
    let kind = Kind::Miner {
        role: spec.role,
        group: spec.group,
        target,
    };
    (format!("miner-{}", i - 1), kind)
}

impl Localnet {
    /// Opens (or continues) the chain in the data dir and starts the validator and the miners.
    pub async fn build(opts: LocalnetOpts) -> anyhow::Result<Self> {
        let mut cfg = opts.cfg;
        // Every daemon of a localnet serves on 127.0.0.1: its validator fetches from loopback.
        cfg.intake.allow_private_locations = true;
        let cfg = Arc::new(cfg);
        let (dir, tmp) = match &opts.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("connito-localnet-")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating data dir {}", dir.display()))?;
        eprintln!("connito localnet: data dir {}", dir.display());
        let device = crate::node::backend::device_for(cfg.backend, cfg.model.weight_dtype)
            .map_err(anyhow::Error::msg)?;
        let clock = PhaseClock::new(cfg.phases.clone())?;
        let l = clock.cycle_len();
        let chain_store = Store::open(&dir.join("chain")).context(
            "opening the dev chain's database (is another localnet using this data dir?)",
        )?;
        let chain = Arc::new(DevChain::open(
            cfg.chain.clone(),
            chain_store.clone(),
            cfg.seed,
            l,
        )?);
        let keys = register_all(&chain, &cfg).await?;
        let port_of = |offset: u16| opts.metrics_port.map_or(0, |p| p.saturating_add(offset));
        let mut daemons = vec![];
        let mut infos = vec![];
        for (i, hotkey) in keys.iter().enumerate() {
            let urls: Vec<String> = daemons
                .iter()
                .map(|d: &Running| d.ctx.public_url.clone())
                .collect();
            let (name, kind) = daemon_kind(&cfg, &keys, &urls, i);
            if let Kind::Miner { role, group, .. } = &kind {
                let (role, group) = (*role, *group);
                infos.push(MinerInfo {
                    hotkey: hotkey.public(),
                    role: role.name(),
                    group,
                });
            }
            let what = match &kind {
                Kind::Validator => String::new(),
                Kind::Miner { role, group, .. } => format!(" ({}, group {group})", role.name()),
            };
            let store = Store::open(&dir.join(&name))
                .with_context(|| format!("opening {name}'s database"))?;
            let running = crate::daemon::start(DaemonSpec {
                name: name.clone(),
                kind,
                chain: chain.clone(),
                store,
                clock: clock.clone(),
                cfg: cfg.clone(),
                hotkey: hotkey.clone(),
                netuid: cfg.chain.netuid,
                device: device.clone(),
                bind: format!("127.0.0.1:{}", port_of(i as u16)),
                advertise: None,
                poll: crate::daemon::poll_for_block_time(cfg.block_time_ms),
                // localnet's adversaries speak connito's profile (issue "Join the live subnet"
                // brings a localnet of the sn102 profile).
                wire: Arc::new(connito::protocol::connito::Connito),
            })
            .await?;
            eprintln!(
                "{name}{what}  {}  metrics http://{}/metrics",
                hotkey.address(),
                running.addr
            );
            daemons.push(running);
        }
        let start = chain.best_block().await?.number;
        eprintln!(
            "connito localnet: block {start}, cycle {} ({} blocks of {} ms)",
            start / l,
            l,
            cfg.block_time_ms
        );
        Ok(Self {
            chain,
            chain_store,
            daemons,
            infos,
            cfg,
            crash: opts.crash,
            report: opts.report,
            cycles: opts.cycles,
            cycle_len: l,
            next_report: start / l,
            reported: 0,
            _tmp: tmp,
        })
    }

    /// One block: checks the supervisors, seals a block, injects the crashes due at it, and
    /// prints the report of a cycle whose epoch has run.
    pub async fn step(&mut self) -> anyhow::Result<Step> {
        if let Some(d) = self.daemons.iter().find(|d| d.failed()) {
            // A supervisor stops only when a child exhausted its restart budget: exit non-zero so
            // the service manager restarts the whole process from its stored state.
            anyhow::bail!(
                "{}: an actor kept failing and its supervisor gave up (see the log above)",
                d.ctx.daemon
            );
        }
        let head = self.chain.produce_block_at(crate::devnet::unix_now())?;
        let l = self.cycle_len;
        for c in self
            .crash
            .iter()
            .filter(|c| c.cycle * l + c.offset == head.number)
        {
            if let Some(d) = self.daemons.iter().find(|d| d.ctx.daemon == c.daemon) {
                eprintln!(
                    "connito localnet: injecting a crash into {}/{}",
                    c.daemon, c.actor
                );
                crate::daemon::crash(d, &c.actor);
            }
        }
        // Cycle c is reported one block after the epoch at its end has run.
        if head.number > (self.next_report + 1) * l {
            self.print_report().await?;
            if self.cycles.is_some_and(|n| self.reported >= n) {
                return Ok(Step::Done);
            }
        }
        Ok(Step::Continue)
    }

    async fn print_report(&mut self) -> anyhow::Result<()> {
        let mg = self.chain.metagraph(self.cfg.chain.netuid).await?;
        let r = report::build(
            &self.daemons[0].ctx.store,
            self.next_report,
            self.cfg.model.n_groups,
            &self.infos,
            &mg,
            restarts(&self.daemons),
        )?;
        match self.report {
            ReportFormat::Json => println!("{}", serde_json::to_string(&r)?),
            ReportFormat::Table => println!("{}", report::table(&r)),
        }
        self.next_report += 1;
        self.reported += 1;
        Ok(())
    }

    /// Stops every daemon (actors and HTTP servers awaited, sled flushed), then the chain.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        for d in self.daemons {
            d.stop().await?;
        }
        self.chain_store.flush()?;
        Ok(())
    }
}

pub async fn run(opts: LocalnetOpts) -> anyhow::Result<()> {
    let mut net = Localnet::build(opts).await?;
    let mut ticker = tokio::time::interval(Duration::from_millis(net.cfg.block_time_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let outcome = loop {
        tokio::select! {
            _ = &mut interrupted => { eprintln!("connito localnet: interrupted"); break Ok(()); }
            _ = ticker.tick() => {}
        }
        match net.step().await {
            Ok(Step::Continue) => {}
            Ok(Step::Done) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    net.shutdown().await?;
    outcome
}
