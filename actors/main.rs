//! The `connito` binary: daemons, localnet and tools.

mod aggregator;
mod backend;
mod chain_sync;
mod context;
mod daemon;
mod evaluator;
mod http;
mod intake;
mod localnet;
mod metrics;
mod publisher;
mod report;
mod supervisor;
mod trainer;
mod weight_setter;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use connito::config::{Backend, LocalnetConfig};

#[derive(Parser)]
#[command(
    name = "connito",
    version,
    about = "Validator and miner runtime for Bittensor Subnet 102 (ConnitoAI)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a dev chain, a validator and miners in one process (no outside services).
    Localnet {
        /// Stop after reporting this many cycles (default: run until Ctrl-C).
        #[arg(long)]
        cycles: Option<u64>,
        /// Report format, one report after each cycle on stdout.
        #[arg(long, value_enum, default_value = "table")]
        report: localnet::ReportFormat,
        /// Keep state here (default: a fresh temporary directory). Reusing it continues the run.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// TOML config (see config/localnet.toml); defaults apply to everything it omits.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override the config's milliseconds per block.
        #[arg(long)]
        block_time_ms: Option<u64>,
        /// Override the config's compute backend.
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// First HTTP port (`/metrics`, shards, models): the validator gets it, miner i gets
        /// PORT+1+i; matches grafana/targets.json with 9101. Default: free ephemeral ports.
        #[arg(long, value_name = "PORT")]
        metrics_port: Option<u16>,
        /// Fault injection: make DAEMON/ACTOR panic at the start of CYCLE (repeatable),
        /// e.g. `2:validator/evaluator`. The supervisor restarts it.
        #[arg(long, value_name = "CYCLE:DAEMON/ACTOR")]
        crash_at: Vec<localnet::CrashAt>,
    },
    /// Consensus tools.
    Consensus {
        #[command(subcommand)]
        cmd: ConsensusCmd,
    },
}

#[derive(Subcommand)]
enum ConsensusCmd {
    /// One Yuma Consensus epoch: reads the epoch's input as JSON on stdin, prints the output
    /// as JSON (see README, "What if: connito consensus yuma").
    Yuma,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BackendArg {
    Cpu,
    Wgpu,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Cmd::Consensus {
        cmd: ConsensusCmd::Yuma,
    } = cli.cmd
    {
        let mut input = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
            .context("reading stdin")?;
        println!("{}", connito::consensus::cli::run_json(&input)?);
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Localnet {
            cycles,
            report,
            data_dir,
            config,
            block_time_ms,
            backend,
            metrics_port,
            crash_at,
        } => {
            let mut cfg = match &config {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    LocalnetConfig::from_toml(&text)?
                }
                None => LocalnetConfig::default(),
            };
            if let Some(ms) = block_time_ms {
                cfg.block_time_ms = ms;
            }
            if let Some(b) = backend {
                cfg.backend = match b {
                    BackendArg::Cpu => Backend::Cpu,
                    BackendArg::Wgpu => Backend::Wgpu,
                };
            }
            cfg.validate()?;
            rt.block_on(localnet::run(localnet::LocalnetOpts {
                cfg,
                cycles,
                report,
                data_dir,
                crash: crash_at,
                metrics_port,
            }))
        }
        Cmd::Consensus { .. } => unreachable!("handled above"),
    }
}
