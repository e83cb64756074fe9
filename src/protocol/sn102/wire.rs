//! The sn102 profile's [`Wire`], with the reference validator's rules: the commitments are read
//! as they stand when MinerCommit1 ends (the signature, `{"m"}`) and when MinerCommit2 ends
//! (`{"e","h","v","r","rv"}`), joined by hotkey; a commitment without a signature at the first
//! read is no submission; the shard is `{hub}/{r}/resolve/{rv}/model_expgroup_{e}.safetensors`;
//! versions are block numbers and are not gated for miners.

use std::path::PathBuf;

use super::commitment::{Commit, HashCommit, RawCommit, check_repo};
use super::hash::{ContentHash, HASH_BYTES};
use super::shard::{Shard, ShardDtype, file_name};
use super::signature::{sign_hash, verify_hash};
use super::verify::{ShardFile, check_file, shard_refusal};
use crate::chain::CommitmentRecord;
use crate::phase::{Phase, PhaseClock};
use crate::protocol::ProtocolKind;
use crate::protocol::wire::{
    Base, Binding, Claim, CommitRead, CommitmentCodec, ContentHasher, Digest, EncodeError,
    GroupLayout, Location, Publication, ShardCodec, SizeRule, Sn102Settings, SubmissionSigner,
    VersionRule, Wire, refused,
};
use crate::store::records::CommitObs;
use crate::submission::{Hotkey, Refused, Verdict};
use crate::tensors::StateDict;

/// Header room a shard file may take besides its tensors (names and offsets; 1 MiB).
const HEADER_ROOM: usize = 1 << 20;
/// Hex characters of a revision a miner commits (the reference's `HF_CHAIN_REVISION_LENGTH`).
pub const REVISION_CHARS: usize = 7;

/// The live subnet's profile, with this node's settings.
#[derive(Debug, Clone)]
pub struct Sn102(pub Sn102Settings);

