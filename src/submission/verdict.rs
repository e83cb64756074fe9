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
        }
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
    }
}
