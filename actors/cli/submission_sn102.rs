//! `connito submission make|verify --protocol sn102`: one live SN102 submission made or checked
//! offline, with the rules of `connito::protocol::sn102` (the validator's, in its order).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use connito::model::dsv2::DsConfig;
use connito::protocol::sn102::assignment::GroupExperts;
use connito::protocol::sn102::commitment::{Commit, HashCommit};
use connito::protocol::sn102::hash::ContentHash;
use connito::protocol::sn102::shard::{Shard, ShardDtype, ShardSpec, file_name};
use connito::protocol::sn102::signature::sign_hash;
use connito::protocol::sn102::verify::{
    Expected, ShardFile, Submission, decode, shard_refusal, verify,
};
use connito::submission::keys::ss58_decode;
use connito::submission::{Hotkey, Verdict, ss58};
use serde_json::json;

/// Bytes a shard file may take offline (DeepSeek-V2-Lite's group shard is about 60 MB).
const MAX_FILE_BYTES: usize = 4 << 30;

/// Where shapes and the group's experts come from.
pub struct Sources<'a> {
    /// A Hugging Face config directory (`config.json`); default: the config file's model.
    pub model: Option<&'a Path>,
    /// The group's `expert_assignment.json`; default: contiguous groups.
    pub assignment: Option<&'a Path>,
    /// The model of the config file, and its group count.
    pub default_arch: &'a DsConfig,
    pub n_groups: usize,
}

impl Sources<'_> {
    fn spec(&self, group: u64) -> anyhow::Result<ShardSpec> {
        let arch = match self.model {
            Some(dir) => {
                let p = dir.join("config.json");
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?;
                DsConfig::from_hf_json(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => self.default_arch.clone(),
        };
        let experts = match self.assignment {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                GroupExperts::parse(&text, arch.n_routed_experts)
                    .with_context(|| format!("parsing {}", p.display()))?
            }
            None => GroupExperts::contiguous_of(&arch, self.n_groups, group as usize),
        };
        Ok(ShardSpec::of(&arch, experts))
    }
}

/// A `.pt` file is a legacy shard; anything else is read as safetensors.
fn shard_file<'a>(path: &Path, bytes: &'a [u8]) -> ShardFile<'a> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("pt") => ShardFile::Pt(bytes),
        _ => ShardFile::Safetensors(bytes),
    }
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// What `make` is given besides the key and the sources.
pub struct MakeArgs {
    pub shard: PathBuf,
    pub group: u64,
    pub version: u64,
    pub repo: String,
    pub revision: String,
    pub json: bool,
}

/// Checks the shard as a validator would, signs its hash and prints the two commitments.
pub fn make(a: &MakeArgs, key: &Hotkey, src: &Sources<'_>) -> anyhow::Result<i32> {
    let spec = src.spec(a.group)?;
    let bytes = read(&a.shard)?;
    let shard = decode(shard_file(&a.shard, &bytes), MAX_FILE_BYTES)
        .map_err(|r| anyhow::anyhow!("{}: {}", r.verdict.label(), r.reason))?;
    let hash = ContentHash::of(&shard);
    let commit1 = Commit::MinerSignature(sign_hash(key, &hash)).encode()?;
    let commit = HashCommit {
        group: a.group,
        hash,
        version: a.version,
        repo: a.repo.clone(),
        revision: a.revision.clone(),
    };
    let commit2 = Commit::MinerHash(commit).encode()?;
    // What a validator then runs on exactly this: it must pass.
    let sub = Submission {
        file: shard_file(&a.shard, &bytes),
        commit1: &commit1,
        commit2: &commit2,
        hotkey: key.public(),
    };
    let exp = Expected {
        spec,
        group: a.group,
        version: Some(a.version),
        max_bytes: MAX_FILE_BYTES,
    };
    verify(&sub, &exp).map_err(|r| anyhow::anyhow!("{}: {}", r.verdict.label(), r.reason))?;
    let out = json!({
        "hash": hash.to_hex(), "commit1": commit1, "commit2": commit2,
        "hotkey": key.address(), "group": a.group, "shard": file_name(a.group),
    });
    if a.json {
        println!("{out}");
    } else {
        println!(
            "hash {hash}\ncommit1 (MinerCommit1) {commit1}\ncommit2 (MinerCommit2) {commit2}\nupload as {}",
            file_name(a.group)
        );
    }
    Ok(0)
}

