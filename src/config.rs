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

/// What a miner does (localnet populations include misbehaving ones; `--adversaries all` adds
/// one of each adversary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Trains its group and submits the result.
    Honest,
    /// Submits the global model's experts unchanged.
    FreeRider,
    /// Commits another miner's hash and serves that miner's shard.
    #[serde(alias = "hash-copier")]
    Copier,
    /// Fetches the honest miner's shard URL while hashes are committed, and would commit it
    /// with one bit changed.
    ShardThief,
    /// The global experts plus N(0, 1e-4) noise.
    NoiseAdder,
    /// Resubmits the honest miner's shard of the previous cycle as its own.
    Replayer,
    /// Trains from an old global model (genesis) and says so.
    Stale,
    /// The global experts with a NaN.
    Nan,
    /// The global experts with a row of 1e30.
    Overflow,
    /// Trains only on its prediction of the round's evaluation rows, from everything public.
    HeldoutTrainer,
    /// Serves random bytes at its location.
    GarbageServer,
    /// Its location accepts connections and never answers.
    SlowServer,
    /// Its location is the validator's own HTTP (metrics) address.
    Ssrf,
}

impl Role {
    /// Every adversary, in the order `--adversaries all` adds them.
    pub const ADVERSARIES: [Role; 12] = [
        Role::FreeRider,
        Role::Copier,
        Role::ShardThief,
        Role::NoiseAdder,
        Role::Replayer,
        Role::Stale,
        Role::Nan,
        Role::Overflow,
        Role::HeldoutTrainer,
        Role::GarbageServer,
        Role::SlowServer,
        Role::Ssrf,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Honest => "honest",
            Role::FreeRider => "free-rider",
            Role::Copier => "hash-copier",
            Role::ShardThief => "shard-thief",
            Role::NoiseAdder => "noise-adder",
            Role::Replayer => "replayer",
            Role::Stale => "stale",
            Role::Nan => "nan",
            Role::Overflow => "overflow",
            Role::HeldoutTrainer => "heldout-trainer",
            Role::GarbageServer => "garbage-server",
            Role::SlowServer => "slow-server",
            Role::Ssrf => "ssrf",
        }
    }

    /// `all`, or adversary names separated by commas (`nan,ssrf`).
    pub fn parse_adversaries(text: &str) -> Result<Vec<Role>, String> {
        if text.trim() == "all" {
            return Ok(Role::ADVERSARIES.to_vec());
        }
        text.split(',')
            .map(str::trim)
            .map(|name| {
                Role::ADVERSARIES
                    .into_iter()
                    .find(|r| r.name() == name || (name == "copier" && *r == Role::Copier))
                    .ok_or_else(|| {
                        let known: Vec<&str> = Role::ADVERSARIES.iter().map(|r| r.name()).collect();
                        format!(
                            "unknown adversary {name:?} (all, or some of: {})",
                            known.join(", ")
                        )
                    })
            })
            .collect()
    }

    /// A population of an honest miner per group (first, so adversaries can act on them), then
    /// the given adversaries, all in group 0.
    pub fn population(n_groups: usize, adversaries: &[Role]) -> Vec<MinerSpec> {
        let honest = (0..n_groups as u16).map(|group| MinerSpec {
            role: Role::Honest,
            group,
        });
        let bad = adversaries.iter().map(|role| MinerSpec {
            role: *role,
            group: 0,
        });
        honest.chain(bad).collect()
    }

    /// Whether it acts on another miner (the honest miner of its group).
    pub fn needs_victim(self) -> bool {
        matches!(self, Role::Copier | Role::ShardThief | Role::Replayer)
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
    /// Held-out batches per group per round (the paired test's samples).
    pub eval_batches: usize,
    /// Rows (of `model.seq_len` tokens) per held-out batch: one batch's activations are the
    /// evaluation's memory beyond the model itself.
    pub batch_rows: usize,
    /// `score = delta^exponent`.
    pub exponent: f64,
    /// One in this many samples (by content hash) is held out from training.
    pub heldout_every: u64,
    /// Largest shard accepted, bytes.
    pub max_shard_bytes: usize,
    /// Standard errors of the paired per-batch improvement a score must clear (0 = off).
    pub margin_sigmas: f64,
    /// Mean improvement (nats) a score must exceed.
    pub min_delta: f64,
    /// Largest `|w|` accepted in a shard (beyond: `out_of_range`).
    pub max_abs_weight: f32,
    /// Largest `‖θ − θ_global‖ / ‖θ_global‖` accepted over a shard's tensors.
    pub max_delta_ratio: f64,
    /// Cosine similarity of expert deltas at or above which a later commit is `near_duplicate`.
    pub dup_cosine: f64,
    /// Relative L2 distance of expert deltas at or below which a later commit is
    /// `near_duplicate`.
    pub dup_rel_l2: f64,
    /// Submissions evaluated per round at most, earliest commits first (the rest:
    /// `over_capacity`).
    pub max_candidates: usize,
    /// How much (nats) merging a shard may raise another group's held-out loss before the shard
    /// is not merged.
    pub merge_tolerance: f64,
}

