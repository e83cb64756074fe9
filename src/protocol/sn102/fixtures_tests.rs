//! The sn102 codecs against the reference's own outputs: `tests/fixtures/sn102/`, written by
//! `scripts/sn102_fixtures.py` with torch, safetensors, the reference's formulas and the bittensor
//! SDK's keypair (`fixtures.json` lists every file, hash, signature, commitment and scenario).

use serde_json::Value;

use super::assignment::GroupExperts;
use super::commitment::{Commit, HashCommit, RawCommit};
use super::hash::ContentHash;
use super::shard::{Shard, ShardSpec};
use super::signature::verify_hash;
use super::verify::{Expected, ShardFile, Submission, verify};
use crate::model::dsv2::DsConfig;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sn102");

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/fixtures.json")).unwrap()).unwrap()
}

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap()
}

fn spec(group: u64) -> ShardSpec {
    let arch = DsConfig::from_hf_json(&String::from_utf8(file("config.json")).unwrap()).unwrap();
    let text = String::from_utf8(file(&format!("expert_assignment_g{group}.json"))).unwrap();
    ShardSpec::of(
        &arch,
        GroupExperts::parse(&text, arch.n_routed_experts).unwrap(),
    )
}

fn public(m: &Value, who: &str) -> [u8; 32] {
    hex::decode(m["keys"][who]["public_key_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn connito_reproduces_every_reference_hash_byte_for_byte() {
    let m = manifest();
    let by_file = m["hash"]["by_file"].as_object().unwrap();
    assert!(by_file.len() >= 8);
    for (name, want) in by_file {
        let bytes = file(name);
        let file = match name.ends_with(".pt") {
            true => ShardFile::Pt(&bytes),
            false => ShardFile::Safetensors(&bytes),
        };
        let shard =
            super::verify::decode(file, 1 << 30).unwrap_or_else(|r| panic!("{name}: {r:?}"));
        assert_eq!(
            ContentHash::of(&shard).to_hex(),
            want.as_str().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn the_reference_signatures_verify_and_its_variants_as_the_reference_says() {
    let m = manifest();
    let alice = public(&m, "alice");
    for (name, s) in m["signatures"].as_object().unwrap() {
        let (Some(msg), Some(sig)) = (s["message"].as_str(), s["b64url"].as_str()) else {
            continue;
        };
        let Ok(hash) = ContentHash::parse(
            msg.trim_start_matches("<Bytes>")
                .trim_end_matches("</Bytes>"),
        ) else {
            panic!("{name}");
        };
        let key = public(&m, s["signer"].as_str().unwrap());
        verify_hash(&key, &hash, sig).unwrap_or_else(|e| panic!("{name}: {e}"));
        if key != alice {
            assert!(
                verify_hash(&alice, &hash, sig).is_err(),
                "{name} under alice"
            );
        }
    }
    let fp16 = ContentHash::parse(m["hash"]["fp16"].as_str().unwrap()).unwrap();
    for (name, v) in m["signatures"]["variants"].as_object().unwrap() {
        let ok = verify_hash(&alice, &fp16, v["b64"].as_str().unwrap()).is_ok();
        assert_eq!(
            ok,
            v["reference_verifies"].as_bool().unwrap(),
            "variant {name}"
        );
    }
}

#[test]
fn connito_writes_the_reference_commitments_and_reads_them_back() {
    let m = manifest();
    let c = &m["commitments"];
    let text = |k: &str| c[k]["text"].as_str().unwrap().to_string();
    let hash = ContentHash::parse(m["hash"]["fp16"].as_str().unwrap()).unwrap();
    let signature = RawCommit::parse(&text("miner_commit1"))
        .unwrap()
        .signature()
        .unwrap()
        .to_string();
    assert_eq!(
        Commit::MinerSignature(signature).encode().unwrap(),
        text("miner_commit1")
    );
    let miner = RawCommit::parse(&text("miner_commit2"))
        .unwrap()
        .hash_commit()
        .unwrap();
    let want = HashCommit {
        group: 0,
        hash,
        version: 4_200_000,
        repo: "alice/sn102-g0".into(),
        revision: "abc1234".into(),
    };
    assert_eq!(miner, want);
    assert_eq!(
        Commit::MinerHash(miner).encode().unwrap(),
        text("miner_commit2")
    );
    let v = RawCommit::parse(&text("validator_commit1")).unwrap();
    let heartbeat = Commit::ValidatorHeartbeat {
        hash,
        version: v.version.unwrap(),
        group: v.group.unwrap(),
        seed: v.seed.unwrap(),
    };
    assert_eq!(heartbeat.encode().unwrap(), text("validator_commit1"));
    let v2 = RawCommit::parse(&text("validator_commit2"))
        .unwrap()
        .hash_commit()
        .unwrap();
    assert_eq!(
        Commit::ValidatorHash(v2).encode().unwrap(),
        text("validator_commit2")
    );
    // Every listed commitment reads with the verdict the fixture gives it (connito is strict where
    // pydantic coerces, e.g. "e": "0").
    for (name, x) in c.as_object().unwrap() {
        let parsed = RawCommit::parse(x["text"].as_str().unwrap());
        let want_ok = x["verdict"] == "accepted";
        assert_eq!(parsed.is_ok(), want_ok, "{name}: {parsed:?}");
    }
}

/// The fixture's verdict labels as connito's: an expert outside the group is `unexpected_key`,
/// a commitment naming another group `wrong_group`, a `.pt` announcing more tensor bytes than a
/// shard may hold `too_large` (refused before anything is allocated).
fn label(scenario: &str, want: &str) -> String {
    let has = |s: &str| scenario.contains(s);
    match want {
        "not_in_group" if has("wrong_group") => "wrong_group".into(),
        "not_in_group" => "unexpected_key".into(),
        "unsupported_format" if has("oversized") => "too_large".into(),
        w => w.into(),
    }
}

#[test]
fn every_reference_scenario_gets_its_verdict() {
    let m = manifest();
    let scenarios = m["scenarios"].as_object().unwrap();
    assert!(scenarios.len() >= 15);
    for (name, s) in scenarios {
        let bytes = file(s["file"].as_str().unwrap());
        let file = match s["file"].as_str().unwrap().ends_with(".pt") {
            true => ShardFile::Pt(&bytes),
            false => ShardFile::Safetensors(&bytes),
        };
        let commit = |k: &str| {
            m["commitments"][s[k].as_str().unwrap()]["text"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (c1, c2) = (commit("commit1"), commit("commit2"));
        let sub = Submission {
            file,
            commit1: &c1,
            commit2: &c2,
            hotkey: public(&m, s["hotkey"].as_str().unwrap()),
        };
        let exp = Expected {
            spec: spec(0),
            group: 0,
            version: Some(4_200_000),
            max_bytes: 1 << 30,
        };
        let got = match verify(&sub, &exp) {
            Ok(_) => "accepted".to_string(),
            Err(r) => r.verdict.label().to_string(),
        };
        assert_eq!(got, label(name, s["verdict"].as_str().unwrap()), "{name}");
    }
}

#[test]
fn the_reference_shard_holds_exactly_group_0_and_converts_losslessly() {
    let shard = Shard::from_safetensors(&file("shard_fp16.safetensors")).unwrap();
    shard.check(&spec(0)).unwrap();
    assert!(shard.check(&spec(1)).is_err());
    let sd = shard.to_state_dict().unwrap();
    let back = Shard::from_state_dict(&sd, &spec(0), super::shard::ShardDtype::F16).unwrap();
    assert_eq!(ContentHash::of(&back), ContentHash::of(&shard));
    let bf16 = Shard::from_safetensors(&file("shard_bf16.safetensors")).unwrap();
    let back = Shard::from_state_dict(
        &bf16.to_state_dict().unwrap(),
        &spec(0),
        super::shard::ShardDtype::BF16,
    )
    .unwrap();
    assert_eq!(back, bf16);
}
