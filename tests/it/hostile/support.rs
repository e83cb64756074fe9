//! The honest submission every hostile case starts from, the case type, and a safetensors writer
//! by hand (8-byte little-endian header length, JSON header, data) for headers no encoder writes.

use std::collections::BTreeMap;

use connito::config::LocalnetConfig;
use connito::model::{ModelConfig, extract_group, group_shapes, init_state_dict};
use connito::submission::check::Expected;
use connito::submission::{Hotkey, Manifest, ShardSpec, SignedManifest, Verdict};
use connito::tensors::{Hash32, StateDict, TensorBlob, blake2b_256, encode_safetensors};

/// The round the honest submission is for.
pub const CYCLE: u64 = 5;
pub const VERSION: u64 = 3;

/// The miner (`Hotkey::dev`) that signs the corpus, and the one that forges or copies.
pub const KEY: &str = "hostile";
pub const FORGER: &str = "forger";

/// An honest group-0 submission of the tiny model and what it was trained from.
pub struct Fx {
    pub cfg: LocalnetConfig,
    pub key: Hotkey,
    /// The global model (`connito model init --preset tiny --seed 1`).
    pub global: StateDict,
    /// The honest shard: the model's group-0 experts, nudged so it is not the model's.
    pub sd: StateDict,
    pub shard: Vec<u8>,
    pub signed: SignedManifest,
    /// `signed` as compact JSON.
    pub manifest: Vec<u8>,
    /// The round the submission is for, and the global version it was trained from.
    pub cycle: u64,
    pub version: u64,
}

impl Fx {
    pub fn new() -> Self {
        let cfg = LocalnetConfig::default();
        let global = init_state_dict(&cfg.model, 1);
        Self::at(cfg, KEY, CYCLE, VERSION, global)
    }

    /// The honest submission of `key` (`Hotkey::dev`) for `cycle`, trained from `global` (the
    /// model of global version `version`).
    pub fn at(cfg: LocalnetConfig, key: &str, cycle: u64, version: u64, global: StateDict) -> Self {
        assert_eq!(
            cfg.model,
            ModelConfig::tiny(),
            "the corpus is for the tiny model"
        );
        let mut sd = extract_group(&cfg.model, &global, 0);
        for t in sd.values_mut() {
            for (i, v) in t.data.iter_mut().enumerate() {
                *v += 1e-3 * ((i % 7) as f32 - 3.0);
            }
        }
        let key = Hotkey::dev(key);
        let shard = encode_safetensors(&sd);
        let signed = sign_for(&key, &shard, 0, cycle, version);
        let manifest = serde_json::to_vec(&signed).unwrap();
        let fx = Self {
            cfg,
            key,
            global,
            sd,
            shard,
            signed,
            manifest,
            cycle,
            version,
        };
        assert_eq!(
            fx.hand_built(|_| {}),
            fx.shard,
            "the hand writer is canonical"
        );
        fx
    }

    /// The key's own manifest of `shard` for group 0 of the round (what `submission make` signs).
    pub fn signed_for(&self, shard: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&self.sign_as(&self.key, shard, 0, self.cycle)).unwrap()
    }

    /// `key`'s signed manifest of `shard` for `group` and `cycle`, at this fixture's version.
    pub fn sign_as(&self, key: &Hotkey, shard: &[u8], group: u16, cycle: u64) -> SignedManifest {
        sign_for(key, shard, group, cycle, self.version)
    }

    /// Every flag of this fixture's round: its cycle, its version, its model.
    pub fn round_flags(&self) -> Flags {
        Flags {
            cycle: Some(self.cycle),
            version: Some(self.version),
            model: true,
            max_shard_bytes: None,
        }
    }

    /// The honest state dict after `f`, canonically encoded.
    pub fn with_sd(&self, f: impl FnOnce(&mut StateDict)) -> Vec<u8> {
        let mut sd = self.sd.clone();
        f(&mut sd);
        encode_safetensors(&sd)
    }

    /// The honest manifest's JSON after `f`.
    pub fn edited(&self, f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v = serde_json::to_value(&self.signed).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    pub fn key_name(&self, i: usize) -> String {
        self.sd.keys().nth(i).unwrap().clone()
    }

    pub fn header_len(&self) -> usize {
        header_len(&self.shard)
    }

    /// The honest shard's tensor data.
    pub fn data(&self) -> &[u8] {
        &self.shard[8 + self.header_len()..]
    }

    /// The honest shard with its header rebuilt from `f`'s edit of the canonical entries. The
    /// edit must keep the header's length, so the shard keeps the group's canonical size and
    /// only the edit is under test (not the size rule).
    pub fn hand_built(&self, f: impl FnOnce(&mut Vec<Entry>)) -> Vec<u8> {
        let mut entries = canonical_entries(&group_shapes(&self.cfg.model, 0));
        f(&mut entries);
        let header = padded(header_of(&entries));
        assert_eq!(
            header.len(),
            self.header_len(),
            "the edit changed the header's length"
        );
        raw_file(header.len() as u64, header.as_bytes(), self.data())
    }

    /// What a validator's Intake knows of the honest submission: the round and the commitment.
    pub fn validator_view(&self) -> Expected {
        Expected {
            cycle: Some(self.cycle),
            global_version: Some(self.version),
            hotkey: Some(self.key.public()),
            committed: Some(self.signed.manifest.binding_hash()),
        }
    }

    pub fn spec(&self, group: u16) -> ShardSpec {
        ShardSpec {
            group,
            expected: group_shapes(&self.cfg.model, group),
            max_bytes: self.cfg.pol.max_shard_bytes,
        }
    }
}