impl Default for PolConfig {
    fn default() -> Self {
        Self {
            eval_batches: 16,
            batch_rows: 4,
            exponent: 1.2,
            heldout_every: 8,
            max_shard_bytes: 64 << 20,
            margin_sigmas: 2.0,
            min_delta: 0.002,
            max_abs_weight: 100.0,
            max_delta_ratio: 4.0,
            dup_cosine: 0.99,
            dup_rel_l2: 1e-3,
            max_candidates: 32,
            merge_tolerance: 0.5,
        }
    }
}

impl PolConfig {
    pub fn margin(&self) -> crate::pol::Margin {
        crate::pol::Margin {
            sigmas: self.margin_sigmas,
            min_delta: self.min_delta,
            exponent: self.exponent,
        }
    }

    pub fn screen(&self) -> crate::pol::ScreenConfig {
        crate::pol::ScreenConfig {
            max_abs_weight: self.max_abs_weight,
            max_delta_ratio: self.max_delta_ratio,
            dup_cosine: self.dup_cosine,
            dup_rel_l2: self.dup_rel_l2,
        }
    }

    fn validate(&self) -> Result<(), String> {
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        if self.eval_batches == 0 || self.batch_rows == 0 || self.max_candidates == 0 {
            return Err(
                "pol.eval_batches, pol.batch_rows and pol.max_candidates must be at least 1".into(),
            );
        }
        let nonneg = [
            ("pol.margin_sigmas", self.margin_sigmas),
            ("pol.min_delta", self.min_delta),
            ("pol.merge_tolerance", self.merge_tolerance),
            ("pol.dup_rel_l2", self.dup_rel_l2),
        ];
        if let Some((name, v)) = nonneg.iter().find(|(_, v)| !finite_nonneg(*v)) {
            return Err(format!("{name} must be finite and >= 0, got {v}"));
        }
        let positive = [
            ("pol.exponent", self.exponent),
            ("pol.max_abs_weight", f64::from(self.max_abs_weight)),
            ("pol.max_delta_ratio", self.max_delta_ratio),
        ];
        if let Some((name, v)) = positive.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("{name} must be finite and > 0, got {v}"));
        }
        if !(self.dup_cosine.is_finite() && self.dup_cosine > 0.0 && self.dup_cosine <= 1.0) {
            return Err(format!(
                "pol.dup_cosine must be in (0, 1], got {}",
                self.dup_cosine
            ));
        }
        Ok(())
    }
}

