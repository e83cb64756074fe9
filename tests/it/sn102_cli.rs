//! `connito submission make|verify --protocol sn102` as processes: a shard connito writes is
//! signed, its two commitments printed, and `verify` accepts exactly those and refuses a foreign
//! signature, another hash and a group it does not hold, each with its verdict. The reference's
//! own files are checked in `src/protocol/sn102/fixtures_tests.rs`.

use std::process::Command;

use connito::protocol::sn102::assignment::GroupExperts;
use connito::protocol::sn102::shard::{Shard, ShardDtype, ShardSpec};
use connito::tensors::{StateDict, TensorBlob};

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dsv2/grouped");
const ASSIGNMENT: &str = r#"{"1": [[0, 5], [1, 0], [2, 3]], "2": [[0, 6], [1, 1]]}"#;

fn connito(args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_connito"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

/// A group-0 shard of the fixture model (hidden 32, moe_intermediate 16), f16.
fn shard(dir: &std::path::Path) -> std::path::PathBuf {
    let arch_text = std::fs::read_to_string(format!("{MODEL}/config.json")).unwrap();
    let arch = connito::model::dsv2::DsConfig::from_hf_json(&arch_text).unwrap();
    let spec = ShardSpec::of(
        &arch,
        GroupExperts::parse(ASSIGNMENT, arch.n_routed_experts).unwrap(),
    );
    let mut sd = StateDict::new();
    for (layer, experts) in &spec.experts.layers {
        for e in experts {
            for (part, shape) in [
                ("gate_proj", [16, 32]),
                ("up_proj", [16, 32]),
                ("down_proj", [32, 16]),
            ] {
                let data = (0..512)
                    .map(|i| ((i * 7 + layer * 3 + e) % 64) as f32 / 256.0 - 0.125)
                    .collect();
                sd.insert(
                    connito::model::expert_key(*layer, *e, part),
                    TensorBlob::new(shape.to_vec(), data).unwrap(),
                );
            }
        }
    }
    let bytes = Shard::from_state_dict(&sd, &spec, ShardDtype::F16)
        .unwrap()
        .to_safetensors();
    let path = dir.join("model_expgroup_0.safetensors");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn sn102_make_prints_commitments_that_verify_accepts_and_refuses_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let path = shard(dir.path());
    let assignment = dir.path().join("expert_assignment.json");
    std::fs::write(&assignment, ASSIGNMENT).unwrap();
    let (p, a) = (path.to_str().unwrap(), assignment.to_str().unwrap());
    let (code, made) = connito(&[
        "submission",
        "make",
        "--protocol",
        "sn102",
        "--shard",
        p,
        "--group",
        "0",
        "--version",
        "4200000",
        "--repo",
        "alice/sn102-g0",
        "--revision",
        "abc1234",
        "--dev-key",
        "miner-0",
        "--model",
        MODEL,
        "--assignment",
        a,
        "--json",
    ]);
    assert_eq!(code, 0, "{made}");
    let hash = made["hash"].as_str().unwrap();
    assert_eq!(hash.len(), 48);
    assert_eq!(made["shard"], "model_expgroup_0.safetensors");
    let commit2 = made["commit2"].as_str().unwrap();
    assert_eq!(
        commit2,
        format!(r#"{{"e":0,"h":"{hash}","v":4200000,"r":"alice/sn102-g0","rv":"abc1234"}}"#)
    );
    let commit1 = made["commit1"].as_str().unwrap();
    assert!(
        commit1.starts_with(r#"{"m":""#) && commit1.len() == 94,
        "{commit1}"
    );
    let hotkey = made["hotkey"].as_str().unwrap();
    let verify = |c1: &str, c2: &str, key: &str, assignment: &str| {
        connito(&[
            "submission",
            "verify",
            "--protocol",
            "sn102",
            "--shard",
            p,
            "--commit1",
            c1,
            "--commit2",
            c2,
            "--hotkey",
            key,
            "--model",
            MODEL,
            "--assignment",
            assignment,
            "--json",
        ])
    };
    let (code, v) = verify(commit1, commit2, hotkey, a);
    assert_eq!((code, v["verdict"].as_str()), (0, Some("accepted")), "{v}");
    // Another hotkey's commitments: the signature is not its.
    let bob = connito::submission::Hotkey::dev("bob").address();
    let (code, v) = verify(commit1, commit2, &bob, a);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (2, Some("bad_signature")),
        "{v}"
    );
    // Another hash committed: the signature (of the file's hash) does not cover it.
    let other = commit2.replace(hash, &"0".repeat(48));
    let (code, v) = verify(commit1, &other, hotkey, a);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (2, Some("bad_signature")),
        "{v}"
    );
    // A group whose assignment lacks layer 1's expert 5: the shard holds a foreign expert.
    let narrow = dir.path().join("narrow.json");
    std::fs::write(&narrow, r#"{"1": [[0, 0], [1, 3]], "2": [[0, 6], [1, 1]]}"#).unwrap();
    let (code, v) = verify(commit1, commit2, hotkey, narrow.to_str().unwrap());
    assert_eq!(
        (code, v["verdict"].as_str()),
        (2, Some("unexpected_key")),
        "{v}"
    );
    // The round expects group 1: the commitment names 0.
    let (code, v) = connito(&[
        "submission",
        "verify",
        "--protocol",
        "sn102",
        "--shard",
        p,
        "--commit1",
        commit1,
        "--commit2",
        commit2,
        "--hotkey",
        hotkey,
        "--model",
        MODEL,
        "--assignment",
        a,
        "--group",
        "1",
        "--json",
    ]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (2, Some("wrong_group")),
        "{v}"
    );
    // A commitment over 128 bytes.
    let long = format!(r#"{{"m":"{}"}}"#, "x".repeat(130));
    let (code, v) = verify(&long, commit2, hotkey, a);
    assert_eq!((code, v["verdict"].as_str()), (2, Some("malformed")), "{v}");
}

#[test]
fn connito_profile_commands_without_their_required_flags_say_so() {
    for args in [
        &["submission", "verify", "--shard", "x.safetensors"][..],
        &[
            "submission",
            "make",
            "--shard",
            "x",
            "--group",
            "0",
            "--version",
            "1",
            "--dev-key",
            "m",
        ][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_connito"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            err.contains("is required with --protocol connito"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn model_convert_takes_the_references_shard_to_connito_and_back_to_the_same_hash() {
    let fx = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sn102");
    let dir = tempfile::tempdir().unwrap();
    let (ours, back) = (
        dir.path().join("ours.safetensors"),
        dir.path().join("back.safetensors"),
    );
    let assignment = format!("{fx}/expert_assignment_g0.json");
    let run = |to: &str, input: &str, out: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_connito"))
            .args([
                "model",
                "convert",
                "--to",
                to,
                "--in",
                input,
                "--out",
                out.to_str().unwrap(),
            ])
            .args(["--group", "0", "--model", fx, "--assignment", &assignment])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for (file, dtype) in [("shard_fp16.safetensors", "f16"), ("shard_fp16.pt", "f16")] {
        let printed = run("connito", &format!("{fx}/{file}"), &ours);
        assert!(
            printed.contains("90a518830dd20ef3279c306e5adbbb4b861cbcd40e8c4c7a"),
            "{printed}"
        );
        // connito's shard is canonical f32 of the same values.
        let sd = connito::tensors::decode_canonical(&std::fs::read(&ours).unwrap()).unwrap();
        assert_eq!(sd.len(), 15, "5 experts × gate, up, down");
        let printed = run("sn102", ours.to_str().unwrap(), &back);
        assert!(
            printed.contains("90a518830dd20ef3279c306e5adbbb4b861cbcd40e8c4c7a"),
            "{dtype}: {printed}"
        );
        let shard = Shard::from_safetensors(&std::fs::read(&back).unwrap()).unwrap();
        assert_eq!(
            connito::protocol::sn102::hash::ContentHash::of(&shard).to_hex(),
            "90a518830dd20ef3279c306e5adbbb4b861cbcd40e8c4c7a"
        );
    }
    // A foreign expert is refused with its verdict.
    let out = Command::new(env!("CARGO_BIN_EXE_connito"))
        .args(["model", "convert", "--to", "connito", "--in"])
        .arg(format!("{fx}/shard_fp16_foreign_expert.safetensors"))
        .args([
            "--out",
            ours.to_str().unwrap(),
            "--model",
            fx,
            "--assignment",
            &assignment,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected_key"));
}
