//! Runtime API answers that depend on the runtime alone (not on chain state): `Core_version` and
//! the `Metadata` API, SCALE-encoded as a node's `state_call` returns them, and the runtime
//! version as `state_getRuntimeVersion` prints it.

use parity_scale_codec::{Decode, Encode};
use serde::Serialize;

use crate::chain::substrate::metadata::{ChainMetadata, VERSIONS};

/// Why a runtime call could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeCallError {
    /// A node answers this text; the Python SDK looks for it to fall back to `state_getMetadata`.
    #[error("Exported method {0} is not found")]
    NotFound(String),
    #[error("{method}: could not decode the arguments: {reason}")]
    BadArguments { method: String, reason: String },
}

/// `sp_version::RuntimeVersion`, read from the metadata's `System.Version` constant.
#[derive(Debug, Clone, PartialEq, Eq, Decode, Encode)]
pub struct RuntimeVersion {
    pub spec_name: String,
    pub impl_name: String,
    pub authoring_version: u32,
    pub spec_version: u32,
    pub impl_version: u32,
    pub apis: Vec<([u8; 8], u32)>,
    pub transaction_version: u32,
    pub system_version: u8,
}

/// `state_getRuntimeVersion`'s JSON (Substrate's field names).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeVersionJson {
    pub spec_name: String,
    pub impl_name: String,
    pub authoring_version: u32,
    pub spec_version: u32,
    pub impl_version: u32,
    /// `[["0x<8-byte id>", version], ...]`.
    pub apis: Vec<(String, u32)>,
    pub transaction_version: u32,
    pub state_version: u8,
    pub system_version: u8,
}

impl RuntimeVersion {
    /// Decodes `System.Version`; `None` if the constant is missing or does not decode exactly.
    pub fn from_metadata(m: &ChainMetadata) -> Option<Self> {
        let mut bytes = m.constant("System", "Version")?;
        let v = Self::decode(&mut bytes).ok()?;
        bytes.is_empty().then_some(v)
    }

    pub fn to_json(&self) -> RuntimeVersionJson {
        RuntimeVersionJson {
            spec_name: self.spec_name.clone(),
            impl_name: self.impl_name.clone(),
            authoring_version: self.authoring_version,
            spec_version: self.spec_version,
            impl_version: self.impl_version,
            apis: self
                .apis
                .iter()
                .map(|(id, v)| (format!("0x{}", hex::encode(id)), *v))
                .collect(),
            transaction_version: self.transaction_version,
            state_version: self.system_version,
            system_version: self.system_version,
        }
    }
}

/// `Option<OpaqueMetadata>` / `OpaqueMetadata` (a `Vec<u8>` of prefixed metadata).
fn opaque(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec().encode()
}

/// Answers `state_call(method, data)` for `Core_version` and the `Metadata` API; every other
/// method is [`RuntimeCallError::NotFound`] here (chain-state APIs are answered elsewhere).
pub fn static_call(
    m: &ChainMetadata,
    method: &str,
    mut data: &[u8],
) -> Result<Vec<u8>, RuntimeCallError> {
    let bad = |reason: String| RuntimeCallError::BadArguments {
        method: method.to_string(),
        reason,
    };
    match method {
        "Core_version" => m
            .constant("System", "Version")
            .map(<[u8]>::to_vec)
            .ok_or_else(|| RuntimeCallError::NotFound(method.to_string())),
        "Metadata_metadata" => Ok(opaque(m.at_version(14).expect("V14 is always served"))),
        "Metadata_metadata_versions" => Ok(VERSIONS.to_vec().encode()),
        "Metadata_metadata_at_version" => {
            let version = u32::decode(&mut data).map_err(|e| bad(e.to_string()))?;
            if !data.is_empty() {
                return Err(bad(format!("{} bytes left over", data.len())));
            }
            Ok(m.at_version(version).map(<[u8]>::to_vec).encode())
        }
        _ => Err(RuntimeCallError::NotFound(method.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_version_is_finneys_spec_365() {
        let m = ChainMetadata::finney();
        let v = RuntimeVersion::from_metadata(m).unwrap();
        assert_eq!(v.spec_name, "node-subtensor");
        assert_eq!((v.spec_version, v.transaction_version), (365, 1));
        // Every API the metadata describes is listed in the version, by blake2_64 of its name.
        for api in &m.v16().apis {
            let hashed = crate::chain::substrate::hashing::blake2_64(api.name.as_bytes());
            assert!(v.apis.iter().any(|(i, _)| *i == hashed), "{}", api.name);
        }
        let json = serde_json::to_value(v.to_json()).unwrap();
        assert_eq!(json["specVersion"], 365);
        assert_eq!(json["transactionVersion"], 1);
        assert!(json["apis"][0][0].as_str().unwrap().starts_with("0x"));
        assert_eq!(v.encode(), m.constant("System", "Version").unwrap());
    }

    #[test]
    fn metadata_api_answers_each_version_and_none_for_others() {
        let m = ChainMetadata::finney();
        let versions = static_call(m, "Metadata_metadata_versions", &[]).unwrap();
        assert_eq!(
            Vec::<u32>::decode(&mut &versions[..]).unwrap(),
            vec![14, 15, 16]
        );
        for v in [14_u32, 15, 16] {
            let out = static_call(m, "Metadata_metadata_at_version", &v.encode()).unwrap();
            let inner = Option::<Vec<u8>>::decode(&mut &out[..]).unwrap().unwrap();
            assert_eq!(&inner[..4], b"meta");
            assert_eq!(u32::from(inner[4]), v);
        }
        let none = static_call(m, "Metadata_metadata_at_version", &13_u32.encode()).unwrap();
        assert_eq!(none, vec![0]);
        let v14 = static_call(m, "Metadata_metadata", &[]).unwrap();
        assert_eq!(
            Vec::<u8>::decode(&mut &v14[..]).unwrap(),
            m.at_version(14).unwrap()
        );
        let core = static_call(m, "Core_version", &[]).unwrap();
        assert_eq!(
            RuntimeVersion::decode(&mut &core[..]).unwrap().spec_version,
            365
        );
    }

    #[test]
    fn bad_calls_are_typed_errors() {
        let m = ChainMetadata::finney();
        let e = static_call(m, "Metadata_metadata_at_version", &[15]).unwrap_err();
        assert!(matches!(e, RuntimeCallError::BadArguments { .. }), "{e}");
        let e = static_call(m, "Metadata_metadata_at_version", &[15, 0, 0, 0, 9]).unwrap_err();
        assert!(e.to_string().contains("left over"), "{e}");
        let e = static_call(m, "Nope_nope", &[]).unwrap_err();
        assert_eq!(e.to_string(), "Exported method Nope_nope is not found");
    }
}