/// What `verify` is given.
pub struct VerifyArgs {
    pub shard: PathBuf,
    pub commit1: String,
    pub commit2: String,
    pub hotkey: String,
    /// The group the round expects (default: the one committed).
    pub group: Option<u64>,
    pub version: Option<u64>,
    pub json: bool,
}

/// Prints `{"verdict", "reason"}`; exit 0 when accepted, 2 when refused.
pub fn check(a: &VerifyArgs, src: &Sources<'_>) -> anyhow::Result<i32> {
    let (hotkey, _) =
        ss58_decode(&a.hotkey).map_err(|e| anyhow::anyhow!("--hotkey {}: {e}", a.hotkey))?;
    let committed = connito::protocol::sn102::commitment::RawCommit::parse(&a.commit2)
        .ok()
        .and_then(|c| c.group);
    let group = a.group.or(committed).unwrap_or(0);
    let bytes = read(&a.shard)?;
    let sub = Submission {
        file: shard_file(&a.shard, &bytes),
        commit1: &a.commit1,
        commit2: &a.commit2,
        hotkey,
    };
    let exp = Expected {
        spec: src.spec(group)?,
        group,
        version: a.version,
        max_bytes: MAX_FILE_BYTES,
    };
    let (verdict, reason) = match verify(&sub, &exp) {
        Ok(c) => (
            Verdict::Accepted,
            format!(
                "valid: {} tensors, hash {} (signed by {})",
                c.shard.len(),
                c.hash,
                ss58(&hotkey, 42)
            ),
        ),
        Err(r) => (r.verdict, r.reason),
    };
    if a.json {
        println!("{}", json!({"verdict": verdict, "reason": reason}));
    } else {
        println!("{}: {reason}", verdict.label());
    }
    Ok(if verdict == Verdict::Accepted { 0 } else { 2 })
}

/// Which way `connito model convert` goes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvertTo {
    /// A connito shard (canonical f32 safetensors) into an sn102 file.
    Sn102,
    /// An sn102 file (`.safetensors` or legacy `.pt`) into a connito shard.
    Connito,
}

/// What `convert` is given.
pub struct ConvertArgs {
    pub to: ConvertTo,
    pub input: PathBuf,
    pub out: PathBuf,
    pub group: u64,
    pub dtype: ShardDtype,
}

/// Writes `a.input` in the other profile's format at `a.out`; prints the sn102 content hash.
pub fn convert(a: &ConvertArgs, src: &Sources<'_>) -> anyhow::Result<()> {
    let spec = src.spec(a.group)?;
    let bytes = read(&a.input)?;
    let refused = |r: connito::protocol::sn102::verify::Refused| {
        anyhow::anyhow!("{}: {}: {}", a.input.display(), r.verdict.label(), r.reason)
    };
    let (shard, out) = match a.to {
        ConvertTo::Sn102 => {
            let sd = connito::tensors::decode_safetensors(&bytes)
                .with_context(|| format!("{} is not a connito shard", a.input.display()))?;
            let shard = Shard::from_state_dict(&sd, &spec, a.dtype)
                .map_err(|e| anyhow::anyhow!("{}: {e}", a.input.display()))?;
            let out = shard.to_safetensors();
            (shard, out)
        }
        ConvertTo::Connito => {
            let shard = decode(shard_file(&a.input, &bytes), MAX_FILE_BYTES).map_err(refused)?;
            shard.check(&spec).map_err(|e| refused(shard_refusal(e)))?;
            let sd = shard.to_state_dict().map_err(|e| anyhow::anyhow!("{e}"))?;
            (shard, connito::tensors::encode_safetensors(&sd))
        }
    };
    std::fs::write(&a.out, out).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "{}: {} tensors, sn102 content hash {}",
        a.out.display(),
        shard.len(),
        ContentHash::of(&shard)
    );
    Ok(())
}
