//! Both profiles through the trait, as a miner and a validator use it: a submission made,
//! committed, observed, claimed, proved and decoded; and each refusal with its verdict.

use super::*;
use crate::chain::CommitmentRecord;
use crate::model::group_shapes;
use crate::protocol::connito::Connito;
use crate::protocol::sn102::Sn102;
use crate::tensors::TensorBlob;

fn model() -> ModelConfig {
    ModelConfig::tiny()
}

fn clock() -> PhaseClock {
    PhaseClock::new(crate::phase::PhaseLengths::localnet()).unwrap()
}

fn sn102(hub: &str) -> Sn102 {
    Sn102(Sn102Settings {
        hub: hub.into(),
        repo: "alice/co".into(),
        whitelist: BTreeSet::new(),
        version_range_cycles: 3,
    })
}

/// The group's tensors with values exact in f16.
fn group_sd(layout: &GroupLayout) -> StateDict {
    layout
        .shapes()
        .into_iter()
        .enumerate()
        .map(|(i, (k, shape))| {
            let n: usize = shape.iter().product();
            let data = (0..n).map(|j| ((i + j) % 17) as f32 / 16.0 - 0.5).collect();
            (k, TensorBlob::new(shape, data).unwrap())
        })
        .collect()
}

#[test]
fn layout_shapes_are_the_models_group_shapes() {
    let m = model();
    for g in 0..m.n_groups as u16 {
        assert_eq!(
            GroupLayout::of(&m, g, None).shapes(),
            group_shapes(&m, g),
            "group {g}"
        );
    }
}

/// A miner's submission through `w`, the chain records a validator reads, the observation.
fn submit(w: &dyn Wire, key: &Hotkey, cycle: u64) -> (CommitObs, StateDict, Vec<u8>) {
    let c = clock();
    let layout = GroupLayout::of(&model(), 1, None);
    let sd = group_sd(&layout);
    let file = w.encode_shard(&sd, &layout).unwrap();
    let content = w.content_hash(&file, &layout).unwrap();
    let binding = Binding {
        hotkey: key.public(),
        group: 1,
        cycle,
        version: 0,
        content,
    };
    let proof = w.sign(key, &binding);
    let location = w.location("http://127.0.0.1:9100", cycle, &binding.content);
    let p = Publication {
        binding,
        proof,
        location,
    };
    let rec = |phase, data| CommitmentRecord {
        uid: 3,
        hotkey: key.public(),
        data,
        block: c.phase_start(cycle, phase),
    };
    let r1 = rec(
        Phase::MinerCommit1,
        w.miner_commitment(Phase::MinerCommit1, &p).unwrap(),
    );
    let r2 = rec(
        Phase::MinerCommit2,
        w.miner_commitment(Phase::MinerCommit2, &p).unwrap(),
    );
    // Block by block through the cycle, every read the profile asks for sees the state at its
    // block: the newest commitment made at or before it.
    let mut obs: Option<CommitObs> = None;
    for b in c.phase_start(cycle, Phase::Train)..c.phase_end(cycle, Phase::Submission) {
        for read in w.commit_reads(&c, b - 1, b) {
            let r = match read.at {
                at if at >= r2.block => &r2,
                at if at >= r1.block => &r1,
                _ => continue,
            };
            if let Some(n) = w.observe(&c, &read, obs.as_ref(), r) {
                obs = Some(n);
            }
        }
    }
    (obs.expect("observed"), sd, file)
}

/// The validator's steps on an observation; the verdict.
fn judge(
    w: &dyn Wire,
    obs: &CommitObs,
    file: &[u8],
    proof_file: Option<&[u8]>,
    cycle: u64,
) -> Result<StateDict, Refused> {
    let layout = GroupLayout::of(&model(), 1, None);
    let claim = w.claim(obs)?;
    let proof = claim
        .proof
        .clone()
        .map(String::into_bytes)
        .or(proof_file.map(<[u8]>::to_vec))
        .unwrap();
    let content = w.check_proof(&proof, &claim, &obs.hotkey, cycle)?;
    w.decode_shard(file, &content, &layout)
}

