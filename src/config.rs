//! Configuration of a localnet (and the daemon settings it shares with real deployments).
//! Every field has a default; a TOML file only names what it changes. Unknown keys are errors.

use serde::{Deserialize, Serialize};

use crate::chain::DevChainConfig;
use crate::data::Domain;
use crate::merge::OuterConfig;
use crate::model::ModelConfig;
use crate::phase::PhaseLengths;
use crate::pol::RewardConfig;
use crate::train::TrainConfig;

/// Compute backend for training and evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// burn's Flex CPU backend.
    Cpu,
    /// wgpu on a Vulkan (or Metal) adapter; never the OpenGL fallback.
    Wgpu,
    /// A real GPU through wgpu when there is one, else the CPU backend.
    Auto,
    /// burn's CUDA backend on GPU 0 (needs a build with `--features cuda`).
    Cuda,
}

/// What a miner does (localnet populations include misbehaving ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Trains its group and submits the result.
    Honest,
    /// Submits the global model's experts unchanged.
    FreeRider,
    /// Commits another miner's hash and serves that miner's shard.
    Copier,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Honest => "honest",
            Role::FreeRider => "free-rider",
            Role::Copier => "copier",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerSpec {
    pub role: Role,
    pub group: u16,
}

/// Proof-of-Loss evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolConfig {
    /// Held-out batches per group per round.
    pub eval_batches: usize,
    pub batch_rows: usize,
    /// `score = delta^exponent`.
    pub exponent: f64,
    /// One in this many samples (by content hash) is held out from training.
    pub heldout_every: u64,
    /// Largest shard accepted, bytes.
    pub max_shard_bytes: usize,
}

