//! The `connito` binary: daemons, localnet and tools.

mod cli;
mod daemon;
mod devnet;
mod miner;
mod node;
mod validator;

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
        report: cli::localnet::ReportFormat,
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
        /// Fault injection: the supervisor kills DAEMON/ACTOR at the start of CYCLE, or BLOCKS into it
        /// (repeatable), e.g. `2:validator/evaluator` or `2+20:miner-0/trainer`. The supervisor
        /// restarts it.
        #[arg(long, value_name = "CYCLE[+BLOCKS]:DAEMON/ACTOR")]
        crash_at: Vec<cli::localnet::CrashAt>,
        /// Replace the config's miners with an honest miner per group and these dishonest ones
        /// (`all`, or names: free-rider, hash-copier, shard-thief, noise-adder, replayer,
        /// stale, nan, overflow, heldout-trainer, garbage-server, slow-server, ssrf), all in
        /// group 0. README: "Adversaries".
        #[arg(long, value_name = "all|NAME,...")]
        adversaries: Option<String>,
    },
    /// The dev chain as a Substrate node: JSON-RPC over WebSocket and HTTP on 127.0.0.1, the
    /// finney runtime's metadata (V14/V15/V16), blocks every --block-time-ms, persisted in
    /// --data-dir (see README, "connito devnet").
    Devnet {
        /// Port for both WebSocket and HTTP JSON-RPC (0: any free port, printed at start).
        #[arg(long, default_value_t = 9944)]
        port: u16,
        /// Chain state (sled); reusing it continues at the same block. Default: a fresh
        /// temporary directory, removed at exit.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Milliseconds per block (default: the config's block_time_ms, 250).
        #[arg(long)]
        block_time_ms: Option<u64>,
        /// TOML config: its `[chain]` table (netuid, tempo, hyperparameters), `seed` and
        /// `block_time_ms` (see config/localnet.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Stop after sealing this many blocks (default: run until Ctrl-C).
        #[arg(long)]
        blocks: Option<u64>,
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
    /// Train one expert group the way a miner does, outside the localnet, checkpointing into
    /// --data-dir: a killed run started again with the same arguments continues from its last
    /// checkpoint. Prints progress on stderr and a JSON summary on stdout.
    Train {
        /// Checkpoints live here (in a sled store under state/).
        #[arg(long)]
        data_dir: PathBuf,
        /// TOML config (model, train, domains, seed; see config/localnet.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Expert group to train.
        #[arg(long, default_value_t = 0)]
        group: u16,
        /// Optimizer steps in all (a resumed run stops at the same total).
        #[arg(long, default_value_t = 200)]
        steps: u64,
        /// Checkpoint every this many steps (0 = never).
        #[arg(long, default_value_t = 50)]
        checkpoint_every: u64,
        /// Start from this model (safetensors; default: the config's genesis model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Where the trained shard goes (default: DATA_DIR/shard.safetensors).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the config's compute backend.
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
    /// Validator daemon: verifies and scores miners' shards by Proof-of-Loss, merges the best,
    /// sets weights (commit-reveal where the subnet has it). See config/validator.toml.
    Validator {
        #[command(flatten)]
        args: cli::daemons::NodeArgs,
    },
    /// Miner daemon: trains its expert group each cycle, commits the shard's hash then its
    /// location, serves it over HTTP. See config/miner.toml.
    Miner {
        #[command(flatten)]
        args: cli::daemons::NodeArgs,
        /// Expert group to train (default: node.group).
        #[arg(long, env = "CONNITO_GROUP")]
        group: Option<u16>,
    },
    /// What a chain sees: metagraph, commitments (through the subxt client); registering on a
    /// local network.
    Chain {
        #[command(subcommand)]
        cmd: cli::chain::ChainCmd,
    },
    /// Hotkeys in bittensor wallet files: make one, show one.
    Wallet {
        #[command(subcommand)]
        cmd: cli::wallet::WalletCmd,
    },
    /// Submissions offline: verify one as a validator's Intake would, sign the manifest of a
    /// shard trained elsewhere.
    Submission {
        #[command(subcommand)]
        cmd: cli::submission::SubmissionCmd,
    },
    /// Proof-of-Loss tools: recompute a stored score.
    Pol {
        #[command(subcommand)]
        cmd: cli::submission::PolCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Training and evaluation tokens/s of a model preset's group partial model (compare:
    /// benches/dsv2_torch.py).
    Model {
        /// `tiny`, `small` or `deepseek-v2-lite`.
        #[arg(long, default_value = "small")]
        preset: String,
        /// How frozen weights are stored on the device: f32, bf16 or f16 (compute is f32).
        #[arg(long, default_value = "f32", value_parser = connito::model::WeightDtype::parse)]
        weight_dtype: connito::model::WeightDtype,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
        /// CPU threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Rows of seq_len tokens per step.
        #[arg(long, default_value_t = 8)]
        batch_rows: usize,
        /// Timed steps (after one warm-up step).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Print the result as one JSON object (otherwise a line of text).
        #[arg(long)]
        json: bool,
    },
    /// The dev chain at subnet scale: validators committing and revealing weights every tempo,
    /// time per block against the block time, metagraph and neuron calls through devnet's RPC.
    Devnet {
        /// Registered uids.
        #[arg(long, default_value_t = 256)]
        uids: u16,
        /// Staked validators among them, each committing and revealing every tempo.
        #[arg(long, default_value_t = 64)]
        validators: u16,
        /// Blocks per epoch.
        #[arg(long, default_value_t = 360)]
        tempo: u64,
        /// Epochs to run.
        #[arg(long, default_value_t = 3)]
        epochs: u64,
        /// The block time each block's work is measured against.
        #[arg(long, default_value_t = 250.0)]
        block_time_ms: f64,
        /// Print the result as one JSON object (otherwise a summary line).
        #[arg(long)]
        json: bool,
    },
    /// A validator's Proof-of-Loss capacity: evaluations per minute of candidates swapped
    /// into one global model on the device, and peak memory against one model's size.
    Pol {
        /// `tiny` or `small`.
        #[arg(long, default_value = "tiny")]
        preset: String,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
        /// Candidates evaluated.
        #[arg(long, default_value_t = 8)]
        candidates: usize,
        /// Print the result as one JSON object (otherwise a line of text).
        #[arg(long)]
        json: bool,
    },
    /// Time one Yuma Consensus epoch (validators weight ~95% of the miners, steady-state bonds).
    Yuma {
        /// Registered uids.
        #[arg(long, default_value_t = 256)]
        uids: usize,
        /// Validators among them (uids 0..V, all permitted).
        #[arg(long, default_value_t = 64)]
        validators: usize,
        /// Timed epochs (after a tenth as many untimed ones).
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// Print the result as one JSON object (otherwise a line of text).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ModelCmd {
    /// Write a freshly initialized model (seeded, deterministic) as safetensors.
    Init {
        /// `tiny` (tests, localnet), `small` (about 39 M parameters) or `deepseek-v2-lite`.
        #[arg(long, default_value = "tiny")]
        preset: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A safetensors file; with --hf, a Hugging Face model directory.
        #[arg(long)]
        out: PathBuf,
        /// Write a Hugging Face directory (config.json + model.safetensors, f32) that
        /// transformers' DeepseekV2ForCausalLM loads (benches/dsv2_torch.py reads it).
        #[arg(long)]
        hf: bool,
    },
    /// Mean next-token cross-entropy (no auxiliary loss) and per-row losses of a Hugging Face
    /// DeepSeek-V2 model directory (config.json and safetensors, one file or sharded; f32, f16
    /// or bf16) on rows of token ids: a JSON array of arrays.
    Loss {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        tokens: PathBuf,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendArg,
        /// How weights are stored on the device: f32, bf16 or f16 (compute is f32).
        #[arg(long, default_value = "f32", value_parser = connito::model::WeightDtype::parse)]
        weight_dtype: connito::model::WeightDtype,
        /// Print the result as one JSON object (otherwise a line of text).
        #[arg(long)]
        json: bool,
    },
    /// A group shard from one wire profile into the other: connito's canonical f32 shard into
    /// the live subnet's `model_expgroup_{g}.safetensors` (`--to sn102`), or an sn102 file
    /// (`.safetensors` or legacy `.pt`) into a connito shard (`--to connito`). Checks the shard
    /// holds exactly the group's experts; prints the sn102 content hash.
    Convert {
        #[arg(long, value_enum)]
        to: cli::submission_sn102::ConvertTo,
        /// The shard to convert.
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        group: u64,
        /// A Hugging Face config directory (`config.json`: the shapes; default: --config's model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// The group's `expert_assignment.json` (default: contiguous groups).
        #[arg(long)]
        assignment: Option<PathBuf>,
        /// dtype of an sn102 file written: f16 (the reference's default) or bf16.
        #[arg(long, value_enum, default_value = "f16")]
        dtype: DtypeArg,
        #[command(flatten)]
        config: cli::submission::ConfigArg,
    },
    /// A model file of the current model (FILE): parameters per part and group, hash. Or a
    /// DeepSeek-V2 model (`--preset` or `--model DIR`): parameters and memory of the full model
    /// and of one expert group's partial model (`--group` of `--groups`, or `--assignment`).
    Inspect {
        file: Option<PathBuf>,
        /// Expert groups the experts are split into (contiguous).
        #[arg(long, default_value_t = 2)]
        groups: usize,
        /// DeepSeek-V2 preset: tiny, small, deepseek-v2-lite.
        #[arg(long, conflicts_with_all = ["file", "model"])]
        preset: Option<String>,
        /// A Hugging Face DeepSeek-V2 directory (only its config.json is read).
        #[arg(long, conflicts_with = "file")]
        model: Option<PathBuf>,
        /// The expert group of the partial model (contiguous, of --groups).
        #[arg(long, default_value_t = 0)]
        group: usize,
        /// SN102's expert_assignment.json for the group, instead of a contiguous range.
        #[arg(long)]
        assignment: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConsensusCmd {
    /// One Yuma Consensus epoch: reads the epoch's input as JSON on stdin, prints the output
    /// as JSON (see README, "What if: connito consensus yuma").
    Yuma,
}

/// dtype of an sn102 shard file.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DtypeArg {
    F16,
    Bf16,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BackendArg {
    Cpu,
    Wgpu,
    Auto,
    /// Needs a build with `--features cuda`.
    Cuda,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Cpu => Backend::Cpu,
            BackendArg::Wgpu => Backend::Wgpu,
            BackendArg::Auto => Backend::Auto,
            BackendArg::Cuda => Backend::Cuda,
        }
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Wallet { cmd } => cli::wallet::run(cmd),
        Cmd::Submission { cmd } => match cli::submission::run_submission(cmd)? {
            0 => Ok(()),
            code => std::process::exit(code),
        },
        Cmd::Pol { cmd } => cli::submission::run_pol(cmd),
        Cmd::Model { cmd } => model_cmd(&cmd),
        Cmd::Bench { cmd } => match cmd {
            BenchCmd::Model { .. } => bench_model(&cmd),
            BenchCmd::Devnet { .. } => bench_devnet_cmd(&cmd),
            BenchCmd::Yuma { .. } => bench_yuma(&cmd),
            BenchCmd::Pol {
                preset,
                backend,
                candidates,
                json,
            } => {
                let b: Backend = backend.into();
                let device = node::backend::device(b).map_err(anyhow::Error::msg)?;
                let name = format!("{b:?}").to_lowercase();
                let r = cli::bench_pol::run(&preset, &name, &device, candidates)?;
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!(
                        "pol {} on {}: {:.1} evaluations/min ({} batches, {} tokens each); peak memory while evaluating {} candidates: {:.2}x one model ({} MB)",
                        r.preset,
                        r.backend,
                        r.evaluations_per_minute,
                        r.batches,
                        r.tokens_per_evaluation,
                        r.candidates,
                        r.evaluation_memory_over_model,
                        r.model_bytes >> 20
                    );
                }
                Ok(())
            }
        },
        cmd @ Cmd::Train { .. } => train_main(&cmd),
        Cmd::Consensus {
            cmd: ConsensusCmd::Yuma,
        } => {
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
                .context("reading stdin")?;
            println!("{}", connito::consensus::cli::run_json(&input)?);
            Ok(())
        }
        cmd => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run_async(cmd)),
    }
}

/// The commands that run on the async runtime.
async fn run_async(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Chain { cmd } => cli::chain::run(cmd).await,
        Cmd::Validator { args } => {
            cli::daemons::run(cli::daemons::NodeRole::Validator, args, None).await
        }
        Cmd::Miner { args, group } => {
            cli::daemons::run(cli::daemons::NodeRole::Miner, args, group).await
        }
        Cmd::Devnet {
            port,
            data_dir,
            block_time_ms,
            config,
            blocks,
        } => devnet_cmd(port, data_dir, block_time_ms, config, blocks).await,
        Cmd::Localnet {
            cycles,
            report,
            data_dir,
            config,
            block_time_ms,
            backend,
            metrics_port,
            crash_at,
            adversaries,
        } => {
            let mut cfg = match &config {
                Some(p) => LocalnetConfig::from_file(p)?,
                None => LocalnetConfig::default(),
            };
            if let Some(list) = adversaries {
                let roles =
                    connito::config::Role::parse_adversaries(&list).map_err(anyhow::Error::msg)?;
                cfg.miners = connito::config::Role::population(cfg.model.n_groups, &roles);
            }
            if let Some(ms) = block_time_ms {
                cfg.block_time_ms = ms;
            }
            if let Some(b) = backend {
                cfg.backend = b.into();
            }
            cfg.validate()?;
            cli::localnet::run(cli::localnet::LocalnetOpts {
                cfg,
                cycles,
                report,
                data_dir,
                crash: crash_at,
                metrics_port,
            })
            .await
        }
        Cmd::Consensus { .. }
        | Cmd::Model { .. }
        | Cmd::Bench { .. }
        | Cmd::Train { .. }
        | Cmd::Submission { .. }
        | Cmd::Pol { .. }
        | Cmd::Wallet { .. } => unreachable!("synchronous commands are handled in main"),
    }
}