fn verdict<T>(r: Result<T, Refused>) -> Verdict {
    r.map(|_| Verdict::Accepted).unwrap_or_else(|e| e.verdict)
}

#[test]
fn sn102_submissions_round_trip_and_each_fault_has_its_verdict() {
    let w = sn102("https://huggingface.co");
    let key = Hotkey::dev("miner");
    let (obs, sd, file) = submit(&w, &key, 4);
    assert_eq!(obs.texts.len(), 2, "{obs:?}");
    assert_eq!((obs.group, obs.version), (1, 0));
    let claim = w.claim(&obs).unwrap();
    let Base::Url(base) = &claim.base else {
        panic!("{claim:?}")
    };
    assert!(
        base.starts_with("https://huggingface.co/alice/co/resolve/"),
        "{base}"
    );
    assert_eq!(
        judge(&w, &obs, &file, None, 4).unwrap(),
        sd,
        "f16-exact values come back"
    );

    let foreign = CommitObs {
        hotkey: Hotkey::dev("other").public(),
        ..obs.clone()
    };
    let mut flipped = file.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let no_c2 = CommitObs {
        texts: obs.texts[..1].to_vec(),
        ..obs.clone()
    };
    let bad_c1 = CommitObs {
        texts: vec!["{\"m\":".into(), obs.texts[1].clone()],
        ..obs.clone()
    };
    let bad_rv = CommitObs {
        texts: vec![
            obs.texts[0].clone(),
            obs.texts[1].replace("\"rv\":\"", "\"rv\":\".."),
        ],
        ..obs.clone()
    };
    let rows: [(&CommitObs, &[u8], Verdict); 5] = [
        (&foreign, &file, Verdict::BadSignature),
        (&obs, &flipped, Verdict::HashMismatch),
        (&no_c2, &file, Verdict::NoLocation),
        (&bad_c1, &file, Verdict::Malformed),
        (&bad_rv, &file, Verdict::BadLocation),
    ];
    for (i, (o, f, want)) in rows.into_iter().enumerate() {
        assert_eq!(verdict(judge(&w, o, f, None, 4)), want, "row {i}");
    }
    // Another group's shard: its experts are not this group's.
    let other = GroupLayout::of(&model(), 0, None);
    let file0 = w.encode_shard(&group_sd(&other), &other).unwrap();
    let c0 = w.content_hash(&file0, &other).unwrap();
    let layout = GroupLayout::of(&model(), 1, None);
    assert_eq!(
        verdict(w.decode_shard(&file0, &c0, &layout)),
        Verdict::UnexpectedKey
    );
}

#[test]
fn sn102_reads_at_the_block_after_each_commit_phase() {
    let (w, c) = (sn102("https://huggingface.co"), clock());
    let cycle = 5;
    let all = w.commit_reads(
        &c,
        c.phase_start(cycle, Phase::Distribute),
        c.phase_end(cycle, Phase::Merge),
    );
    let want = [Phase::MinerCommit1, Phase::MinerCommit2].map(|p| CommitRead {
        at: c.phase_end(cycle, p) - 1,
        cycle,
        after: Some(p),
    });
    assert_eq!(all, want);
    // Block by block, each read comes exactly once.
    let mut seen = vec![];
    let start = c.phase_start(cycle, Phase::Distribute);
    for b in start..c.phase_end(cycle, Phase::Merge) {
        seen.extend(w.commit_reads(&c, b, b + 1));
    }
    assert_eq!(seen, want);
    // A first read of a commitment without a signature is no submission.
    let read = want[0];
    let r = CommitmentRecord {
        uid: 1,
        hotkey: [1; 32],
        data: br#"{"h":"x","v":1,"e":0,"s":9}"#.to_vec(),
        block: 1,
    };
    assert_eq!(w.observe(&c, &read, None, &r), None);
    let junk = CommitmentRecord {
        data: b"not json".to_vec(),
        ..r
    };
    assert!(
        w.observe(&c, &read, None, &junk).is_some(),
        "kept, to be refused as malformed"
    );
}