impl Default for PolConfig {
    fn default() -> Self {
        Self {
            eval_batches: 4,
            batch_rows: 16,
            exponent: 1.2,
            heldout_every: 8,
            max_shard_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalnetConfig {
    /// Milliseconds between dev-chain blocks.
    pub block_time_ms: u64,
    /// Seed of the genesis model, the data and the dev chain.
    pub seed: u64,
    pub backend: Backend,
    /// Optimizer steps an honest miner takes at most per cycle (it also stops when Train ends).
    pub max_steps_per_cycle: usize,
    /// A training miner checkpoints every this many steps (0 = never); after a crash it resumes
    /// from the checkpoint if the cycle's Train phase is still open.
    pub checkpoint_every_steps: usize,
    /// Stake of the validator (the miners have none).
    pub validator_stake: f64,
    /// Scale of the genesis router's warm start toward each group's domain (0 = random router).
    pub genesis_router_gain: f32,
    /// Domain trained and evaluated for each expert group, by group index.
    pub domains: Vec<Domain>,
    pub miners: Vec<MinerSpec>,
    pub phases: PhaseLengths,
    pub chain: DevChainConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub pol: PolConfig,
    pub rewards: RewardConfig,
    pub merge: OuterConfig,
}

impl Default for LocalnetConfig {
    fn default() -> Self {
        let phases = PhaseLengths::localnet();
        let cycle = phases.cycle_len();
        Self {
            block_time_ms: 250,
            seed: 1,
            backend: Backend::Cpu,
            max_steps_per_cycle: 400,
            checkpoint_every_steps: 50,
            validator_stake: 1000.0,
            genesis_router_gain: 4.0,
            domains: vec![Domain::Arithmetic, Domain::Sorting],
            miners: vec![
                MinerSpec {
                    role: Role::Honest,
                    group: 0,
                },
                MinerSpec {
                    role: Role::Honest,
                    group: 1,
                },
                MinerSpec {
                    role: Role::FreeRider,
                    group: 0,
                },
                MinerSpec {
                    role: Role::Copier,
                    group: 1,
                },
            ],
            phases,
            chain: DevChainConfig {
                tempo: cycle,
                weights_rate_limit: cycle / 2,
                yuma: crate::consensus::YumaParams {
                    tempo: cycle,
                    ..Default::default()
                },
                ..DevChainConfig::default()
            },
            model: ModelConfig::tiny(),
            train: TrainConfig::default(),
            pol: PolConfig::default(),
            rewards: RewardConfig::default(),
            merge: OuterConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("config: {0}")]
    Invalid(String),
    #[error("config: {0}")]
    Corpus(#[from] crate::data::CorpusError),
}

impl LocalnetConfig {
    /// Parses, reads the text corpora (relative paths against the working directory) and
    /// validates.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_at(text, std::path::Path::new("."))
    }

    /// Reads a config file; corpus paths in it are relative to the file's directory.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        Self::from_toml_at(&text, base)
    }

    /// Parses `text`, reads its text corpora (relative paths against `base`) and validates.
    pub fn from_toml_at(text: &str, base: &std::path::Path) -> Result<Self, ConfigError> {
        let mut cfg: Self = toml::from_str(text)?;
        cfg.load_corpora(base)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads every text corpus named in `domains` (generated domains are left as they are).
    pub fn load_corpora(&mut self, base: &std::path::Path) -> Result<(), ConfigError> {
        for d in &mut self.domains {
            *d = d.load(base, self.pol.heldout_every)?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let inv = |s: String| Err(ConfigError::Invalid(s));
        self.phases
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.model
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if !(self.genesis_router_gain.is_finite() && self.genesis_router_gain >= 0.0) {
            return inv(format!(
                "genesis_router_gain must be finite and >= 0, got {}",
                self.genesis_router_gain
            ));
        }
        if self.block_time_ms == 0 {
            return inv("block_time_ms must be at least 1".into());
        }
        if let Some(p) = self.domains.iter().find_map(|d| d.unloaded_corpus()) {
            return Err(crate::data::CorpusError::NotLoaded(p.to_path_buf()).into());
        }
        if self.domains.len() != self.model.n_groups {
            return inv(format!(
                "domains lists {} domains but the model has {} expert groups (one domain per group)",
                self.domains.len(),
                self.model.n_groups
            ));
        }
        for (i, m) in self.miners.iter().enumerate() {
            if m.group as usize >= self.model.n_groups {
                return inv(format!(
                    "miners[{i}].group {} is not a group (model has {})",
                    m.group, self.model.n_groups
                ));
            }
            if m.role == Role::Copier
                && !self
                    .miners
                    .iter()
                    .any(|o| o.role == Role::Honest && o.group == m.group)
            {
                return inv(format!(
                    "miners[{i}] is a copier in group {} but no honest miner there to copy",
                    m.group
                ));
            }
        }
        if self.chain.tempo == 0 {
            return inv("chain.tempo must be at least 1".into());
        }
        let r = &self.rewards;
        if r.window == 0 {
            return inv("rewards.window must be at least 1 (cycles of points kept)".into());
        }
        let shares_ok = r.points.iter().all(|p| p.is_finite() && *p >= 0.0)
            && r.top_share.is_finite()
            && (0.0..=1.0).contains(&r.top_share);
        if !shares_ok {
            return inv(format!(
                "rewards.points must be finite and >= 0 and rewards.top_share in [0, 1], got {:?} and {}",
                r.points, r.top_share
            ));
        }
        if self.pol.eval_batches == 0 || self.pol.batch_rows == 0 || self.train.batch_rows == 0 {
            return inv(
                "pol.eval_batches, pol.batch_rows and train.batch_rows must be at least 1".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_empty_toml_is_default() {
        LocalnetConfig::default().validate().unwrap();
        assert_eq!(
            LocalnetConfig::from_toml("").unwrap(),
            LocalnetConfig::default()
        );
    }

    #[test]
    fn shipped_example_is_exactly_the_defaults() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/localnet.toml"))
                .unwrap();
        assert_eq!(
            LocalnetConfig::from_toml(&text).unwrap(),
            LocalnetConfig::default()
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(matches!(
            LocalnetConfig::from_toml("blok_time_ms = 3"),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            LocalnetConfig::from_toml("block_time_ms = 0"),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            LocalnetConfig::from_toml("domains = [\"arithmetic\"]"),
            Err(ConfigError::Invalid(_))
        ));
        let copier_alone = "[[miners]]\nrole = \"copier\"\ngroup = 0\n";
        assert!(matches!(
            LocalnetConfig::from_toml(copier_alone),
            Err(ConfigError::Invalid(_))
        ));
        let bad_group = "[[miners]]\nrole = \"honest\"\ngroup = 5\n";
        assert!(matches!(
            LocalnetConfig::from_toml(bad_group),
            Err(ConfigError::Invalid(_))
        ));
        for bad in [
            "[rewards]\nwindow = 0",
            "[rewards]\ntop_share = 1.5",
            "[rewards]\npoints = [1.0, -2.0]",
        ] {
            assert!(
                matches!(LocalnetConfig::from_toml(bad), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_corpus_example_reads_this_repositorys_sources() {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/config/corpus.toml");
        let cfg = LocalnetConfig::from_file(std::path::Path::new(p)).unwrap();
        match &cfg.domains[1] {
            Domain::Text(c) => assert!(c.size().unwrap().0 > 10, "{c:?}"),
            other => panic!("group 1 should be a corpus, got {other:?}"),
        }
    }

    #[test]
    fn corpus_problems_are_clear_errors() {
        let e = LocalnetConfig::from_toml(
            "domains = [\"arithmetic\", { text = \"/nonexistent/corpus\" }]",
        )
        .unwrap_err();
        assert!(matches!(
            e,
            ConfigError::Corpus(crate::data::CorpusError::Io { .. })
        ));
        assert!(e.to_string().contains("/nonexistent/corpus"), "{e}");
        let mut cfg = LocalnetConfig::default();
        cfg.domains[1] = Domain::Text(crate::data::TextCorpus::unloaded("later"));
        assert!(matches!(
            cfg.validate(),
            Err(ConfigError::Corpus(crate::data::CorpusError::NotLoaded(_)))
        ));
    }
}
