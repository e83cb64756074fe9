//! `connito submission verify|make` (a submission checked or signed offline, with the same
//! checks and labels as a validator's Intake) and `connito pol replay` (a stored score
//! recomputed from the stored blobs).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use connito::config::LocalnetConfig;
use connito::daemon_config::DaemonConfig;
use connito::model::{group_shapes, to_params_as};
use connito::pol::{batch_losses, judge, with_candidate};
use connito::store::Store;
use connito::submission::check::{Expected, Refused, check_submission, parse_manifest};
use connito::submission::{Hotkey, Manifest, ShardSpec, SignedManifest, Verdict};
use connito::tensors::{StateDict, blake2b_256, decode_safetensors};
use serde_json::json;

use crate::cli::submission_sn102 as sn102;
use crate::cli::wallet::WalletArgs;
use connito::pol::round_batches;
use connito::store::records::{ModelRecord, ScoreRecord, SubmissionRecord};
use connito::store::tables::{MODELS, SCORES, SUBMISSIONS};

/// The config a command reads shapes and rules from: a daemon config file (`[node]` and the
/// protocol tables, as `connito validator --config`), or the defaults.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// TOML config (config/validator.toml, config/localnet.toml style); default: the defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    pub fn load(&self) -> anyhow::Result<LocalnetConfig> {
        Ok(DaemonConfig::load(self.config.as_deref(), &[])?.protocol)
    }
}