/// `connito train`.
fn train_main(cmd: &Cmd) -> anyhow::Result<()> {
    let Cmd::Train {
        data_dir,
        config,
        group,
        steps,
        checkpoint_every,
        model,
        out,
        backend,
    } = cmd
    else {
        unreachable!("train_main takes Cmd::Train")
    };
    let mut cfg = match config {
        Some(p) => LocalnetConfig::from_file(p)?,
        None => LocalnetConfig::default(),
    };
    if let Some(b) = backend {
        cfg.backend = (*b).into();
    }
    let device = node::backend::device_for(cfg.backend, cfg.model.weight_dtype)
        .map_err(anyhow::Error::msg)?;
    let summary = cli::train::run(&cli::train::TrainOpts {
        out: out
            .clone()
            .unwrap_or_else(|| data_dir.join("shard.safetensors")),
        cfg,
        device,
        group: *group,
        steps: *steps,
        checkpoint_every: *checkpoint_every,
        data_dir: data_dir.clone(),
        model: model.clone(),
    })?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

async fn devnet_cmd(
    port: u16,
    data_dir: Option<PathBuf>,
    block_time_ms: Option<u64>,
    config: Option<PathBuf>,
    blocks: Option<u64>,
) -> anyhow::Result<()> {
    let cfg = match &config {
        Some(p) => LocalnetConfig::from_file(p)?,
        None => LocalnetConfig::default(),
    };
    cfg.validate()?;
    let tmp = match &data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("connito-devnet-")
                .tempdir()?,
        ),
    };
    let data_dir = data_dir.unwrap_or_else(|| tmp.as_ref().expect("made above").path().into());
    devnet::run(devnet::DevnetOpts {
        port,
        data_dir,
        block_time_ms: block_time_ms.unwrap_or(cfg.block_time_ms),
        chain: cfg.chain,
        seed: cfg.seed,
        blocks,
    })
    .await
}