/// How a validator fetches submissions (`[intake]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeConfig {
    /// Submissions fetched at the same time.
    pub concurrency: usize,
    /// Milliseconds to connect to a miner.
    pub connect_timeout_ms: u64,
    /// Milliseconds one fetch (connect, headers and body) may take in all.
    pub fetch_timeout_ms: u64,
    /// Fetch from loopback and private addresses too. Off on a real network (a location must
    /// resolve to a public address); localnet, where every daemon is on 127.0.0.1, turns it on.
    pub allow_private_locations: bool,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            connect_timeout_ms: 3_000,
            fetch_timeout_ms: 30_000,
            allow_private_locations: false,
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
    pub intake: IntakeConfig,
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
            intake: IntakeConfig::default(),
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
        self.model
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("model: {e}")))?;
        for (g, d) in self.domains.iter().enumerate() {
            let vocab = self.model.arch.vocab_size;
            if let Some(v) = d.vocab().filter(|v| *v > vocab) {
                return inv(format!(
                    "domains[{g}] ({}) produces token ids up to {v}, beyond the model's \
                     vocab_size {vocab}",
                    d.name()
                ));
            }
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
            if m.role.needs_victim()
                && !self.miners[..i]
                    .iter()
                    .any(|o| o.role == Role::Honest && o.group == m.group)
            {
                return inv(format!(
                    "miners[{i}] is a {} in group {} but no honest miner of that group is listed before it",
                    m.role.name(),
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
        self.pol.validate().map_err(ConfigError::Invalid)?;
        if self.train.batch_rows == 0 {
            return inv("train.batch_rows must be at least 1".into());
        }
        let i = &self.intake;
        if i.concurrency == 0 || i.connect_timeout_ms == 0 || i.fetch_timeout_ms == 0 {
            return inv(
                "intake.concurrency, intake.connect_timeout_ms and intake.fetch_timeout_ms must be at least 1"
                    .into(),
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
            "[pol]\nmargin_sigmas = -1.0",
            "[pol]\nmax_candidates = 0",
            "[pol]\ndup_cosine = 1.5",
            "[pol]\nmax_abs_weight = 0.0",
            "[pol]\nmerge_tolerance = nan",
            "[intake]\nconcurrency = 0",
            "[intake]\nfetch_timeout_ms = 0",
        ] {
            assert!(
                matches!(LocalnetConfig::from_toml(bad), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn adversary_lists_and_populations() {
        assert_eq!(Role::parse_adversaries("all").unwrap(), Role::ADVERSARIES);
        assert_eq!(
            Role::parse_adversaries("nan, copier,hash-copier").unwrap(),
            [Role::Nan, Role::Copier, Role::Copier]
        );
        assert!(
            Role::parse_adversaries("nan,thief")
                .unwrap_err()
                .contains("shard-thief")
        );
        let mut cfg = LocalnetConfig {
            miners: Role::population(2, &Role::ADVERSARIES),
            ..LocalnetConfig::default()
        };
        assert_eq!(cfg.miners.len(), 14);
        cfg.validate().unwrap();
        let names: std::collections::BTreeSet<&str> =
            cfg.miners.iter().map(|m| m.role.name()).collect();
        assert_eq!(names.len(), 13, "every role has its own name");
        cfg.miners.swap(0, 3);
        assert!(
            cfg.validate().is_err(),
            "a victim must be listed before its adversary"
        );
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

    #[test]
    fn the_documents_example_loads_its_corpus_and_tokenizer() {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/config/docs.toml");
        let cfg = LocalnetConfig::from_file(std::path::Path::new(p)).unwrap();
        match &cfg.domains[1] {
            Domain::Docs(c) => assert_eq!(c.vocab(), Some(400)),
            other => panic!("group 1 should be documents, got {other:?}"),
        }
        assert_eq!(cfg.model.arch.vocab_size, 512);
    }

    #[test]
    fn a_document_corpus_needs_a_model_vocabulary_as_large_as_its_tokenizer() {
        let base = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/data");
        let domains = "domains = [\"arithmetic\", \
            { docs = { path = \"docs.jsonl.gz\", tokenizer = \"tokenizer.json\" } }]\n";
        let at = |extra: &str| {
            LocalnetConfig::from_toml_at(&format!("{domains}{extra}"), std::path::Path::new(base))
        };
        let e = at("").unwrap_err();
        assert!(
            e.to_string().contains("beyond the model's vocab_size 256"),
            "{e}"
        );
        let cfg = at("[model]\npreset = \"tiny\"\nn_groups = 2\nseq_len = 32\n\
                      [model.hf]\nvocab_size = 512\n")
        .unwrap();
        match &cfg.domains[1] {
            Domain::Docs(c) => assert_eq!(c.size().unwrap().1, 60),
            other => panic!("group 1 should be documents, got {other:?}"),
        }
        let e = LocalnetConfig::from_toml_at(
            "domains = [\"arithmetic\", { docs = { path = \"docs.jsonl\", \
             tokenizer = \"tokenizer.json\", column = \"x\" } }]",
            std::path::Path::new(base),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
