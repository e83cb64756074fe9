//! The connito profile's [`Wire`]: a miner commits its manifest's binding hash in MinerCommit1
//! and its server's URL in MinerCommit2; a validator reads them while the windows are open
//! (earliest commit first), fetches the signed manifest, checks it binds the committed hash to
//! the committing hotkey, then fetches the canonical f32 shard.

use super::{Commitment, Manifest, SignedManifest};
use crate::chain::CommitmentRecord;
use crate::phase::{Phase, PhaseClock};
use crate::protocol::ProtocolKind;
use crate::protocol::wire::{
    Base, Binding, Claim, CommitRead, CommitmentCodec, ContentHasher, Digest, EncodeError,
    GroupLayout, Location, Publication, ShardCodec, SizeRule, SubmissionSigner, VersionRule, Wire,
    refused,
};
use crate::store::records::CommitObs;
use crate::submission::check::parse_manifest;
use crate::submission::validate::{check_attribution, check_content};
use crate::submission::{Hotkey, Refused, Verdict};
use crate::tensors::{Hash32, StateDict, blake2b_256, canonical_size, encode_safetensors};

/// Group id of a validator's commitment of its global model.
pub const GLOBAL_GROUP: u16 = u16::MAX;

/// connito's own profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connito;

fn hash32(d: &Digest) -> Result<Hash32, Refused> {
    d.as_slice()
        .try_into()
        .map_err(|_| refused(Verdict::Malformed, "a connito hash is 32 bytes"))
}

impl CommitmentCodec for Connito {
    /// One read at `head` for every cycle whose miner commit windows hold a block after `last`.
    fn commit_reads(&self, clock: &PhaseClock, last: u64, head: u64) -> Vec<CommitRead> {
        let from = (last + 1).max(head.saturating_sub(clock.cycle_len()));
        let cycles: std::collections::BTreeSet<u64> = (from..=head)
            .map(|b| clock.position(b))
            .filter(|p| matches!(p.phase, Phase::MinerCommit1 | Phase::MinerCommit2))
            .map(|p| p.cycle)
            .collect();
        cycles
            .into_iter()
            .map(|cycle| CommitRead {
                at: head,
                cycle,
                after: None,
            })
            .collect()
    }

    fn validator_whitelist(&self) -> Option<&std::collections::BTreeSet<[u8; 32]>> {
        None
    }

    /// A hash set during MinerCommit1, then a location set during MinerCommit2 for that same
    /// hash; a validator's model commitment and anything else are ignored.
    fn observe(
        &self,
        clock: &PhaseClock,
        read: &CommitRead,
        prev: Option<&CommitObs>,
        r: &CommitmentRecord,
    ) -> Option<CommitObs> {
        let c = Commitment::from_bytes(&r.data).ok()?;
        if c.group() == GLOBAL_GROUP {
            return None;
        }
        let window = |p| clock.phase_start(read.cycle, p)..clock.phase_end(read.cycle, p);
        match (prev, c.url()) {
            (None, None) if window(Phase::MinerCommit1).contains(&r.block) => Some(CommitObs {
                uid: r.uid,
                hotkey: r.hotkey,
                group: c.group(),
                hash: *c.hash(),
                version: c.version(),
                hash_block: r.block,
                url: None,
                url_block: None,
                texts: vec![],
            }),
            (Some(o), Some(url))
                if window(Phase::MinerCommit2).contains(&r.block)
                    && o.url.is_none()
                    && o.hotkey == r.hotkey
                    // a location for a hash it never committed first is ignored
                    && *c.hash() == o.hash =>
            {
                Some(CommitObs {
                    url: Some(url.to_string()),
                    url_block: Some(r.block),
                    ..o.clone()
                })
            }
            _ => None,
        }
    }

    fn claim(&self, obs: &CommitObs) -> Result<Claim, Refused> {
        let url = obs.url.as_deref().ok_or_else(|| {
            refused(
                Verdict::NoLocation,
                "hash committed but no location in MinerCommit2",
            )
        })?;
        Ok(Claim {
            group: obs.group,
            version: obs.version,
            committed: obs.hash.to_vec(),
            base: Base::Url(url.to_string()),
            proof: None,
        })
    }

    fn location(&self, public_url: &str, cycle: u64, _content: &Digest) -> Location {
        Location::Url(format!("{}/s/{cycle}", public_url.trim_end_matches('/')))
    }

    fn base_url(&self, location: &Location) -> Result<String, EncodeError> {
        match location {
            Location::Url(u) => Ok(u.clone()),
            other => Err(EncodeError::Location(format!("{other:?}"))),
        }
    }