fn bench_model(cmd: &BenchCmd) -> anyhow::Result<()> {
    let BenchCmd::Model {
        preset,
        weight_dtype,
        backend,
        threads,
        batch_rows,
        steps,
        json,
    } = cmd
    else {
        unreachable!("called for BenchCmd::Model")
    };
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("setting the CPU thread count")?;
    let b: Backend = (*backend).into();
    let device = node::backend::device_for(b, *weight_dtype).map_err(anyhow::Error::msg)?;
    let r = cli::bench::run(&cli::bench::BenchOpts {
        preset: preset.clone(),
        weight_dtype: *weight_dtype,
        backend_name: format!("{b:?}").to_lowercase(),
        device,
        threads,
        batch_rows: *batch_rows,
        steps: (*steps).max(1),
    })?;
    if *json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{} on {} ({} threads): train {:.0} tokens/s, eval {:.0} tokens/s, {} parameters",
            r.preset, r.backend, r.threads, r.train_tokens_per_s, r.eval_tokens_per_s, r.params
        );
    }
    Ok(())
}

fn bench_devnet_cmd(cmd: &BenchCmd) -> anyhow::Result<()> {
    let BenchCmd::Devnet {
        uids,
        validators,
        tempo,
        epochs,
        block_time_ms,
        json,
    } = cmd
    else {
        unreachable!("called for BenchCmd::Devnet")
    };
    let o = cli::bench_devnet::DevnetBenchOpts {
        uids: *uids,
        validators: *validators,
        tempo: *tempo,
        epochs: *epochs,
        block_time_ms: *block_time_ms,
    };
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let r = rt.block_on(cli::bench_devnet::run(&o))?;
    if *json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "devnet, {} uids, {} validators, tempo {}: block {:.1} ms mean, {:.1} p99, {:.1} max ({} of {} over {} ms); author_submitExtrinsic {:.2} ms mean, {:.2} max; get_metagraph {:.1} ms mean, {:.1} max ({} bytes); get_neurons_lite {:.1} ms; {} commits, {} reveals, {} rejected",
            r.uids,
            r.validators,
            r.tempo,
            r.block.mean_ms,
            r.block.p99_ms,
            r.block.max_ms,
            r.blocks_over_budget,
            r.blocks,
            r.block_time_ms,
            r.submit.mean_ms,
            r.submit.max_ms,
            r.get_metagraph.mean_ms,
            r.get_metagraph.max_ms,
            r.metagraph_bytes,
            r.get_neurons_lite.mean_ms,
            r.commits,
            r.reveals,
            r.rejected
        );
    }
    Ok(())
}

