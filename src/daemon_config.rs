//! The validator and miner daemons' configuration (`config/validator.toml`, `config/miner.toml`):
//! the `[node]` table (which chain, which data directory, which port) and the protocol keys
//! every node of the subnet shares, as in `config/localnet.toml`.
//!
//! Every key can be set three ways, the later winning: the file, an environment variable
//! `CONNITO__<TABLE>__<KEY>` (`CONNITO__PHASES__TRAIN=300`, `CONNITO__NODE__HTTP_PORT=9200`), and
//! the flag `--set table.key=value` (repeatable). Values are TOML literals; anything that does
//! not parse as one is taken as a string.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, LocalnetConfig};
use crate::protocol::ProtocolKind;
use crate::protocol::wire::Sn102Settings;

/// The daemon's own settings (`[node]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Named network (finney, test, local); ignored when `chain_endpoint` is set.
    pub network: Option<String>,
    /// Node URL (ws:// or wss://).
    pub chain_endpoint: Option<String>,
    pub netuid: u16,
    /// State (sled), shards and models; default `~/.connito/<role>-<wallet>-<hotkey>`.
    pub data_dir: Option<String>,
    /// Port of the HTTP server (`/metrics`; a miner's shards, a validator's models); 0 = any.
    pub http_port: u16,
    /// Address the HTTP server binds.
    pub http_bind: String,
    /// Base URL others reach this node's HTTP server at (a miner commits it as its shard
    /// location); default `http://<bound address>`.
    pub advertise_url: Option<String>,
    /// Milliseconds between polls of the chain for a new finalized block.
    pub poll_ms: u64,
    /// The expert group a miner trains.
    pub group: u16,
    /// The wire profile, `"sn102"` or `"connito"`; default: `sn102` on finney and test for
    /// netuid 102, `connito` elsewhere ([`ProtocolKind::default_for`]).
    pub protocol: Option<ProtocolKind>,
}

/// The sn102 profile's settings (`[sn102]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sn102Config {
    /// The Hugging Face Hub's base URL, or `file://DIR`: a folder in the Hub's layout
    /// (`DIR/{repo}/resolve/{revision}/{file}`) that miners write and validators read.
    pub hub: String,
    /// This node's repo id (`owner/name`, at most 32 characters); default
    /// `{first 8 characters of the hotkey's SS58}/co`.
    pub repo: Option<String>,
    /// SS58 hotkeys whose commitments count as validators' while their weights are fresh
    /// (until the owner service's whitelist: issue "Join the live subnet").
    pub whitelist: Vec<String>,
    /// How many cycles back a validator's model may be for a miner to start from.
    pub version_range_cycles: u64,
}

impl Default for Sn102Config {
    fn default() -> Self {
        Self {
            hub: "https://huggingface.co".into(),
            repo: None,
            whitelist: vec![],
            version_range_cycles: 3,
        }
    }
}