/// The round's expectations, with the commitment of `committer` (`committed` hash).
pub fn round(committer: [u8; 32], committed: Hash32) -> Expected {
    Expected {
        cycle: Some(CYCLE),
        global_version: Some(VERSION),
        hotkey: Some(committer),
        committed: Some(committed),
    }
}

/// `key`'s signed manifest of `shard` for `group` and `cycle` (global version [`VERSION`]).
pub fn sign(key: &Hotkey, shard: &[u8], group: u16, cycle: u64) -> SignedManifest {
    sign_for(key, shard, group, cycle, VERSION)
}

fn sign_for(key: &Hotkey, shard: &[u8], group: u16, cycle: u64, version: u64) -> SignedManifest {
    let m = Manifest {
        hotkey: key.public(),
        group,
        cycle,
        global_version: version,
        content_hash: blake2b_256(shard),
    };
    SignedManifest::sign(m, key)
}

/// The round a case is checked in, as `submission verify` flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    pub cycle: Option<u64>,
    pub version: Option<u64>,
    /// `--model` (the global model): adds the value and distance bounds.
    pub model: bool,
    /// `--config` with this `pol.max_shard_bytes`.
    pub max_shard_bytes: Option<usize>,
}

/// One hostile submission and the verdict it must get.
pub struct Case {
    pub name: &'static str,
    pub manifest: Vec<u8>,
    pub shard: Vec<u8>,
    pub flags: Flags,
    pub want: Verdict,
    /// A phrase the reason must hold ("" for any).
    pub reason: &'static str,
    /// The manifest is the key's own signature of the shard for group 0 of the round, so
    /// `submission make` (no model, no round) must judge the shard the same.
    pub honest_sig: bool,
}

impl Case {
    /// A hostile shard under its own honest manifest.
    pub fn shard(
        fx: &Fx,
        name: &'static str,
        shard: Vec<u8>,
        want: Verdict,
        reason: &'static str,
    ) -> Self {
        Self {
            name,
            manifest: fx.signed_for(&shard),
            shard,
            flags: Flags::default(),
            want,
            reason,
            honest_sig: true,
        }
    }

    /// A hostile manifest of the honest shard.
    pub fn manifest(
        fx: &Fx,
        name: &'static str,
        manifest: Vec<u8>,
        want: Verdict,
        reason: &'static str,
    ) -> Self {
        Self {
            name,
            manifest,
            shard: fx.shard.clone(),
            flags: Flags::default(),
            want,
            reason,
            honest_sig: false,
        }
    }

    pub fn with(self, flags: Flags) -> Self {
        Self { flags, ..self }
    }
}

/// One tensor's entry in a safetensors header.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub offsets: (usize, usize),
}

/// The entries of the canonical encoding of tensors of these shapes (F32, sorted, packed).
pub fn canonical_entries(shapes: &BTreeMap<String, Vec<usize>>) -> Vec<Entry> {
    let mut at = 0;
    shapes
        .iter()
        .map(|(name, shape)| {
            let end = at + 4 * shape.iter().product::<usize>();
            let e = Entry {
                name: name.clone(),
                dtype: "F32",
                shape: shape.clone(),
                offsets: (at, end),
            };
            at = end;
            e
        })
        .collect()
}

/// The JSON header of these entries, in this order, formatted as the safetensors crate does.
pub fn header_of(entries: &[Entry]) -> String {
    let body: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{}:{{\"dtype\":\"{}\",\"shape\":{},\"data_offsets\":[{},{}]}}",
                serde_json::to_string(&e.name).unwrap(),
                e.dtype,
                serde_json::to_string(&e.shape).unwrap(),
                e.offsets.0,
                e.offsets.1
            )
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A header padded with spaces to a multiple of 8 bytes (as the crate writes it).
pub fn padded(mut header: String) -> String {
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    header
}

/// A safetensors file by hand: `len` as the header length field, then `header`, then `data`.
pub fn raw_file(len: u64, header: &[u8], data: &[u8]) -> Vec<u8> {
    [&len.to_le_bytes()[..], header, data].concat()
}

/// The header length field of a safetensors file.
pub fn header_len(file: &[u8]) -> usize {
    u64::from_le_bytes(file[..8].try_into().unwrap()) as usize
}

/// A canonical file of `n` zero-size tensors with expert-like names: a header of about 95 bytes
/// a key and no data.
pub fn zero_size_keys(n: usize) -> Vec<u8> {
    let sd: StateDict = (0..n)
        .map(|i| {
            let name = format!("model.layers.0.mlp.experts.0.k{i:06}.weight");
            (name, TensorBlob::zeros(vec![0]))
        })
        .collect();
    encode_safetensors(&sd)
}

/// A file whose header is a 1 MiB metadata string and no tensors.
pub fn megabyte_header() -> Vec<u8> {
    let header = padded(format!(
        "{{\"__metadata__\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(1 << 20)
    ));
    raw_file(header.len() as u64, header.as_bytes(), &[])
}
