//! Bittensor wallets on disk: `<path>/<name>/hotkeys/<hotkey>` (a JSON keyfile, mode 0600) and
//! `<path>/<name>/hotkeys/<hotkey>pub.txt`, as the `bittensor` Python package and `btcli` write them.
//!
//! Keys come from a BIP-39 mnemonic the way Substrate derives them (`substrate-bip39`): the
//! mnemonic's *entropy* (not the BIP-39 seed) is stretched with PBKDF2-HMAC-SHA512, salt
//! `"mnemonic" ++ password`, 2048 rounds; the first 32 bytes are the sr25519 mini secret key
//! (`secretSeed`). Randomness is an argument (`entropy`), so this module stays deterministic.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::submission::Hotkey;

/// Where a wallet lives when `--wallet.path` is not given (as in the bittensor tools).
pub const DEFAULT_WALLET_PATH: &str = "~/.bittensor/wallets";

/// `cryptoType` of sr25519 keys in bittensor keyfiles.
const CRYPTO_SR25519: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("no hotkey file at {0} (make one with `connito wallet new`)")]
    Missing(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0}: the keyfile is encrypted; connito reads unencrypted hotkeys (as the bittensor tools write them)"
    )]
    Encrypted(PathBuf),
    #[error("{path}: not a keyfile: {why}")]
    BadKeyfile { path: PathBuf, why: String },
    #[error("{path}: ss58Address {stored} does not match the key's address {derived}")]
    AddressMismatch {
        path: PathBuf,
        stored: String,
        derived: String,
    },
    #[error("{0} exists (pass --overwrite to replace it)")]
    Exists(PathBuf),
    #[error("invalid mnemonic: {0}")]
    Mnemonic(String),
    #[error("invalid wallet or hotkey name {0:?}: use letters, digits, '-', '_' and '.'")]
    BadName(String),
}

/// A wallet's location: `--wallet.path`, `--wallet.name`, `--wallet.hotkey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletSpec {
    pub path: String,
    pub name: String,
    pub hotkey: String,
}

impl WalletSpec {
    /// The hotkey keyfile, with a leading `~` expanded from `home`.
    pub fn hotkey_file(&self, home: Option<&Path>) -> Result<PathBuf, WalletError> {
        for n in [&self.name, &self.hotkey] {
            let ok = !n.is_empty()
                && n != "."
                && n != ".."
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(WalletError::BadName(n.clone()));
            }
        }
        Ok(expand_home(&self.path, home)
            .join(&self.name)
            .join("hotkeys")
            .join(&self.hotkey))
    }
}

/// `~` or `~/...` expanded from `home`; anything else unchanged.
pub fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix('~'), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => {
            h.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

/// A 12-word (16 bytes of entropy) or 24-word (32 bytes) English mnemonic.
pub fn mnemonic_from_entropy(entropy: &[u8]) -> Result<String, WalletError> {
    bip39::Mnemonic::from_entropy(entropy)
        .map(|m| m.to_string())
        .map_err(|e| WalletError::Mnemonic(e.to_string()))
}

/// The sr25519 mini secret key of a mnemonic (Substrate's derivation, empty password as the
/// bittensor tools use).
pub fn seed_from_mnemonic(phrase: &str) -> Result<[u8; 32], WalletError> {
    let m = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, phrase.trim())
        .map_err(|e| WalletError::Mnemonic(e.to_string()))?;
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(&m.to_entropy(), b"mnemonic", 2048, &mut out);
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&out[..32]);
    Ok(seed)
}

/// Substrate's development phrase; `//Alice` and friends are hard derivations of it.
pub const DEV_PHRASE: &str =
    "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

/// The key of a Substrate development URI `//Name` (`//Alice`, `//Bob`, ...): a hard derivation
/// of [`DEV_PHRASE`] by the SCALE-encoded name. For local networks only — anyone can derive it.
pub fn dev_key(uri: &str) -> Result<Hotkey, WalletError> {
    use parity_scale_codec::Encode as _;
    use schnorrkel::{ExpansionMode, MiniSecretKey, derive::ChainCode};
    let name = uri
        .strip_prefix("//")
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| WalletError::Mnemonic("a dev key is //Name (e.g. //Alice)".into()))?;
    let root = MiniSecretKey::from_bytes(&seed_from_mnemonic(DEV_PHRASE)?)
        .expect("32 bytes")
        .expand(ExpansionMode::Ed25519);
    let encoded = name.encode();
    let mut code = [0u8; 32];
    if encoded.len() > 32 {
        code = crate::tensors::blake2b_256(&encoded);
    } else {
        code[..encoded.len()].copy_from_slice(&encoded);
    }
    let (mini, _) = root.hard_derive_mini_secret_key(Some(ChainCode(code)), b"");
    Ok(Hotkey::from_seed(&mini.to_bytes()))
}

/// The JSON of a bittensor keyfile (field names as the bittensor tools write them). Its `Debug`
/// shows the address only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Keyfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_phrase: Option<String>,
    pub secret_seed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    pub public_key: String,
    pub account_id: String,
    pub ss58_address: String,
    #[serde(default = "sr25519")]
    pub crypto_type: u8,
}