impl Sn102Config {
    /// The profile's settings for `hotkey`.
    pub fn settings(&self, hotkey: &[u8; 32]) -> Result<Sn102Settings, ConfigError> {
        let mut whitelist = std::collections::BTreeSet::new();
        for s in &self.whitelist {
            let (k, _) = crate::submission::keys::ss58_decode(s).map_err(|e| {
                ConfigError::Invalid(format!("sn102.whitelist: {s:?} is not an SS58 hotkey: {e}"))
            })?;
            whitelist.insert(k);
        }
        let repo = match &self.repo {
            Some(r) => r.clone(),
            None => format!(
                "{}/co",
                &crate::submission::ss58(hotkey, crate::submission::SUBSTRATE_SS58_PREFIX)[..8]
            ),
        };
        crate::protocol::sn102::commitment::check_repo(&repo)
            .map_err(|e| ConfigError::Invalid(format!("sn102.repo: {e}")))?;
        let hub = self.hub.trim_end_matches('/').to_string();
        if !["http://", "https://", "file://"]
            .iter()
            .any(|p| hub.starts_with(p))
        {
            return Err(ConfigError::Invalid(format!(
                "sn102.hub {hub:?}: expected an http(s):// URL or file://DIR"
            )));
        }
        Ok(Sn102Settings {
            hub,
            repo,
            whitelist,
            version_range_cycles: self.version_range_cycles,
        })
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            network: None,
            chain_endpoint: None,
            netuid: crate::chain::DEFAULT_NETUID,
            data_dir: None,
            http_port: 0,
            http_bind: "127.0.0.1".into(),
            advertise_url: None,
            poll_ms: 100,
            group: 0,
            protocol: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub node: NodeConfig,
    pub sn102: Sn102Config,
    /// The protocol: phases, model, training, Proof-of-Loss, rewards, merge, domains, seed.
    pub protocol: LocalnetConfig,
}

/// `CONNITO__A__B=v` variables as `("a.b", "v")` overrides.
pub fn env_overrides(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter_map(|(k, v)| {
        let path = k.strip_prefix("CONNITO__")?;
        let path = path
            .to_ascii_lowercase()
            .split("__")
            .collect::<Vec<_>>()
            .join(".");
        Some((path, v))
    })
    .collect()
}

/// Parses a `--set table.key=value`.
pub fn parse_set(s: &str) -> Result<(String, String), ConfigError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| ConfigError::Invalid(format!("--set {s:?}: expected KEY=VALUE")))?;
    Ok((k.trim().to_string(), v.to_string()))
}

fn literal(v: &str) -> toml::Value {
    let doc = format!("x = {v}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("x")
            .unwrap_or_else(|| toml::Value::String(v.into())),
        Err(_) => toml::Value::String(v.into()),
    }
}

/// Sets `path` (dotted) in `doc` to `value`.
pub fn apply_override(doc: &mut toml::Table, path: &str, value: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Invalid(format!("override key {path:?}")));
    }
    let mut t = doc;
    for p in &parts[..parts.len() - 1] {
        let next = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = next
            .as_table_mut()
            .ok_or_else(|| ConfigError::Invalid(format!("override {path}: {p} is not a table")))?;
    }
    t.insert(parts[parts.len() - 1].to_string(), literal(value));
    Ok(())
}

impl DaemonConfig {
    /// The file's text (empty: defaults) with `overrides` applied in order, parsed and
    /// validated; text corpora are read relative to `base`.
    pub fn parse(
        text: &str,
        base: &Path,
        overrides: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut doc: toml::Table = toml::from_str(text)?;
        for (k, v) in overrides {
            apply_override(&mut doc, k, v)?;
        }
        let node = match doc.remove("node") {
            Some(v) => v.try_into::<NodeConfig>()?,
            None => NodeConfig::default(),
        };
        let sn102 = match doc.remove("sn102") {
            Some(v) => v.try_into::<Sn102Config>()?,
            None => Sn102Config::default(),
        };
        if node.poll_ms == 0 {
            return Err(ConfigError::Invalid(
                "node.poll_ms must be at least 1".into(),
            ));
        }
        let protocol =
            LocalnetConfig::from_toml_at(&toml::to_string(&doc).expect("a table"), base)?;
        Ok(Self {
            node,
            sn102,
            protocol,
        })
    }

    /// The profile this node speaks: the configured one, else the default for the network it
    /// connects to (`network`: the named network, `None` for a node given by URL).
    pub fn protocol_kind(&self, network: Option<&str>) -> ProtocolKind {
        self.node
            .protocol
            .unwrap_or_else(|| ProtocolKind::default_for(network, self.node.netuid))
    }

