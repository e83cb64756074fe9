//! `connito validator` and `connito miner`: one long-running daemon per process, against a real
//! chain through the subxt client, with its own data directory.
//!
//! Start-up: config (file, `CONNITO__*` variables, `--set`), wallet, locks (the data directory
//! and the hotkey: a second process on either refuses to start), sled, the HTTP server, the
//! hotkey's registration (waited for while the chain is unreachable), then the supervision tree.
//! Shutdown on SIGINT or SIGTERM: the supervisor and its actors are stopped and awaited, sled is
//! flushed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use connito::chain::ChainClient;
use connito::chain::network::{endpoint, redact};
use connito::chain::subxt::SubxtClient;
use connito::config::Role;
use connito::daemon_config::{DaemonConfig, NodeConfig, env_overrides, parse_set};
use connito::phase::PhaseClock;
use connito::protocol::ProtocolKind;
use connito::store::Store;
use connito::submission::Hotkey;

use crate::cli::chain::NetworkArgs;
use crate::cli::wallet::WalletArgs;
use crate::daemon::{DaemonSpec, Kind, Running};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    Validator,
    Miner,
}

impl NodeRole {
    fn name(self) -> &'static str {
        match self {
            Self::Validator => "validator",
            Self::Miner => "miner",
        }
    }
}

/// The flags both daemons take.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// TOML config (see config/validator.toml, config/miner.toml); defaults apply to everything
    /// it omits.
    #[arg(long, env = "CONNITO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override a config key, TOML value: `--set phases.train=300` (repeatable; wins over the
    /// file and over CONNITO__TABLE__KEY variables).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    #[command(flatten)]
    pub net: NetworkArgs,
    #[command(flatten)]
    pub wallet: WalletArgs,
    /// State directory (default: node.data_dir, else ~/.connito/<role>-<wallet>-<hotkey>).
    #[arg(long, env = "CONNITO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP port (`/metrics`, shards or models); default node.http_port.
    #[arg(long, env = "CONNITO_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// Compute backend (default: the config's).
    #[arg(long, value_enum, env = "CONNITO_BACKEND")]
    pub backend: Option<crate::BackendArg>,
    /// Wire profile, sn102 or connito (default: node.protocol, else sn102 on finney and test
    /// for netuid 102, connito elsewhere).
    #[arg(long, env = "CONNITO_PROTOCOL", value_parser = parse_protocol)]
    pub protocol: Option<ProtocolKind>,
}

fn parse_protocol(s: &str) -> Result<ProtocolKind, String> {
    s.parse()
        .map_err(|e: connito::protocol::profile::UnknownProtocol| e.to_string())
}

/// Holds the data directory's and the hotkey's lock files for the life of the process.
struct Locks {
    _files: Vec<File>,
}

fn lock(path: &Path, what: &str) -> anyhow::Result<File> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "{what} is in use by another connito process (lock file {})",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

fn take_locks(dir: &Path, hotkey_file: &Path) -> anyhow::Result<Locks> {
    let d = lock(&dir.join("LOCK"), &format!("data dir {}", dir.display()))?;
    let mut name = hotkey_file.as_os_str().to_owned();
    name.push(".connito.lock");
    let h = lock(
        Path::new(&name),
        &format!("hotkey {}", hotkey_file.display()),
    )?;
    Ok(Locks { _files: vec![d, h] })
}

fn load_config(args: &NodeArgs) -> anyhow::Result<DaemonConfig> {
    let mut overrides = env_overrides(std::env::vars());
    for s in &args.sets {
        overrides.push(parse_set(s)?);
    }
    let mut cfg = DaemonConfig::load(args.config.as_deref(), &overrides)?;
    if let Some(b) = args.backend {
        cfg.protocol.backend = b.into();
    }
    if let Some(p) = args.http_port {
        cfg.node.http_port = p;
    }
    if let Some(p) = args.protocol {
        cfg.node.protocol = Some(p);
    }
    Ok(cfg)
}

/// Waits (with progress on stderr) until the hotkey is registered on the subnet; an
/// unreachable chain is waited out, an unregistered hotkey is an error.
async fn check_registered(chain: &SubxtClient, key: &Hotkey, netuid: u16) -> anyhow::Result<()> {
    let mut tries = 0u32;
    loop {
        let res = match chain.finalized_block().await {
            Ok(at) => chain.metagraph(netuid, &at).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(mg) if mg.iter().any(|n| n.hotkey == key.public()) => return Ok(()),
            Ok(_) => anyhow::bail!(
                "hotkey {} is not registered on netuid {netuid} at {}: register it first \
                 (local network: `connito chain register`; finney/test: `btcli subnets register`)",
                key.address(),
                redact(chain.url())
            ),
            Err(e) if e.is_transient() => {
                tries += 1;
                if tries == 1 || tries.is_power_of_two() {
                    eprintln!("waiting for the chain at {} ({e})", redact(chain.url()));
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e).context("reading the metagraph"),
        }
    }
}

/// The named network the node connects to (`None` for a node given by URL).
fn network_name<'a>(args: &'a NodeArgs, node: &'a NodeConfig) -> Option<&'a str> {
    match (&args.net.network, &args.net.chain_endpoint) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => node
            .network
            .as_deref()
            .filter(|_| node.chain_endpoint.is_none()),
    }
}