#[test]
fn sn102_file_hub_is_a_folder_never_a_miners_path() {
    let w = sn102("file:///srv/hub");
    let key = Hotkey::dev("miner");
    let (obs, _, _) = submit(&w, &key, 2);
    let Base::Dir(d) = w.claim(&obs).unwrap().base else {
        panic!()
    };
    assert!(d.starts_with("/srv/hub/alice/co/resolve/"), "{d:?}");
    let up = w
        .upload_path("alice/co/resolve/abc/model_expgroup_1.safetensors")
        .unwrap();
    assert_eq!(
        up,
        std::path::PathBuf::from("/srv/hub/alice/co/resolve/abc/model_expgroup_1.safetensors")
    );
    let dotted = CommitObs {
        texts: vec![
            obs.texts[0].clone(),
            obs.texts[1].replace("alice/co", "../co"),
        ],
        ..obs
    };
    assert_eq!(verdict(w.claim(&dotted)), Verdict::BadLocation);
    assert_eq!(sn102("https://h").upload_path("a/b"), None);
}

#[test]
fn connito_submissions_round_trip_through_the_trait() {
    let w = Connito;
    let key = Hotkey::dev("miner");
    let (obs, sd, file) = submit(&w, &key, 4);
    assert!(obs.texts.is_empty());
    assert_eq!(obs.url.as_deref(), Some("http://127.0.0.1:9100/s/4"));
    let claim = w.claim(&obs).unwrap();
    assert_eq!(claim.proof, None);
    assert_eq!(w.proof_file(), Some("manifest"));
    let layout = GroupLayout::of(&model(), 1, None);
    let binding = Binding {
        hotkey: key.public(),
        group: 1,
        cycle: 4,
        version: 0,
        content: w.content_hash(&file, &layout).unwrap(),
    };
    let manifest = w.sign(&key, &binding).into_bytes();
    assert_eq!(judge(&w, &obs, &file, Some(&manifest), 4).unwrap(), sd);
    let rows: [(Vec<u8>, u64, &[u8], Verdict); 4] = [
        (manifest.clone(), 5, &file, Verdict::StaleManifest),
        (
            w.sign(&Hotkey::dev("other"), &binding).into_bytes(),
            4,
            &file,
            Verdict::BadSignature,
        ),
        (
            manifest.clone(),
            4,
            &file[..file.len() - 1],
            Verdict::Malformed,
        ),
        (b"{".to_vec(), 4, &file, Verdict::Malformed),
    ];
    for (i, (m, cycle, f, want)) in rows.into_iter().enumerate() {
        assert_eq!(
            verdict(judge(&w, &obs, f, Some(&m), cycle)),
            want,
            "row {i}"
        );
    }
    let no_url = CommitObs { url: None, ..obs };
    assert_eq!(verdict(w.claim(&no_url)), Verdict::NoLocation);
}

#[test]
fn version_rules_table() {
    let (s, c) = (sn102("https://h"), clock());
    let len = c.cycle_len();
    assert_eq!(s.model_version(&c, None, 0), 0);
    assert_eq!(
        s.model_version(&c, Some(7), 3),
        c.phase_start(7, Phase::MinerCommit1)
    );
    assert_eq!(Connito.model_version(&c, Some(7), 3), 3);
    assert!(
        s.miner_version_ok(1, 999),
        "the newest reference does not gate miners"
    );
    assert!(Connito.miner_version_ok(4, 4) && !Connito.miner_version_ok(3, 4));
    let head = c.phase_start(10, Phase::Train) + 1; // before cycle 10's MinerCommit1
    let max = c.phase_start(9, Phase::MinerCommit1);
    let rows = [
        (max, true),
        (max - 3 * len, true),
        (max - 3 * len - 1, false),
        (max + 1, false),
    ];
    for (v, want) in rows {
        assert_eq!(s.validator_version_ok(&c, v, head), want, "v {v}");
    }
    let in_commit = c.phase_start(10, Phase::MinerCommit1);
    assert!(s.validator_version_ok(&c, in_commit, in_commit));
}
