//! What a validator decided about one submission: stored with it, counted by it
//! (`connito_intake_submissions_total{verdict}`), printed in reports.

use serde::{Deserialize, Serialize};

use super::Rejection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Passed every check; it is scored.
    Accepted,
    /// A later commit of content an earlier commit already had (the earliest keeps the credit).
    Copy,
    /// Committed a hash but never a location.
    NoLocation,
    /// The location did not answer in time or with a success.
    FetchFailed,
    /// The manifest (or the shard) is not what the protocol defines.
    Malformed,
    /// The manifest is for another cycle or global model version.
    StaleManifest,
    /// Accepted bytes could not be stored (a validator-side fault).
    StoreFailed,
    /// A validator-side fault while checking.
    InternalError,
    // The shard and manifest checks of `validate_shard` (`Rejection`).
    TooLarge,
    WrongHotkey,
    WrongGroup,
    BadSignature,
    HashMismatch,
    ContentMismatch,
    UnexpectedKey,
    MissingKey,
    WrongShape,
    NonFinite,
    // Screens before scoring (`connito::pol::screen`).
    /// A value beyond `pol.max_abs_weight`, or moved further than `pol.max_delta_ratio`.
    OutOfRange,
    /// Its expert delta is nearly an earlier commit's (this round, same group) or a credited
    /// submission's of the last `rewards.window` rounds.
    NearDuplicate,
    /// The location is not an `http`/`https` URL of a public address.
    BadLocation,
    /// More than `pol.max_candidates` earlier commits were accepted this round.
    OverCapacity,
    /// A file of a format or dtype the profile does not read (sn102: a `.pt` holding anything
    /// but tensors, a dtype other than f16/bf16/f32).
    UnsupportedFormat,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Copy => "copy",
            Self::NoLocation => "no_location",
            Self::FetchFailed => "fetch_failed",
            Self::Malformed => "malformed",
            Self::StaleManifest => "stale_manifest",
            Self::StoreFailed => "store_failed",
            Self::InternalError => "internal_error",
            Self::TooLarge => "too_large",
            Self::WrongHotkey => "wrong_hotkey",
            Self::WrongGroup => "wrong_group",
            Self::BadSignature => "bad_signature",
            Self::HashMismatch => "hash_mismatch",
            Self::ContentMismatch => "content_mismatch",
            Self::UnexpectedKey => "unexpected_key",
            Self::MissingKey => "missing_key",
            Self::WrongShape => "wrong_shape",
            Self::NonFinite => "non_finite",
            Self::OutOfRange => "out_of_range",
            Self::NearDuplicate => "near_duplicate",
            Self::BadLocation => "bad_location",
            Self::OverCapacity => "over_capacity",
            Self::UnsupportedFormat => "unsupported_format",
        }
    }
}

impl Verdict {
    /// Every verdict, in declaration order (for tests, docs and metrics).
    pub const ALL: [Verdict; 23] = [
        Self::Accepted,
        Self::Copy,
        Self::NoLocation,
        Self::FetchFailed,
        Self::Malformed,
        Self::StaleManifest,
        Self::StoreFailed,
        Self::InternalError,
        Self::TooLarge,
        Self::WrongHotkey,
        Self::WrongGroup,
        Self::BadSignature,
        Self::HashMismatch,
        Self::ContentMismatch,
        Self::UnexpectedKey,
        Self::MissingKey,
        Self::WrongShape,
        Self::NonFinite,
        Self::OutOfRange,
        Self::NearDuplicate,
        Self::BadLocation,
        Self::OverCapacity,
        Self::UnsupportedFormat,
    ];

    /// Whether the miner is at fault (the validator's own faults are not held against it).
    pub fn is_miners_fault(self) -> bool {
        !matches!(
            self,
            Self::Accepted | Self::StoreFailed | Self::InternalError | Self::OverCapacity
        )
    }
}

impl From<&Rejection> for Verdict {
    fn from(r: &Rejection) -> Self {
        match r {
            Rejection::TooLarge { .. } => Self::TooLarge,
            Rejection::WrongHotkey => Self::WrongHotkey,
            Rejection::WrongGroup { .. } => Self::WrongGroup,
            Rejection::BadSignature => Self::BadSignature,
            Rejection::HashMismatch => Self::HashMismatch,
            Rejection::Malformed(_) => Self::Malformed,
            Rejection::ContentMismatch => Self::ContentMismatch,
            Rejection::UnexpectedKey(_) => Self::UnexpectedKey,
            Rejection::MissingKey(_) => Self::MissingKey,
            Rejection::WrongShape { .. } => Self::WrongShape,
            Rejection::NonFinite(_) => Self::NonFinite,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_keep_their_labels_and_serde_uses_them() {
        let rows = super::super::validate::every_rejection();
        for r in &rows {
            let v = Verdict::from(r);
            assert_eq!(v.label(), r.label());
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", r.label())
            );
        }
        assert_eq!(
            serde_json::from_str::<Verdict>("\"accepted\"").unwrap(),
            Verdict::Accepted
        );
        let labels: std::collections::BTreeSet<&str> =
            Verdict::ALL.iter().map(|v| v.label()).collect();
        assert_eq!(labels.len(), Verdict::ALL.len(), "labels are distinct");
        for v in Verdict::ALL {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.label()));
        }
    }

    #[test]
    fn the_readme_documents_every_verdict() {
        let readme = include_str!("../../README.md");
        for v in Verdict::ALL {
            assert!(
                readme.contains(&format!("| `{}` |", v.label())),
                "README's verdict table lacks {}",
                v.label()
            );
        }
    }
}