    /// Reads `path` (or defaults when `None`) and applies `overrides`.
    pub fn load(path: Option<&Path>, overrides: &[(String, String)]) -> Result<Self, ConfigError> {
        match path {
            None => Self::parse("", Path::new("."), overrides),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Self::parse(&text, p.parent().unwrap_or(Path::new(".")), overrides)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn overrides_layer_over_the_file() {
        let text = "seed = 3\nmax_steps_per_cycle = 40\n[node]\nhttp_port = 9100\n";
        let c = DaemonConfig::parse(
            text,
            Path::new("."),
            &[
                set("max_steps_per_cycle", "50"),
                set("node.chain_endpoint", "ws://10.0.0.2:9944"),
                set("node.netuid", "7"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.protocol.seed, 3);
        assert_eq!(c.protocol.max_steps_per_cycle, 50);
        assert_eq!(c.node.http_port, 9100);
        assert_eq!(c.node.netuid, 7);
        assert_eq!(c.node.chain_endpoint.as_deref(), Some("ws://10.0.0.2:9944"));
    }

    #[test]
    fn env_names_map_to_keys() {
        let vars = [
            ("CONNITO__PHASES__TRAIN", "30"),
            ("CONNITO__NODE__HTTP_PORT", "1"),
            ("CONNITO_NETWORK", "test"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(
            env_overrides(vars.into_iter()),
            vec![set("phases.train", "30"), set("node.http_port", "1")]
        );
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let bad = [
            ("", vec![set("node.nope", "1")]),
            ("", vec![set("phases..train", "1")]),
            ("seed = 1", vec![set("seed.x", "1")]),
            ("[node]\npoll_ms = 0", vec![]),
            ("not toml = = 1", vec![]),
            ("[rewards]\nwindow = 0", vec![]),
            ("", vec![set("rewards.top_share", "1.5")]),
            ("", vec![set("node.protocol", "bittensor")]),
            ("[sn102]\nnope = 1", vec![]),
        ];
        for (text, sets) in bad {
            assert!(
                DaemonConfig::parse(text, Path::new("."), &sets).is_err(),
                "{text:?} {sets:?}"
            );
        }
        assert!(parse_set("phases.train").is_err());
        assert_eq!(parse_set("a.b=c=d").unwrap(), set("a.b", "c=d"));
    }

    #[test]
    fn protocol_is_the_configured_one_else_the_networks_default() {
        let parse = |sets: &[(String, String)]| {
            DaemonConfig::parse("", Path::new("."), sets).unwrap_or_else(|e| panic!("{e}"))
        };
        let c = parse(&[set("node.netuid", "102")]);
        assert_eq!(c.protocol_kind(Some("finney")), ProtocolKind::Sn102);
        assert_eq!(c.protocol_kind(None), ProtocolKind::Connito);
        let c = parse(&[set("node.netuid", "102"), set("node.protocol", "connito")]);
        assert_eq!(c.protocol_kind(Some("finney")), ProtocolKind::Connito);
        let c = parse(&[set("node.protocol", "sn102")]);
        assert_eq!(c.protocol_kind(None), ProtocolKind::Sn102);
    }

    #[test]
    fn sn102_settings_are_checked() {
        let key = [7u8; 32];
        let s = Sn102Config::default().settings(&key).unwrap();
        assert_eq!(
            s.repo,
            format!("{}/co", &crate::submission::ss58(&key, 42)[..8])
        );
        assert_eq!(s.hub, "https://huggingface.co");
        let alice = crate::submission::Hotkey::dev("Alice").public();
        let ok = Sn102Config {
            whitelist: vec![crate::submission::ss58(&alice, 42)],
            hub: "file:///tmp/hub/".into(),
            ..Default::default()
        };
        let s = ok.settings(&key).unwrap();
        assert!(s.whitelist.contains(&alice));
        assert_eq!(s.hub, "file:///tmp/hub");
        let bad = [
            Sn102Config {
                whitelist: vec!["5Fnot-a-key".into()],
                ..Default::default()
            },
            Sn102Config {
                repo: Some("a/".repeat(20)),
                ..Default::default()
            },
            Sn102Config {
                hub: "ftp://x".into(),
                ..Default::default()
            },
        ];
        for b in bad {
            assert!(b.settings(&key).is_err(), "{b:?}");
        }
    }

    #[test]
    fn the_shipped_configs_parse() {
        for f in ["config/validator.toml", "config/miner.toml"] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
            DaemonConfig::load(Some(&p), &[]).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }
}