/// The node URL: flags (and their CONNITO_* variables) win over the config's `[node]` table.
fn node_url(args: &NodeArgs, node: &NodeConfig) -> anyhow::Result<String> {
    if args.net.network.is_some() || args.net.chain_endpoint.is_some() {
        return args.net.url();
    }
    let network = node
        .network
        .as_deref()
        .filter(|_| node.chain_endpoint.is_none());
    Ok(endpoint(network, node.chain_endpoint.as_deref())?)
}

/// `--data-dir`, else `node.data_dir`, else `~/.connito/<role>-<wallet>-<hotkey>`.
fn data_dir(role: NodeRole, args: &NodeArgs, node: &NodeConfig) -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let configured = node
        .data_dir
        .as_ref()
        .map(|d| connito::wallet::expand_home(d, Some(&home)));
    args.data_dir.clone().or(configured).unwrap_or_else(|| {
        let name = format!(
            "{}-{}-{}",
            role.name(),
            args.wallet.name,
            args.wallet.hotkey
        );
        home.join(".connito").join(name)
    })
}

/// A miner on a remote chain must advertise an address validators can reach.
fn check_advertised(role: NodeRole, url: &str, node: &NodeConfig) -> anyhow::Result<()> {
    let remote_chain = !connito::chain::network::is_loopback_url(url);
    let advertised_locally = match &node.advertise_url {
        Some(a) => connito::chain::network::is_loopback_url(a),
        None => node.http_bind.starts_with("127.") || node.http_bind == "localhost",
    };
    if role == NodeRole::Miner && remote_chain && advertised_locally {
        anyhow::bail!(
            "a miner on a remote chain would advertise a loopback address validators cannot \
             reach: set node.http_bind (e.g. 0.0.0.0), node.http_port and node.advertise_url \
             (e.g. --set node.advertise_url=http://203.0.113.7:9101)"
        );
    }
    Ok(())
}

pub async fn run(role: NodeRole, args: NodeArgs, group: Option<u16>) -> anyhow::Result<()> {
    let mut cfg = load_config(&args)?;
    if let Some(g) = group {
        cfg.node.group = g;
    }
    let url = node_url(&args, &cfg.node)?;
    check_advertised(role, &url, &cfg.node)?;
    let netuid = args.net.netuid.unwrap_or(cfg.node.netuid);
    cfg.node.netuid = netuid;
    let hotkey_file = args.wallet.hotkey_file()?;
    let hotkey = args.wallet.load()?;
    let profile = cfg.protocol_kind(network_name(&args, &cfg.node));
    let wire: Arc<dyn connito::protocol::Wire> =
        connito::protocol::wire::wire(profile, &cfg.sn102.settings(&hotkey.public())?).into();
    let dir = data_dir(role, &args, &cfg.node);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _locks = take_locks(&dir, &hotkey_file)?;
    let store = Store::open(&dir.join("state")).context("opening the state database")?;
    eprintln!(
        "connito {} ({} profile): hotkey {} on netuid {netuid} at {}; data dir {}",
        role.name(),
        profile.name(),
        hotkey.address(),
        redact(&url),
        dir.display()
    );
    let chain = Arc::new(SubxtClient::new(&url));
    check_registered(&chain, &hotkey, netuid).await?;
    let protocol = Arc::new(cfg.protocol);
    let kind = match role {
        NodeRole::Validator => Kind::Validator,
        NodeRole::Miner => Kind::Miner {
            role: Role::Honest,
            group: cfg.node.group,
            target: None,
        },
    };
    let running = crate::daemon::start(DaemonSpec {
        name: role.name().into(),
        kind,
        chain,
        store,
        clock: PhaseClock::new(protocol.phases.clone())?,
        device: crate::node::backend::device_for(protocol.backend, protocol.model.weight_dtype)
            .map_err(anyhow::Error::msg)?,
        cfg: protocol,
        hotkey,
        netuid,
        bind: format!("{}:{}", cfg.node.http_bind, cfg.node.http_port),
        advertise: cfg.node.advertise_url.clone(),
        poll: Duration::from_millis(cfg.node.poll_ms),
        wire,
    })
    .await?;
    eprintln!(
        "metrics http://{}/metrics; advertised as {}",
        running.addr, running.ctx.public_url
    );
    let outcome = wait_for_stop(&running).await;
    running.stop().await?;
    eprintln!("stopped");
    outcome
}

/// Runs until SIGINT or SIGTERM (Ok) or until the supervisor gives up (Err: the service
/// manager restarts the process).
async fn wait_for_stop(d: &Running) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { eprintln!("SIGINT: shutting down"); return Ok(()); }
            _ = term.recv() => { eprintln!("SIGTERM: shutting down"); return Ok(()); }
            _ = check.tick() => {
                if d.failed() {
                    anyhow::bail!("an actor kept failing and its supervisor gave up (see the log above)");
                }
            }
        }
    }
}
