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
        /// Fault injection: make DAEMON/ACTOR panic at the start of CYCLE, or BLOCKS into it
        /// (repeatable), e.g. `2:validator/evaluator` or `2+20:miner-0/trainer`. The supervisor
        /// restarts it.
        #[arg(long, value_name = "CYCLE[+BLOCKS]:DAEMON/ACTOR")]
        crash_at: Vec<localnet::CrashAt>,
    },
    /// Model files: create and inspect.
    Model {
        #[command(subcommand)]
        cmd: ModelCmd,
    },
    /// Consensus tools.
    Consensus {
        #[command(subcommand)]
        cmd: ConsensusCmd,
    },
}

#[derive(Subcommand)]
enum ModelCmd {
    /// Write a freshly initialized model (seeded, deterministic) as safetensors.
    Init {
        /// `tiny` (tests, localnet) or `small` (20-50 M parameters).
        #[arg(long, default_value = "tiny")]
        preset: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print parameters per part and per expert group, and the content hash, as JSON.
    Inspect {
        file: PathBuf,
        /// Expert groups the experts are split into (contiguous).
        #[arg(long, default_value_t = 2)]
        groups: usize,
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
    Auto,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Cmd::Model { cmd } = &cli.cmd {
        return model_cmd(cmd);
    }
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
                    BackendArg::Auto => Backend::Auto,
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
        Cmd::Consensus { .. } | Cmd::Model { .. } => unreachable!("handled above"),
    }
}

fn model_cmd(cmd: &ModelCmd) -> anyhow::Result<()> {
    match cmd {
        ModelCmd::Init { preset, seed, out } => {
            let cfg = connito::model::ModelConfig::preset(preset)?;
            let sd = connito::model::init_state_dict(&cfg, *seed);
            let bytes = connito::tensors::encode_safetensors(&sd);
            std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            let i = connito::model::inspect(&sd, cfg.n_experts, cfg.n_groups);
            eprintln!(
                "wrote {} ({} parameters, {} bytes, hash {})",
                out.display(),
                i.parameters,
                bytes.len(),
                i.hash
            );
            Ok(())
        }
        ModelCmd::Inspect { file, groups } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let sd = connito::tensors::decode_safetensors(&bytes)
                .with_context(|| format!("{} is not a model file", file.display()))?;
            let experts = sd
                .keys()
                .filter_map(|k| connito::model::expert_of(k))
                .max()
                .map_or(0, |e| e + 1);
            if *groups == 0 || (experts > 0 && experts % groups != 0) {
                anyhow::bail!(
                    "--groups {groups} does not divide the {experts} experts in {}",
                    file.display()
                );
            }
            let i = connito::model::inspect(&sd, experts, *groups);
            println!("{}", serde_json::to_string_pretty(&i)?);
            Ok(())
        }
    }
}
