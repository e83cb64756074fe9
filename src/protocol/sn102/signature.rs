//! The live SN102 hash signature: the hotkey's sr25519 signature (Substrate's `substrate`
//! context) of the 48 ASCII characters of the hex content hash, carried as base64url without
//! padding (86 characters). Verified against the hotkey whose commitment carries it; as the
//! reference's `Keypair.verify`, a signature of the message wrapped in `<Bytes>..</Bytes>` (what
//! browser wallets sign) is accepted too, and so are padding and the standard base64 alphabet
//! (Python's `urlsafe_b64decode` takes them). (Reference: `connito/shared/schema.py`, `sign_message`,
//! `verify_message`.)

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};

/// base64url that, as Python's decoder, ignores set bits past the last whole byte.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
);

use super::hash::ContentHash;
use crate::submission::keys::{Hotkey, verify};

/// Characters of an encoded signature.
pub const SIGNATURE_CHARS: usize = 86;

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature is not base64url without padding: {0}")]
    NotBase64Url(String),
    #[error("signature decodes to {0} bytes, not 64")]
    Length(usize),
    #[error("signature is not the hotkey's signature of the hash")]
    Mismatch,
}

/// The hotkey's signature of `hash`, encoded as committed.
pub fn sign_hash(key: &Hotkey, hash: &ContentHash) -> String {
    URL_SAFE_NO_PAD.encode(key.sign(hash.to_hex().as_bytes()))
}

/// Checks `signature` (as committed) is `hotkey`'s signature of `hash`.
pub fn verify_hash(
    hotkey: &[u8; 32],
    hash: &ContentHash,
    signature: &str,
) -> Result<(), SignatureError> {
    // The reference decodes with Python's `urlsafe_b64decode` after padding: padding and the
    // standard alphabet's `+` and `/` decode there too.
    let bare = signature
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    let bytes = LENIENT
        .decode(bare)
        .map_err(|e| SignatureError::NotBase64Url(e.to_string()))?;
    let sig: [u8; 64] = (bytes.as_slice())
        .try_into()
        .map_err(|_| SignatureError::Length(bytes.len()))?;
    let msg = hash.to_hex();
    let wrapped = format!("<Bytes>{msg}</Bytes>");
    if verify(hotkey, msg.as_bytes(), &sig) || verify(hotkey, wrapped.as_bytes(), &sig) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}