fn bench_yuma(cmd: &BenchCmd) -> anyhow::Result<()> {
    let BenchCmd::Yuma {
        uids,
        validators,
        iterations,
        json,
    } = cmd
    else {
        unreachable!("called for BenchCmd::Yuma")
    };
    let r = cli::bench::yuma(*uids, *validators, *iterations)?;
    if *json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "yuma epoch, {} uids x {} validators ({} weight entries): mean {:.3} ms, median {:.3} ms, min {:.3} ms, max {:.3} ms over {} epochs",
            r.uids,
            r.validators,
            r.weight_entries,
            r.mean_ms,
            r.median_ms,
            r.min_ms,
            r.max_ms,
            r.iterations
        );
    }
    Ok(())
}

fn model_cmd(cmd: &ModelCmd) -> anyhow::Result<()> {
    match cmd {
        ModelCmd::Init {
            preset,
            seed,
            out,
            hf,
        } => {
            let cfg = connito::model::ModelConfig::preset(preset)?;
            let sd = connito::model::init_state_dict(&cfg, *seed);
            let bytes = connito::tensors::encode_safetensors(&sd);
            if *hf {
                use connito::model::dsv2::weights::{StoreDtype, save_dir};
                save_dir(out, &cfg.arch, &sd, StoreDtype::F32)?;
            } else {
                std::fs::write(out, &bytes)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            let i = connito::model::inspect(&sd, cfg.arch.n_routed_experts, cfg.n_groups);
            eprintln!(
                "wrote {} ({} parameters, {} bytes, hash {})",
                out.display(),
                i.parameters,
                bytes.len(),
                i.hash
            );
            Ok(())
        }
        ModelCmd::Loss {
            model,
            tokens,
            backend,
            weight_dtype,
            json,
        } => {
            let r = cli::model::loss(model, tokens, (*backend).into(), *weight_dtype)?;
            if *json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "loss {:.6} over {} tokens in {} rows ({})",
                    r.loss,
                    r.tokens,
                    r.rows.len(),
                    r.backend
                );
            }
            Ok(())
        }
        ModelCmd::Convert {
            to,
            input,
            out,
            group,
            model,
            assignment,
            dtype,
            config,
        } => {
            let cfg = config.load()?;
            let src = cli::submission_sn102::Sources {
                model: model.as_deref(),
                assignment: assignment.as_deref(),
                default_arch: &cfg.model.arch,
                n_groups: cfg.model.n_groups,
            };
            let dtype = match dtype {
                DtypeArg::F16 => connito::protocol::sn102::shard::ShardDtype::F16,
                DtypeArg::Bf16 => connito::protocol::sn102::shard::ShardDtype::BF16,
            };
            let a = cli::submission_sn102::ConvertArgs {
                to: *to,
                input: input.clone(),
                out: out.clone(),
                group: *group,
                dtype,
            };
            cli::submission_sn102::convert(&a, &src)
        }
        ModelCmd::Inspect {
            file,
            groups,
            preset,
            model,
            group,
            assignment,
        } => {
            let Some(file) = file else {
                let r = cli::model::inspect_dsv2(
                    preset.as_deref(),
                    model.as_deref(),
                    (*group, *groups),
                    assignment.as_deref(),
                )?;
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            };
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