    fn miner_commitment(&self, phase: Phase, p: &Publication) -> Result<Vec<u8>, EncodeError> {
        let b = &p.binding;
        let hash = manifest(b)
            .map_err(|_| EncodeError::Content(b.content.len()))?
            .binding_hash();
        let c = match phase {
            Phase::MinerCommit1 => Commitment::Hash {
                group: b.group,
                hash,
                version: b.version,
            },
            Phase::MinerCommit2 => Commitment::Location {
                group: b.group,
                hash,
                version: b.version,
                url: self.base_url(&p.location)?,
            },
            other => return Err(EncodeError::NoStep(other.name())),
        };
        Ok(c.to_bytes()?)
    }
}

fn manifest(b: &Binding) -> Result<Manifest, Refused> {
    Ok(Manifest {
        hotkey: b.hotkey,
        group: b.group,
        cycle: b.cycle,
        global_version: b.version,
        content_hash: hash32(&b.content)?,
    })
}

impl ContentHasher for Connito {
    fn content_hash(&self, file: &[u8], _layout: &GroupLayout) -> Result<Digest, Refused> {
        Ok(blake2b_256(file).to_vec())
    }
}

impl SubmissionSigner for Connito {
    /// The signed manifest, as JSON.
    fn sign(&self, key: &Hotkey, b: &Binding) -> String {
        let m = manifest(b).expect("a connito binding holds a 32-byte content hash");
        serde_json::to_string(&SignedManifest::sign(m, key)).expect("a manifest serializes")
    }

    fn proof_file(&self) -> Option<&'static str> {
        Some("manifest")
    }

    /// The manifest parses, is for this cycle and the claimed version, names the hotkey and
    /// group, is signed by the hotkey, and its binding hash is the one committed.
    fn check_proof(
        &self,
        proof: &[u8],
        claim: &Claim,
        hotkey: &[u8; 32],
        cycle: u64,
    ) -> Result<Digest, Refused> {
        let signed = parse_manifest(proof)?;
        let m = &signed.manifest;
        if m.cycle != cycle {
            let why = format!("manifest is for cycle {}, the round is {cycle}", m.cycle);
            return Err(refused(Verdict::StaleManifest, why));
        }
        if m.global_version != claim.version {
            let why = format!(
                "manifest trained from global version {}, the round's is {}",
                m.global_version, claim.version
            );
            return Err(refused(Verdict::StaleManifest, why));
        }
        check_attribution(&signed, &hash32(&claim.committed)?, hotkey, claim.group)
            .map_err(|r| refused(Verdict::from(&r), &r))?;
        Ok(m.content_hash.to_vec())
    }
}

impl ShardCodec for Connito {
    fn shard_file(&self, _group: u16) -> String {
        "shard".into()
    }

    fn shard_size(&self, layout: &GroupLayout) -> SizeRule {
        SizeRule::Exactly(canonical_size(&layout.shapes()))
    }

    /// The canonical file of whatever `sd` holds: checking is the validator's (localnet's
    /// adversaries publish what it must refuse).
    fn encode_shard(&self, sd: &StateDict, _layout: &GroupLayout) -> Result<Vec<u8>, Refused> {
        Ok(encode_safetensors(sd))
    }

    /// Exactly the canonical size, then the canonical encoding, the content hash, keys, shapes
    /// and finite values ([`check_content`]).
    fn decode_shard(
        &self,
        file: &[u8],
        content: &Digest,
        layout: &GroupLayout,
    ) -> Result<StateDict, Refused> {
        let shapes = layout.shapes();
        let want = canonical_size(&shapes);
        if file.len() != want {
            let why = format!(
                "shard is {} bytes; group {}'s canonical encoding is {want}",
                file.len(),
                layout.group
            );
            return Err(refused(Verdict::Malformed, why));
        }
        check_content(file, &hash32(content)?, &shapes).map_err(|r| refused(Verdict::from(&r), &r))
    }
}

impl VersionRule for Connito {
    fn model_version(&self, _clock: &PhaseClock, _cycle: Option<u64>, counter: u64) -> u64 {
        counter
    }

    fn miner_version_ok(&self, committed: u64, round: u64) -> bool {
        committed == round
    }

    fn validator_version_ok(&self, _clock: &PhaseClock, _v: u64, _head: u64) -> bool {
        true
    }
}

impl Wire for Connito {
    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Connito
    }

    fn upload_path(&self, _served: &str) -> Option<std::path::PathBuf> {
        None
    }

    fn serves_axon(&self) -> bool {
        false
    }
}