fn content(d: &Digest) -> Result<ContentHash, Refused> {
    let a: [u8; HASH_BYTES] = d
        .as_slice()
        .try_into()
        .map_err(|_| refused(Verdict::Malformed, "an sn102 hash is 24 bytes"))?;
    Ok(ContentHash(a))
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// A revision as a URL path segment: letters, digits, `.`, `-`, `_`, never `..`.
fn check_revision(rv: &str) -> bool {
    !rv.is_empty()
        && rv.len() <= 64
        && !rv.contains("..")
        && rv
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl CommitmentCodec for Sn102 {
    /// One read of the state at the last block of each of MinerCommit1 and MinerCommit2 (what
    /// the block after the phase sees), when that block is after `last` and at most a cycle
    /// before `head`.
    fn commit_reads(&self, clock: &PhaseClock, last: u64, head: u64) -> Vec<CommitRead> {
        let from = (last + 1).max(head.saturating_sub(clock.cycle_len()));
        let (c0, c1) = (clock.position(from).cycle, clock.position(head).cycle);
        let mut out = vec![];
        for cycle in c0.saturating_sub(1)..=c1 {
            for phase in [Phase::MinerCommit1, Phase::MinerCommit2] {
                // The state after the phase's last block: every commitment made in it.
                let at = clock.phase_end(cycle, phase) - 1;
                if (from..=head).contains(&at) {
                    out.push(CommitRead {
                        at,
                        cycle,
                        after: Some(phase),
                    });
                }
            }
        }
        out.sort();
        out
    }

    fn validator_whitelist(&self) -> Option<&std::collections::BTreeSet<[u8; 32]>> {
        Some(&self.0.whitelist)
    }

    fn observe(
        &self,
        _clock: &PhaseClock,
        read: &CommitRead,
        prev: Option<&CommitObs>,
        r: &CommitmentRecord,
    ) -> Option<CommitObs> {
        let t = text(&r.data);
        match (read.after?, prev) {
            (Phase::MinerCommit1, None) => {
                // Parsed and without a signature: not a submission (the reference skips it);
                // unparsable: kept, so its verdict says why.
                if RawCommit::parse(&t).is_ok_and(|c| c.signature().is_err()) {
                    return None;
                }
                Some(CommitObs {
                    uid: r.uid,
                    hotkey: r.hotkey,
                    group: u16::MAX,
                    hash: [0; 32],
                    version: 0,
                    hash_block: r.block,
                    url: None,
                    url_block: None,
                    texts: vec![t],
                })
            }
            // A second commitment since the first read (the same block is the same one).
            (Phase::MinerCommit2, Some(o))
                if o.texts.len() == 1 && o.hotkey == r.hotkey && r.block != o.hash_block =>
            {
                let parsed = RawCommit::parse(&t).ok().and_then(|c| c.hash_commit().ok());
                let mut n = o.clone();
                if let Some(c) = parsed {
                    n.group = u16::try_from(c.group).unwrap_or(u16::MAX);
                    n.version = c.version;
                }
                n.url_block = Some(r.block);
                n.texts.push(t);
                Some(n)
            }
            _ => None,
        }
    }

    fn claim(&self, obs: &CommitObs) -> Result<Claim, Refused> {
        let malformed = |which: &str, e: &dyn std::fmt::Display| {
            refused(Verdict::Malformed, format!("{which}: {e}"))
        };
        let c1 = obs.texts.first().map(String::as_str).unwrap_or_default();
        let c1 = RawCommit::parse(c1).map_err(|e| malformed("commit1", &e))?;
        let signature = c1.signature().map_err(|e| malformed("commit1", &e))?;
        let c2 = obs.texts.get(1).ok_or_else(|| {
            refused(
                Verdict::NoLocation,
                "signature committed but no hash commitment after MinerCommit2",
            )
        })?;
        let c2 = RawCommit::parse(c2).map_err(|e| malformed("commit2", &e))?;
        let HashCommit {
            group,
            hash,
            version,
            repo,
            revision,
        } = c2.hash_commit().map_err(|e| malformed("commit2", &e))?;
        let group = u16::try_from(group)
            .map_err(|_| refused(Verdict::WrongGroup, format!("group {group} does not exist")))?;
        check_repo(&repo).map_err(|e| refused(Verdict::BadLocation, e))?;
        if !check_revision(&revision) {
            let why = format!("revision {revision:?} is not a revision id");
            return Err(refused(Verdict::BadLocation, why));
        }
        let base = match self.0.hub.strip_prefix("file://") {
            Some(dir) => Base::Dir(
                PathBuf::from(dir)
                    .join(&repo)
                    .join("resolve")
                    .join(&revision),
            ),
            None => Base::Url(
                self.base_url(&Location::Hub { repo, revision })
                    .expect("a hub location"),
            ),
        };
        Ok(Claim {
            group,
            version,
            committed: hash.0.to_vec(),
            base,
            proof: Some(signature.to_string()),
        })
    }

    /// This node's repo, at the first 7 hex characters of the content hash (until the Hub
    /// issue: the revision of a commit on the Hub).
    fn location(&self, _public_url: &str, _cycle: u64, content: &Digest) -> Location {
        Location::Hub {
            repo: self.0.repo.clone(),
            revision: hex::encode(content)[..REVISION_CHARS].to_string(),
        }
    }

    fn base_url(&self, location: &Location) -> Result<String, EncodeError> {
        match location {
            Location::Hub { repo, revision } => Ok(format!(
                "{}/{repo}/resolve/{revision}",
                self.0.hub.trim_end_matches('/')
            )),
            other => Err(EncodeError::Location(format!("{other:?}"))),
        }
    }

    fn miner_commitment(&self, phase: Phase, p: &Publication) -> Result<Vec<u8>, EncodeError> {
        let c = match phase {
            Phase::MinerCommit1 => Commit::MinerSignature(p.proof.clone()),
            Phase::MinerCommit2 => {
                let Location::Hub { repo, revision } = &p.location else {
                    return Err(EncodeError::Location(format!("{:?}", p.location)));
                };
                let hash = content(&p.binding.content)
                    .map_err(|_| EncodeError::Content(p.binding.content.len()))?;
                Commit::MinerHash(HashCommit {
                    group: p.binding.group.into(),
                    hash,
                    version: p.binding.version,
                    repo: repo.clone(),
                    revision: revision.clone(),
                })
            }
            other => return Err(EncodeError::NoStep(other.name())),
        };
        Ok(c.encode()?.into_bytes())
    }
}

impl ContentHasher for Sn102 {
    fn content_hash(&self, file: &[u8], _layout: &GroupLayout) -> Result<Digest, Refused> {
        let shard = Shard::from_safetensors(file).map_err(shard_refusal)?;
        Ok(ContentHash::of(&shard).0.to_vec())
    }
}

impl SubmissionSigner for Sn102 {
    fn sign(&self, key: &Hotkey, b: &Binding) -> String {
        sign_hash(
            key,
            &content(&b.content).expect("an sn102 binding holds a 24-byte hash"),
        )
    }

    fn proof_file(&self) -> Option<&'static str> {
        None
    }

    /// The committed signature is the hotkey's of the committed hash.
    fn check_proof(
        &self,
        proof: &[u8],
        claim: &Claim,
        hotkey: &[u8; 32],
        _cycle: u64,
    ) -> Result<Digest, Refused> {
        let hash = content(&claim.committed)?;
        verify_hash(hotkey, &hash, &text(proof)).map_err(|e| refused(Verdict::BadSignature, e))?;
        Ok(claim.committed.clone())
    }
}

impl ShardCodec for Sn102 {
    fn shard_file(&self, group: u16) -> String {
        file_name(group.into())
    }

    /// At most the f32 size of the group's tensors and a header.
    fn shard_size(&self, layout: &GroupLayout) -> SizeRule {
        let floats: usize = layout
            .shapes()
            .values()
            .map(|s| s.iter().product::<usize>())
            .sum();
        SizeRule::AtMost(floats * 4 + HEADER_ROOM)
    }

    fn encode_shard(&self, sd: &StateDict, layout: &GroupLayout) -> Result<Vec<u8>, Refused> {
        let shard =
            Shard::from_state_dict(sd, &layout.spec, ShardDtype::F16).map_err(shard_refusal)?;
        Ok(shard.to_safetensors())
    }

    /// The reference's order: the file decodes, hashes to the committed hash, and holds
    /// exactly the group's experts, shaped and finite.
    fn decode_shard(
        &self,
        file: &[u8],
        committed: &Digest,
        layout: &GroupLayout,
    ) -> Result<StateDict, Refused> {
        let want = content(committed)?;
        let (shard, _) = check_file(
            ShardFile::Safetensors(file),
            &want,
            &layout.spec,
            usize::MAX,
        )?;
        shard.to_state_dict().map_err(shard_refusal)
    }
}

impl VersionRule for Sn102 {
    /// The first block of MinerCommit1 of the cycle whose round made the model; 0 for genesis.
    fn model_version(&self, clock: &PhaseClock, cycle: Option<u64>, _counter: u64) -> u64 {
        cycle.map_or(0, |c| clock.phase_start(c, Phase::MinerCommit1))
    }

    /// The newest reference dropped the version gate for miners' submissions.
    fn miner_version_ok(&self, _committed: u64, _round: u64) -> bool {
        true
    }

    /// The reference's window: from `version_range_cycles` cycles before the start of the most
    /// recent MinerCommit1 up to it.
    fn validator_version_ok(&self, clock: &PhaseClock, v: u64, head: u64) -> bool {
        let pos = clock.position(head);
        let this = clock.phase_start(pos.cycle, Phase::MinerCommit1);
        let max = match head >= this {
            true => this,
            false => clock.phase_start(pos.cycle.saturating_sub(1), Phase::MinerCommit1),
        };
        let min = max.saturating_sub(clock.cycle_len() * self.0.version_range_cycles);
        (min..=max).contains(&v)
    }
}

impl Wire for Sn102 {
    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Sn102
    }

    fn upload_path(&self, served: &str) -> Option<PathBuf> {
        let dir = self.0.hub.strip_prefix("file://")?;
        Some(PathBuf::from(dir).join(served))
    }

    fn serves_axon(&self) -> bool {
        true
    }
}