#[derive(clap::Subcommand)]
pub enum SubmissionCmd {
    /// Run every check a validator's Intake runs on a shard and its manifest, offline. Prints
    /// `{"verdict": ..., "reason": ...}` with Intake's labels (README, "Verdicts"); exits 0 when
    /// accepted, 2 when refused.
    Verify {
        /// The wire profile: `connito` (ours) or `sn102` (the live subnet's).
        #[arg(long, value_enum, default_value = "connito")]
        protocol: ProtocolArg,
        /// The shard: canonical f32 safetensors with exactly the group's expert tensors (sn102:
        /// `model_expgroup_{g}.safetensors`, or a legacy `.pt`).
        #[arg(long)]
        shard: PathBuf,
        /// The signed manifest (JSON, as `submission make` writes it; connito).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// connito: the global model it was trained from (adds the value and distance bounds).
        /// sn102: a Hugging Face config directory (`config.json`: the shapes).
        #[arg(long)]
        model: Option<PathBuf>,
        /// sn102: MinerCommit1's commitment, as on chain (`{"m": ...}`).
        #[arg(long, required_if_eq("protocol", "sn102"))]
        commit1: Option<String>,
        /// sn102: MinerCommit2's commitment (`{"e","h","v","r","rv"}`).
        #[arg(long, required_if_eq("protocol", "sn102"))]
        commit2: Option<String>,
        /// sn102: the committing hotkey (SS58).
        #[arg(long, required_if_eq("protocol", "sn102"))]
        hotkey: Option<String>,
        /// sn102: the group's `expert_assignment.json` (default: contiguous groups).
        #[arg(long)]
        assignment: Option<PathBuf>,
        /// sn102: the group the round expects (default: the committed one).
        #[arg(long)]
        group: Option<u64>,
        /// The round's cycle, if known (otherwise the manifest's is not compared).
        #[arg(long)]
        cycle: Option<u64>,
        /// The round's global model version, if known.
        #[arg(long)]
        version: Option<u64>,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON (otherwise `verdict: reason`).
        #[arg(long)]
        json: bool,
    },
    /// Sign the manifest of a shard trained elsewhere (for example in PyTorch) with the miner's
    /// hotkey, after checking the shard as a validator would. Prints the binding hash to commit
    /// on chain (MinerCommit1) and where the manifest was written.
    Make {
        /// The wire profile: `connito` (writes a signed manifest) or `sn102` (prints the two
        /// commitments).
        #[arg(long, value_enum, default_value = "connito")]
        protocol: ProtocolArg,
        #[arg(long)]
        shard: PathBuf,
        #[arg(long)]
        group: u16,
        /// connito: the cycle the shard is for.
        #[arg(long)]
        cycle: Option<u64>,
        /// sn102: the Hugging Face repo the file is uploaded to (at most 32 characters).
        #[arg(long, required_if_eq("protocol", "sn102"))]
        repo: Option<String>,
        /// sn102: the revision (commit) of that repo (the reference commits 7 characters).
        #[arg(long, required_if_eq("protocol", "sn102"))]
        revision: Option<String>,
        /// sn102: a Hugging Face config directory (`config.json`: the shapes).
        #[arg(long)]
        model: Option<PathBuf>,
        /// sn102: the group's `expert_assignment.json` (default: contiguous groups).
        #[arg(long)]
        assignment: Option<PathBuf>,
        /// sn102: print JSON.
        #[arg(long)]
        json: bool,
        /// Global model version the shard was trained from.
        #[arg(long)]
        version: u64,
        /// Sign with localnet's development key of this name (`validator`, `miner-0`, ...)
        /// instead of a wallet's hotkey.
        #[arg(long, value_name = "NAME")]
        dev_key: Option<String>,
        #[command(flatten)]
        wallet: WalletArgs,
        /// Where the manifest goes (default: SHARD with `.manifest.json` appended).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// A wire profile.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolArg {
    Connito,
    Sn102,
}

#[derive(clap::Subcommand)]
pub enum PolCmd {
    /// Recompute a stored score from the stored blobs (global model, shard, the round's seed)
    /// and print the stored and the recomputed parts side by side, as JSON. Run it on a stopped
    /// validator's data dir (or a copy): the store takes a lock.
    Replay {
        /// The validator's data dir (a daemon's, or a localnet's: its `validator/` is used).
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        cycle: u64,
        #[arg(long)]
        uid: u16,
        #[command(flatten)]
        config: ConfigArg,
        /// Compute backend (default: the config's).
        #[arg(long, value_enum)]
        backend: Option<crate::BackendArg>,
    },
}

/// Runs `connito submission ...`; the process exit code.
pub fn run_submission(cmd: SubmissionCmd) -> anyhow::Result<i32> {
    match cmd {
        SubmissionCmd::Verify {
            protocol: ProtocolArg::Sn102,
            shard,
            model,
            commit1,
            commit2,
            hotkey,
            assignment,
            group,
            version,
            config,
            json,
            ..
        } => {
            let cfg = config.load()?;
            let src = sn102::Sources {
                model: model.as_deref(),
                assignment: assignment.as_deref(),
                default_arch: &cfg.model.arch,
                n_groups: cfg.model.n_groups,
            };
            let args = sn102::VerifyArgs {
                shard,
                commit1: commit1.expect("required by clap"),
                commit2: commit2.expect("required by clap"),
                hotkey: hotkey.expect("required by clap"),
                group,
                version,
                json,
            };
            sn102::check(&args, &src)
        }
        SubmissionCmd::Make {
            protocol: ProtocolArg::Sn102,
            shard,
            group,
            version,
            dev_key,
            wallet,
            repo,
            revision,
            model,
            assignment,
            json,
            config,
            ..
        } => {
            let key = match dev_key {
                Some(name) => Hotkey::dev(&name),
                None => wallet.load()?,
            };
            let cfg = config.load()?;
            let src = sn102::Sources {
                model: model.as_deref(),
                assignment: assignment.as_deref(),
                default_arch: &cfg.model.arch,
                n_groups: cfg.model.n_groups,
            };
            let args = sn102::MakeArgs {
                shard,
                group: u64::from(group),
                version,
                repo: repo.expect("required by clap"),
                revision: revision.expect("required by clap"),
                json,
            };
            sn102::make(&args, &key, &src)
        }
        SubmissionCmd::Verify {
            shard,
            manifest,
            model,
            cycle,
            version,
            config,
            json,
            ..
        } => {
            let manifest = manifest.context("--manifest is required with --protocol connito")?;
            let cfg = config.load()?;
            let global = model.as_deref().map(read_model).transpose()?;
            let exp = Expected {
                cycle,
                global_version: version,
                ..Expected::default()
            };
            let m = read(&manifest)?;
            let s = read(&shard)?;
            let outcome = verify(&cfg, &m, &s, &exp, global.as_ref());
            let (verdict, reason) = match &outcome {
                Ok(()) => (Verdict::Accepted, "valid".to_string()),
                Err(r) => (r.verdict, r.reason.clone()),
            };
            if json {
                println!("{}", json!({"verdict": verdict, "reason": reason}));
            } else {
                println!("{}: {reason}", verdict.label());
            }
            Ok(if outcome.is_ok() { 0 } else { 2 })
        }
        SubmissionCmd::Make {
            shard,
            group,
            cycle,
            version,
            dev_key,
            wallet,
            out,
            config,
            ..
        } => {
            let cycle = cycle.context("--cycle is required with --protocol connito")?;
            let key = match dev_key {
                Some(name) => Hotkey::dev(&name),
                None => wallet.load()?,
            };
            let cfg = config.load()?;
            let out = out.unwrap_or_else(|| {
                let mut p = shard.clone().into_os_string();
                p.push(".manifest.json");
                p.into()
            });
            make(&cfg, &key, &shard, [group as u64, cycle, version], &out)?;
            Ok(0)
        }
    }
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

fn read_model(p: &Path) -> anyhow::Result<StateDict> {
    decode_safetensors(&read(p)?).with_context(|| format!("decoding {}", p.display()))
}

/// The offline checks: the group comes from the manifest.
fn verify(
    cfg: &LocalnetConfig,
    manifest: &[u8],
    shard: &[u8],
    exp: &Expected,
    global: Option<&StateDict>,
) -> Result<(), Refused> {
    let group = parse_manifest(manifest)?.manifest.group;
    if group as usize >= cfg.model.n_groups {
        return Err(Refused {
            verdict: Verdict::WrongGroup,
            reason: format!(
                "group {group} does not exist (the model has {})",
                cfg.model.n_groups
            ),
        });
    }
    let spec = ShardSpec {
        group,
        expected: group_shapes(&cfg.model, group),
        max_bytes: cfg.pol.max_shard_bytes,
    };
    check_submission(manifest, shard, exp, &spec, global, &cfg.pol.screen()).map(|_| ())
}

/// Signs the manifest of `shard` (`[group, cycle, version]`), checks the result as a
/// validator would, writes it to `out` and prints what to commit.
fn make(
    cfg: &LocalnetConfig,
    key: &Hotkey,
    shard: &Path,
    [group, cycle, version]: [u64; 3],
    out: &Path,
) -> anyhow::Result<()> {
    let bytes = read(shard)?;
    let group = u16::try_from(group).context("group")?;
    let manifest = Manifest {
        hotkey: key.public(),
        group,
        cycle,
        global_version: version,
        content_hash: blake2b_256(&bytes),
    };
    let signed = SignedManifest::sign(manifest, key);
    let text = serde_json::to_vec_pretty(&signed)?;
    if let Err(r) = verify(cfg, &text, &bytes, &Expected::default(), None) {
        anyhow::bail!(
            "{} would be refused by a validator ({}: {}); no manifest written",
            shard.display(),
            r.verdict.label(),
            r.reason
        );
    }
    std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
    let binding = signed.manifest.binding_hash();
    println!(
        "{}",
        json!({
            "manifest": out.display().to_string(),
            "hotkey": key.address(),
            "group": group,
            "cycle": cycle,
            "global_version": version,
            "content_hash": hex::encode(signed.manifest.content_hash),
            "binding_hash": hex::encode(binding),
        })
    );
    Ok(())
}

/// The state directory under a data dir: a daemon's `state/`, a localnet's `validator/`.
fn state_dir(dir: &Path) -> PathBuf {
    ["state", "validator"]
        .iter()
        .map(|s| dir.join(s))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| dir.to_path_buf())
}

/// Runs `connito pol replay`.
pub fn run_pol(cmd: PolCmd) -> anyhow::Result<()> {
    let PolCmd::Replay {
        data_dir,
        cycle,
        uid,
        config,
        backend,
    } = cmd;
    let mut cfg = config.load()?;
    if let Some(b) = backend {
        cfg.backend = b.into();
    }
    let dir = state_dir(&data_dir);
    let store = Store::open(&dir).with_context(|| {
        format!(
            "opening {} (is the validator still running? stop it or copy its data dir)",
            dir.display()
        )
    })?;
    let k = (cycle, uid);
    let score: ScoreRecord = store
        .get(&SCORES, &k)?
        .with_context(|| format!("no score stored for uid {uid} in cycle {cycle}"))?;
    let parts = score
        .parts
        .clone()
        .context("this score was stored by an older build, without its parts")?;
    let sub: SubmissionRecord = store
        .get(&SUBMISSIONS, &k)?
        .context("the scored submission's record is missing")?;
    let model: ModelRecord = store
        .get(&MODELS, &parts.global_version)?
        .with_context(|| {
            format!(
                "global model version {} is not stored",
                parts.global_version
            )
        })?;
    anyhow::ensure!(
        model.hash == parts.global_hash,
        "stored global model version {} has another hash than the one scored against",
        parts.global_version
    );
    let device = crate::node::backend::device_for(cfg.backend, cfg.model.weight_dtype)
        .map_err(anyhow::Error::msg)?;
    let global = store.get_state_dict(&model.hash)?;
    let shard = store
        .get_state_dict(&sub.blob.context("the submission has no stored shard")?)
        .context("the shard's blob is gone (collected after rewards.window rounds)")?;
    let domain = cfg
        .domains
        .get(sub.group as usize)
        .context("the config has no domain for this group: pass the validator's --config")?;
    let batches = round_batches(&cfg, domain, parts.seed);
    let mut params = to_params_as(&global, &device, cfg.model.weight_dtype);
    let routing = cfg.model.routing(Some(sub.group));
    let base = batch_losses(&cfg.model, &params, &batches, &routing, &device);
    let cand = with_candidate(&mut params, &global, &shard, &device, |p| {
        batch_losses(&cfg.model, p, &batches, &routing, &device)
    });
    let s = judge(&base, &cand, &cfg.pol.margin());
    let diff = base
        .iter()
        .chain(&cand)
        .zip(
            parts
                .baseline_batches
                .iter()
                .chain(&parts.candidate_batches),
        )
        .map(|(a, b)| if a == b { 0.0 } else { (a - b).abs() })
        .fold(0f64, f64::max);
    let out = json!({
        "cycle": cycle,
        "uid": uid,
        "group": sub.group,
        "hotkey": connito::submission::ss58(&sub.hotkey, connito::submission::SUBSTRATE_SS58_PREFIX),
        "stored": score,
        "replayed": {
            "score": s,
            "backend": format!("{device:?}"),
            "baseline_batches": base,
            "candidate_batches": cand,
        },
        "max_abs_batch_diff": diff,
        "same_score": (s.score - score.score).abs() <= 1e-6 * score.score.abs().max(1.0),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
