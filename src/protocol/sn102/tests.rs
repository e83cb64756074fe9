//! Table tests of the sn102 codecs on hand-made values; `fixtures_tests.rs` checks them against
//! the reference's own outputs (tests/fixtures/sn102, made by scripts/sn102_fixtures.py).

use super::assignment::{AssignmentError, GroupExperts};
use super::commitment::{Commit, CommitmentError, HashCommit, RawCommit};
use super::hash::{ContentHash, HashParseError};
use super::shard::{ExpertTensor, RawTensor, Shard, ShardDtype, ShardError, ShardSpec, parse_key};
use super::signature::{SignatureError, sign_hash, verify_hash};
use crate::submission::keys::Hotkey;
use crate::tensors::{StateDict, TensorBlob};

fn hash() -> ContentHash {
    ContentHash([0xab; 24])
}

#[test]
fn commitments_are_compact_json_in_the_declared_key_order() {
    let h = "ab".repeat(24);
    let hc = |repo: &str| HashCommit {
        group: 0,
        hash: hash(),
        version: 4_200_000,
        repo: repo.into(),
        revision: "abc1234".into(),
    };
    let cases = [
        (
            Commit::MinerSignature("SIG".into()),
            r#"{"m":"SIG"}"#.to_string(),
        ),
        (
            Commit::MinerHash(hc("alice/sn102-g0")),
            format!(r#"{{"e":0,"h":"{h}","v":4200000,"r":"alice/sn102-g0","rv":"abc1234"}}"#),
        ),
        (
            Commit::ValidatorHeartbeat {
                hash: hash(),
                version: 7,
                group: 1,
                seed: 12345,
            },
            format!(r#"{{"h":"{h}","v":7,"e":1,"s":12345}}"#),
        ),
        (
            Commit::ValidatorHash(hc("val/m")),
            format!(r#"{{"h":"{h}","v":4200000,"e":0,"r":"val/m","rv":"abc1234"}}"#),
        ),
    ];
    for (commit, want) in cases {
        assert_eq!(commit.encode().unwrap(), want);
    }
    // A 32-character repo fits exactly in 128 bytes at a 7-digit version; 33 characters do not.
    let repo32 = "o".repeat(15) + "/" + &"r".repeat(16);
    assert_eq!(Commit::MinerHash(hc(&repo32)).encode().unwrap().len(), 128);
    let e = Commit::MinerHash(hc(&(repo32.clone() + "x")))
        .encode()
        .unwrap_err();
    assert!(matches!(e, CommitmentError::RepoTooLong(_)), "{e}");
    let long = HashCommit {
        version: u64::MAX,
        ..hc(&repo32)
    };
    assert!(matches!(
        Commit::MinerHash(long).encode(),
        Err(CommitmentError::TooLong(_))
    ));
}

#[test]
fn commitments_read_back_and_bad_ones_are_refused_with_their_reason() {
    let h = "ab".repeat(24);
    let good = format!(r#"{{"e":0,"h":"{h}","v":5,"r":"a/b","rv":"abc1234","zz":[1]}}"#);
    let c = RawCommit::parse(&good).unwrap();
    assert_eq!(c.hash_commit().unwrap().hash, hash());
    assert_eq!(c.signature(), Err(CommitmentError::Missing("m")));
    let cases: &[(&str, CommitmentError)] = &[
        ("not json", CommitmentError::NotJson(String::new())),
        ("[1,2]", CommitmentError::NotAnObject),
        (
            r#"{"e":"zero"}"#,
            CommitmentError::WrongType {
                key: "e",
                expected: "a non-negative integer",
            },
        ),
        (
            r#"{"e":-1}"#,
            CommitmentError::WrongType {
                key: "e",
                expected: "a non-negative integer",
            },
        ),
        (
            r#"{"v":1.5}"#,
            CommitmentError::WrongType {
                key: "v",
                expected: "a non-negative integer",
            },
        ),
        (
            r#"{"m":7}"#,
            CommitmentError::WrongType {
                key: "m",
                expected: "a string",
            },
        ),
    ];
    for (text, want) in cases {
        let got = RawCommit::parse(text).unwrap_err();
        let same = match (&got, want) {
            (CommitmentError::NotJson(_), CommitmentError::NotJson(_)) => true,
            _ => &got == want,
        };
        assert!(same, "{text}: {got}");
    }
    let over = format!(r#"{{"r":"{}"}}"#, "x".repeat(125));
    assert_eq!(RawCommit::parse(&over), Err(CommitmentError::TooLong(133)));
    // What a Commit2 needs: each key, and a hash of the committed form.
    let missing = RawCommit::parse(&format!(r#"{{"e":0,"h":"{h}","v":5,"r":"a/b"}}"#)).unwrap();
    assert_eq!(missing.hash_commit(), Err(CommitmentError::Missing("rv")));
    let upper = RawCommit::parse(&format!(
        r#"{{"e":0,"h":"{}","v":5,"r":"a","rv":"b"}}"#,
        h.to_uppercase()
    ))
    .unwrap();
    assert_eq!(
        upper.hash_commit(),
        Err(CommitmentError::Hash(HashParseError::NotLowerHex('A')))
    );
}

#[test]
fn a_hash_is_48_lowercase_hex_characters() {
    let h = hash();
    assert_eq!(ContentHash::parse(&h.to_hex()), Ok(h));
    assert_eq!(ContentHash::parse("ab"), Err(HashParseError::Length(2)));
    assert_eq!(
        ContentHash::parse(&"g".repeat(48)),
        Err(HashParseError::NotLowerHex('g'))
    );
}

#[test]
fn the_hotkey_signs_the_hex_hash_and_no_other_key_or_hash_verifies() {
    let (alice, bob) = (Hotkey::dev("alice"), Hotkey::dev("bob"));
    let sig = sign_hash(&alice, &hash());
    assert_eq!(sig.len(), 86);
    assert!(!sig.contains('='));
    verify_hash(&alice.public(), &hash(), &sig).unwrap();
    // The reference pads before decoding: a padded signature is the same signature.
    verify_hash(&alice.public(), &hash(), &format!("{sig}==")).unwrap();
    assert_eq!(
        verify_hash(&bob.public(), &hash(), &sig),
        Err(SignatureError::Mismatch)
    );
    let other = ContentHash([1; 24]);
    assert_eq!(
        verify_hash(&alice.public(), &other, &sig),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_hash(&alice.public(), &hash(), "AAAA"),
        Err(SignatureError::Length(3))
    );
    assert!(matches!(
        verify_hash(&alice.public(), &hash(), "a*b!"),
        Err(SignatureError::NotBase64Url(_))
    ));
    // A wallet's signature of `<Bytes>hash</Bytes>` is accepted, as the reference's verify does.
    let wrapped = alice.sign(format!("<Bytes>{}</Bytes>", hash().to_hex()).as_bytes());
    use base64::Engine as _;
    let wrapped = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(wrapped);
    verify_hash(&alice.public(), &hash(), &wrapped).unwrap();
}

fn spec() -> ShardSpec {
    let experts = GroupExperts::parse(
        r#"{"1": [[0, 5], [1, 0], [2, 3]], "2": [[0, 6], [1, 1]]}"#,
        8,
    )
    .unwrap();
    ShardSpec {
        hidden: 4,
        moe_intermediate: 2,
        experts,
    }
}

/// connito's tensors of `spec`'s experts, values exact in f16 and bf16 (multiples of 1/8).
fn state_dict(spec: &ShardSpec) -> StateDict {
    let mut sd = StateDict::new();
    let mut n = 0.0;
    for (layer, experts) in &spec.experts.layers {
        for e in experts {
            for (part, shape) in [
                ("gate_proj", [2, 4]),
                ("up_proj", [2, 4]),
                ("down_proj", [4, 2]),
            ] {
                let data = (0..8)
                    .map(|i| {
                        n += 1.0;
                        (n + i as f32) / 8.0 - 3.0
                    })
                    .collect();
                sd.insert(
                    crate::model::expert_key(*layer, *e, part),
                    TensorBlob::new(shape.to_vec(), data).unwrap(),
                );
            }
        }
    }
    sd
}

#[test]
fn a_state_dict_goes_into_a_shard_and_back_losslessly_in_f16_and_bf16() {
    let spec = spec();
    let sd = state_dict(&spec);
    for dtype in [ShardDtype::F16, ShardDtype::BF16] {
        let shard = Shard::from_state_dict(&sd, &spec, dtype).unwrap();
        assert_eq!(shard.len(), 2 * 5);
        let back = Shard::from_safetensors(&shard.to_safetensors()).unwrap();
        assert_eq!(back, shard);
        assert_eq!(ContentHash::of(&back), ContentHash::of(&shard));
        assert_eq!(back.to_state_dict().unwrap(), sd, "{dtype:?}");
    }
    // Gate rows first: row 0 of gate_up is gate_proj's row 0, row 2 is up_proj's row 0.
    let shard = Shard::from_state_dict(&sd, &spec, ShardDtype::F32).unwrap();
    let (_, gu) = shard
        .tensors()
        .find(|(k, _)| k.as_str() == "model.layers.1.mlp.experts.0.gate_up_proj")
        .unwrap();
    let f = |i: usize| f32::from_le_bytes(gu.data[4 * i..4 * i + 4].try_into().unwrap());
    let (gate, up) = (
        &sd[&crate::model::expert_key(1, 0, "gate_proj")],
        &sd[&crate::model::expert_key(1, 0, "up_proj")],
    );
    assert_eq!((f(0), f(8)), (gate.data[0], up.data[0]));
}

#[test]
fn a_shard_holds_exactly_the_groups_experts_shaped_and_finite() {
    let spec = spec();
    let good = Shard::from_state_dict(&state_dict(&spec), &spec, ShardDtype::F16).unwrap();
    type Tensors = Vec<(String, RawTensor)>;
    let edit = |f: &dyn Fn(&mut Tensors)| {
        let mut v: Vec<(String, RawTensor)> = good
            .tensors()
            .map(|(k, t)| (k.clone(), t.clone()))
            .collect();
        f(&mut v);
        Shard::from_tensors(v).unwrap().check(&spec).unwrap_err()
    };
    let t = good.tensors().next().unwrap().1.clone();
    let foreign = edit(&|v| {
        v.push((
            "model.layers.1.mlp.experts.2.down_proj".into(),
            RawTensor {
                shape: vec![4, 2],
                ..t.clone()
            },
        ))
    });
    assert!(matches!(foreign, ShardError::NotInGroup(_)), "{foreign}");
    let odd = edit(&|v| v.push(("model.embed_tokens.weight".into(), t.clone())));
    assert!(matches!(odd, ShardError::UnexpectedTensor(_)), "{odd}");
    let missing = edit(&|v| {
        v.pop();
    });
    assert!(matches!(missing, ShardError::Missing(_)), "{missing}");
    let shape = edit(&|v| {
        v[0].1 = RawTensor {
            shape: vec![2, 4],
            ..v[0].1.clone()
        }
    });
    assert!(matches!(shape, ShardError::Shape { .. }), "{shape}");
    let nan = edit(&|v| {
        v[0].1.data[0] = 0x00;
        v[0].1.data[1] = 0x7e;
    });
    assert!(matches!(nan, ShardError::NotFinite(_)), "{nan}");
    let short = Shard::from_tensors([(
        "x".to_string(),
        RawTensor {
            data: vec![0; 3],
            ..t.clone()
        },
    )])
    .unwrap_err();
    assert!(matches!(short, ShardError::Truncated(_)));
    assert!(matches!(
        Shard::from_safetensors(b"junk"),
        Err(ShardError::Malformed(_))
    ));
}

#[test]
fn shard_keys_name_layer_global_expert_and_tensor() {
    let cases = [
        (
            "model.layers.1.mlp.experts.22.gate_up_proj",
            Some((1, 22, ExpertTensor::GateUp)),
        ),
        (
            "model.layers.26.mlp.experts.0.down_proj",
            Some((26, 0, ExpertTensor::Down)),
        ),
        ("model.layers.1.mlp.experts.22.gate_up_proj.weight", None),
        ("model.layers.1.mlp.experts.22.up_proj", None),
        ("model.layers.01.mlp.experts.2.down_proj", None),
        ("model.layers.1.mlp.shared_experts.down_proj", None),
        ("model.layers.+1.mlp.experts.5.down_proj", None),
        ("model.layers..mlp.experts.5.down_proj", None),
        ("model.layers.1.mlp.experts.1_0.down_proj", None),
        ("model.layers.1.mlp.experts.+0.down_proj", None),
    ];
    for (name, want) in cases {
        assert_eq!(parse_key(name), want, "{name}");
    }
}

#[test]
fn assignments_are_parsed_and_bad_ones_refused() {
    let g = GroupExperts::parse(r#"{"1": [[0, 5], [1, 0]], "2": [[0, 7]]}"#, 8).unwrap();
    assert!(g.contains(1, 5) && g.contains(1, 0) && g.contains(2, 7) && !g.contains(2, 5));
    let cases = [
        (
            r#"{"1": [[0, 8]]}"#,
            AssignmentError::ExpertOutOfRange {
                layer: 1,
                expert: 8,
                n: 8,
            },
        ),
        (
            r#"{"1": [[0, 3], [1, 3]]}"#,
            AssignmentError::Duplicate {
                layer: 1,
                expert: 3,
            },
        ),
        (
            r#"{"one": [[0, 3]]}"#,
            AssignmentError::LayerKey("one".into()),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(GroupExperts::parse(text, 8), Err(want), "{text}");
    }
    assert!(matches!(
        GroupExperts::parse("[]", 8),
        Err(AssignmentError::Format(_))
    ));
    let c = GroupExperts::contiguous([1, 2], 1, 4);
    assert!(c.contains(2, 4) && c.contains(2, 7) && !c.contains(2, 3));
}

#[test]
fn a_state_dict_with_other_shapes_is_refused_not_fused() {
    let spec = spec();
    let mut sd = state_dict(&spec);
    // A transposed gate has the right element count but not the layout.
    let k = crate::model::expert_key(1, 0, "gate_proj");
    sd.get_mut(&k).unwrap().shape = vec![4, 2];
    let e = Shard::from_state_dict(&sd, &spec, ShardDtype::F16).unwrap_err();
    assert!(
        matches!(e, ShardError::Shape { ref name, .. } if *name == k),
        "{e}"
    );
    let mut sd = state_dict(&spec);
    sd.remove(&crate::model::expert_key(2, 6, "up_proj"));
    let e = Shard::from_state_dict(&sd, &spec, ShardDtype::F16).unwrap_err();
    assert!(matches!(e, ShardError::Missing(_)), "{e}");
}

#[test]
fn repo_ids_are_huggingface_ids_so_the_json_is_the_references_bytes() {
    let hc = |repo: &str| {
        Commit::MinerHash(HashCommit {
            group: 0,
            hash: hash(),
            version: 1,
            repo: repo.into(),
            revision: "abc1234".into(),
        })
    };
    assert!(hc("alice/sn102-g0.v_1").encode().is_ok());
    for bad in ["alice", "a/b/c", "/b", "a/", "ālice/x", "a b/c", "a/\"x"] {
        assert_eq!(
            hc(bad).encode(),
            Err(CommitmentError::BadRepo(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn set_bits_past_the_last_byte_are_ignored_as_python_does() {
    use base64::Engine as _;
    let alice = Hotkey::dev("alice");
    let sig = sign_hash(&alice, &hash());
    // 86 characters carry 516 bits for 512: the last character's low 4 bits are padding.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = alphabet.find(sig.chars().last().unwrap()).unwrap();
    let other = alphabet.as_bytes()[(last & !0xf) | (!last & 0xf)] as char;
    let noisy = format!("{}{other}", &sig[..85]);
    assert_ne!(noisy, sig);
    let strict = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&noisy);
    assert!(strict.is_err(), "the strict decoder refuses it");
    verify_hash(&alice.public(), &hash(), &noisy).unwrap();
}