impl std::fmt::Debug for Keyfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyfile")
            .field("ss58_address", &self.ss58_address)
            .finish_non_exhaustive()
    }
}

fn sr25519() -> u8 {
    CRYPTO_SR25519
}

/// The public half (`<hotkey>pub.txt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyfile {
    pub public_key: String,
    pub account_id: String,
    pub ss58_address: String,
    pub crypto_type: u8,
}

/// A hotkey and the phrase it came from (if any).
pub struct NewKey {
    pub hotkey: Hotkey,
    pub phrase: String,
    pub keyfile: Keyfile,
}

/// Makes a key from `entropy` (16 or 32 bytes): its mnemonic, key and keyfile.
pub fn new_key(entropy: &[u8]) -> Result<NewKey, WalletError> {
    let phrase = mnemonic_from_entropy(entropy)?;
    let seed = seed_from_mnemonic(&phrase)?;
    let hotkey = Hotkey::from_seed(&seed);
    let public = format!("0x{}", hex::encode(hotkey.public()));
    let keyfile = Keyfile {
        secret_phrase: Some(phrase.clone()),
        secret_seed: Some(format!("0x{}", hex::encode(seed))),
        private_key: Some(format!("0x{}", hex::encode(hotkey.secret_bytes()))),
        public_key: public.clone(),
        account_id: public,
        ss58_address: hotkey.address(),
        crypto_type: CRYPTO_SR25519,
    };
    Ok(NewKey {
        hotkey,
        phrase,
        keyfile,
    })
}

fn bad(path: &Path, why: impl Into<String>) -> WalletError {
    WalletError::BadKeyfile {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn hex32(path: &Path, field: &str, s: &str) -> Result<[u8; 32], WalletError> {
    let bytes =
        // The error does not quote the text: it is a secret.
        hex::decode(s.trim_start_matches("0x")).map_err(|_| bad(path, format!("{field} is not hex")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| bad(path, format!("{field}: {} bytes, expected 32", b.len())))
}

/// The hotkey of a keyfile's text: from `secretSeed`, else `secretPhrase`; its address must be
/// the stored `ss58Address`.
pub fn parse_keyfile(path: &Path, text: &str) -> Result<Hotkey, WalletError> {
    let t = text.trim_start();
    if t.starts_with("$NACL") || t.starts_with("$BTWALLET") || t.starts_with("gAAAAA") {
        return Err(WalletError::Encrypted(path.to_path_buf()));
    }
    let kf: Keyfile = serde_json::from_str(text).map_err(|e| bad(path, e.to_string()))?;
    if kf.crypto_type != CRYPTO_SR25519 {
        return Err(bad(
            path,
            format!("cryptoType {} (only sr25519, 1)", kf.crypto_type),
        ));
    }
    let seed = match (&kf.secret_seed, &kf.secret_phrase) {
        (Some(s), _) => hex32(path, "secretSeed", s)?,
        (None, Some(p)) => seed_from_mnemonic(p)?,
        (None, None) => return Err(bad(path, "neither secretSeed nor secretPhrase")),
    };
    let key = Hotkey::from_seed(&seed);
    if key.address() != kf.ss58_address {
        return Err(WalletError::AddressMismatch {
            path: path.to_path_buf(),
            stored: kf.ss58_address,
            derived: key.address(),
        });
    }
    Ok(key)
}

/// Reads the hotkey at `path`.
pub fn read_hotkey(path: &Path) -> Result<Hotkey, WalletError> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => WalletError::Missing(path.to_path_buf()),
        _ => WalletError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    parse_keyfile(path, &text)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WalletError + '_ {
    move |source| WalletError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` to `path` with mode 0600 (never readable by others, even briefly).
fn write_private(path: &Path, contents: &[u8], overwrite: bool) -> Result<(), WalletError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if path.exists() && !overwrite {
        return Err(WalletError::Exists(path.to_path_buf()));
    }
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    let tmp = path.with_extension("tmp-connito");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(contents).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Writes a hotkey keyfile and its `pub.txt` at `path`.
pub fn write_hotkey(path: &Path, keyfile: &Keyfile, overwrite: bool) -> Result<(), WalletError> {
    let json = serde_json::to_vec(keyfile).map_err(|e| bad(path, e.to_string()))?;
    write_private(path, &json, overwrite)?;
    let public = PublicKeyfile {
        public_key: keyfile.public_key.clone(),
        account_id: keyfile.account_id.clone(),
        ss58_address: keyfile.ss58_address.clone(),
        crypto_type: keyfile.crypto_type,
    };
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push("pub.txt");
    let pub_json = serde_json::to_vec(&public).map_err(|e| bad(path, e.to_string()))?;
    write_private(Path::new(&pub_path), &pub_json, overwrite)
}

#[cfg(test)]
#[path = "wallet_tests.rs"]
mod tests;
