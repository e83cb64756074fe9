//! The runtime metadata devnet serves: finney's (Subtensor spec 365, V16, shipped inside the
//! binary), and the V15 and V14 forms converted from it, so each client gets the version it asks
//! for (the Python SDK decodes V15, subxt V16, `state_getMetadata` answers V14 as a node does).
//!
//! Conversion drops only what an older version cannot say (deprecation notes, associated types,
//! view functions, extension versions other than 0) and adds what it needs that V16 leaves out:
//! the runtime type and the signed-extra tuple (both found in the type registry), extrinsic
//! version 4. Types, pallets, indices, storage entries, hashers, calls, events, errors, constants
//! and runtime APIs carry over unchanged.

use std::sync::OnceLock;

use frame_metadata::{META_RESERVED, RuntimeMetadata, RuntimeMetadataPrefixed, v14, v15, v16};
use parity_scale_codec::{Decode, Encode};
use scale_info::form::PortableForm;
use scale_info::{PortableRegistry, TypeDef};

/// Finney's metadata at spec 365 (SCALE, `b"meta"` ++ V16), as `state_getMetadata` gives it.
pub const FINNEY_SPEC365: &[u8] = include_bytes!("metadata/finney-spec365.scale");

/// Metadata versions served, oldest first (`Metadata_metadata_versions`).
pub const VERSIONS: [u32; 3] = [14, 15, 16];

/// Why metadata could not be loaded or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata bytes do not decode: {0}")]
    Decode(String),
    #[error("metadata magic is {0:#x}, not b\"meta\"")]
    Magic(u32),
    #[error("metadata is V{0}; V16 is needed")]
    NotV16(u32),
    #[error("the type registry has no {0}")]
    MissingType(&'static str),
    #[error("the extrinsic has no transaction extensions of version 0")]
    NoExtensionVersion0,
}

type Pallet16 = v16::PalletMetadata<PortableForm>;
type Storage16 = v16::PalletStorageMetadata<PortableForm>;

/// One runtime's metadata in the three versions devnet serves.
pub struct ChainMetadata {
    v16: v16::RuntimeMetadataV16,
    /// `RuntimeMetadataPrefixed` bytes of V14, V15, V16.
    encoded: [Vec<u8>; 3],
}

impl ChainMetadata {
    /// Loads V16 metadata bytes (`b"meta"` ++ version ++ body) and derives V15 and V14.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetadataError> {
        let prefixed = RuntimeMetadataPrefixed::decode(&mut &bytes[..])
            .map_err(|e| MetadataError::Decode(e.to_string()))?;
        if prefixed.0 != META_RESERVED {
            return Err(MetadataError::Magic(prefixed.0));
        }
        let RuntimeMetadata::V16(m) = prefixed.1 else {
            return Err(MetadataError::NotV16(prefixed.1.version()));
        };
        let v15 = to_v15(&m)?;
        let v14 = to_v14(&v15);
        let encoded = [
            RuntimeMetadataPrefixed(META_RESERVED, RuntimeMetadata::V14(v14)).encode(),
            RuntimeMetadataPrefixed(META_RESERVED, RuntimeMetadata::V15(v15)).encode(),
            bytes.to_vec(),
        ];
        Ok(Self { v16: m, encoded })
    }

    /// V16 metadata, encoded and loaded as [`Self::from_bytes`] does.
    pub fn from_v16(m: v16::RuntimeMetadataV16) -> Result<Self, MetadataError> {
        Self::from_bytes(&RuntimeMetadataPrefixed(META_RESERVED, RuntimeMetadata::V16(m)).encode())
    }

    /// Today's Subtensor metadata (spec 425): finney's spec 365 plus the items of
    /// [`super::metadata_today`], made once.
    pub fn today() -> &'static ChainMetadata {
        static TODAY: OnceLock<ChainMetadata> = OnceLock::new();
        TODAY.get_or_init(|| {
            let m = super::metadata_today::today_from(&Self::finney().v16)
                .expect("spec 365 has what today's additions build on");
            ChainMetadata::from_v16(m).expect("today's metadata converts")
        })
    }

    /// Finney's metadata (spec 365), loaded once.
    pub fn finney() -> &'static ChainMetadata {
        static FINNEY: OnceLock<ChainMetadata> = OnceLock::new();
        FINNEY.get_or_init(|| {
            ChainMetadata::from_bytes(FINNEY_SPEC365).expect("the shipped metadata is valid V16")
        })
    }

    /// `RuntimeMetadataPrefixed` bytes of `version` (14, 15 or 16), if served.
    pub fn at_version(&self, version: u32) -> Option<&[u8]> {
        let i = VERSIONS.iter().position(|&v| v == version)?;
        Some(&self.encoded[i])
    }

    pub fn v16(&self) -> &v16::RuntimeMetadataV16 {
        &self.v16
    }

    pub fn types(&self) -> &PortableRegistry {
        &self.v16.types
    }

    pub fn pallet(&self, name: &str) -> Option<&Pallet16> {
        self.v16.pallets.iter().find(|p| p.name == name)
    }

    /// The `(pallet index, variant index)` of `name` in the enum type `ty` of a pallet.
    fn variant_index(&self, pallet: &Pallet16, ty: Option<u32>, name: &str) -> Option<(u8, u8)> {
        let def = &self.types().resolve(ty?)?.type_def;
        let TypeDef::Variant(v) = def else {
            return None;
        };
        let var = v.variants.iter().find(|var| var.name == name)?;
        Some((pallet.index, var.index))
    }

    /// `(pallet index, call index)` of a call.
    pub fn call_index(&self, pallet: &str, call: &str) -> Option<(u8, u8)> {
        let p = self.pallet(pallet)?;
        self.variant_index(p, p.calls.as_ref().map(|c| c.ty.id), call)
    }

    /// `(pallet index, error index)` of a module error.
    pub fn error_index(&self, pallet: &str, error: &str) -> Option<(u8, u8)> {
        let p = self.pallet(pallet)?;
        self.variant_index(p, p.error.as_ref().map(|c| c.ty.id), error)
    }

    /// `(pallet index, event index)` of an event.
    pub fn event_index(&self, pallet: &str, event: &str) -> Option<(u8, u8)> {
        let p = self.pallet(pallet)?;
        self.variant_index(p, p.event.as_ref().map(|c| c.ty.id), event)
    }

    /// A storage item with its pallet's storage prefix.
    pub fn storage(
        &self,
        pallet: &str,
        item: &str,
    ) -> Option<(&Storage16, &v16::StorageEntryMetadata<PortableForm>)> {
        let s = self.pallet(pallet)?.storage.as_ref()?;
        Some((s, s.entries.iter().find(|e| e.name == item)?))
    }

    /// A constant's SCALE bytes.
    pub fn constant(&self, pallet: &str, name: &str) -> Option<&[u8]> {
        let c = self
            .pallet(pallet)?
            .constants
            .iter()
            .find(|c| c.name == name)?;
        Some(&c.value)
    }

    /// A runtime API method (`api` e.g. `"NeuronInfoRuntimeApi"`).
    pub fn runtime_api(
        &self,
        api: &str,
        method: &str,
    ) -> Option<&v16::RuntimeApiMethodMetadata<PortableForm>> {
        let a = self.v16.apis.iter().find(|a| a.name == api)?;
        a.methods.iter().find(|m| m.name == method)
    }
}

/// The first type whose path ends with `last` (and, when given, whose path contains `within`).
pub(super) fn find_type(types: &PortableRegistry, last: &str, within: Option<&str>) -> Option<u32> {
    types.types.iter().find_map(|t| {
        let segs = &t.ty.path.segments;
        let ok = segs.last().is_some_and(|s| s == last)
            && within.is_none_or(|w| segs.iter().any(|s| s.contains(w)));
        ok.then_some(t.id)
    })
}

/// The `UncheckedExtrinsic` type and its signed-extra (`Extension`/`Extra`) type parameter.
pub(super) fn extrinsic_types(types: &PortableRegistry) -> Result<(u32, u32), MetadataError> {
    let id = find_type(types, "UncheckedExtrinsic", Some("generic"))
        .ok_or(MetadataError::MissingType("UncheckedExtrinsic"))?;
    let params = &types.resolve(id).expect("found above").type_params;
    let extra = params
        .iter()
        .find(|p| p.name == "Extra" || p.name == "Extension")
        .and_then(|p| p.ty.as_ref())
        .ok_or(MetadataError::MissingType(
            "UncheckedExtrinsic's Extra parameter",
        ))?;
    Ok((id, extra.id))
}

fn storage_v15(s: &Storage16) -> v14::PalletStorageMetadata<PortableForm> {
    v14::PalletStorageMetadata {
        prefix: s.prefix.clone(),
        entries: s
            .entries
            .iter()
            .map(|e| v14::StorageEntryMetadata {
                name: e.name.clone(),
                modifier: e.modifier.clone(),
                ty: e.ty.clone(),
                default: e.default.clone(),
                docs: e.docs.clone(),
            })
            .collect(),
    }
}

fn pallet_v15(p: &Pallet16) -> v15::PalletMetadata<PortableForm> {
    v15::PalletMetadata {
        name: p.name.clone(),
        storage: p.storage.as_ref().map(storage_v15),
        calls: p
            .calls
            .as_ref()
            .map(|c| v14::PalletCallMetadata { ty: c.ty }),
        event: p
            .event
            .as_ref()
            .map(|e| v14::PalletEventMetadata { ty: e.ty }),
        constants: p
            .constants
            .iter()
            .map(|c| v14::PalletConstantMetadata {
                name: c.name.clone(),
                ty: c.ty,
                value: c.value.clone(),
                docs: c.docs.clone(),
            })
            .collect(),
        error: p
            .error
            .as_ref()
            .map(|e| v14::PalletErrorMetadata { ty: e.ty }),
        index: p.index,
        docs: p.docs.clone(),
    }
}

fn apis_v15(m: &v16::RuntimeMetadataV16) -> Vec<v15::RuntimeApiMetadata<PortableForm>> {
    m.apis
        .iter()
        .map(|a| v15::RuntimeApiMetadata {
            name: a.name.clone(),
            methods: a
                .methods
                .iter()
                .map(|f| v15::RuntimeApiMethodMetadata {
                    name: f.name.clone(),
                    inputs: f.inputs.clone(),
                    output: f.output,
                    docs: f.docs.clone(),
                })
                .collect(),
            docs: a.docs.clone(),
        })
        .collect()
}

/// V16 → V15: extrinsic version 4 with the version-0 transaction extensions as signed
/// extensions.
fn to_v15(m: &v16::RuntimeMetadataV16) -> Result<v15::RuntimeMetadataV15, MetadataError> {
    let runtime = find_type(&m.types, "Runtime", Some("runtime"))
        .ok_or(MetadataError::MissingType("Runtime"))?;
    let (_, extra) = extrinsic_types(&m.types)?;
    let ex = &m.extrinsic;
    let v0 = ex
        .transaction_extensions_by_version
        .get(&0)
        .ok_or(MetadataError::NoExtensionVersion0)?;
    let signed_extensions = v0
        .iter()
        .filter_map(|i| ex.transaction_extensions.get(i.0 as usize))
        .map(|e| v15::SignedExtensionMetadata {
            identifier: e.identifier.clone(),
            ty: e.ty,
            additional_signed: e.implicit,
        })
        .collect();
    Ok(v15::RuntimeMetadataV15 {
        types: m.types.clone(),
        pallets: m.pallets.iter().map(pallet_v15).collect(),
        extrinsic: v15::ExtrinsicMetadata {
            version: 4,
            address_ty: ex.address_ty,
            call_ty: ex.call_ty,
            signature_ty: ex.signature_ty,
            extra_ty: extra.into(),
            signed_extensions,
        },
        ty: runtime.into(),
        apis: apis_v15(m),
        outer_enums: m.outer_enums.clone(),
        custom: m.custom.clone(),
    })
}

/// V15 → V14: no runtime APIs, outer enums, custom values or pallet docs; the extrinsic named by
/// its `UncheckedExtrinsic` type.
fn to_v14(m: &v15::RuntimeMetadataV15) -> v14::RuntimeMetadataV14 {
    let (extrinsic_ty, _) = extrinsic_types(&m.types).expect("checked in to_v15");
    v14::RuntimeMetadataV14 {
        types: m.types.clone(),
        pallets: m
            .pallets
            .iter()
            .map(|p| v14::PalletMetadata {
                name: p.name.clone(),
                storage: p.storage.clone(),
                calls: p.calls.clone(),
                event: p.event.clone(),
                constants: p.constants.clone(),
                error: p.error.clone(),
                index: p.index,
            })
            .collect(),
        extrinsic: v14::ExtrinsicMetadata {
            ty: extrinsic_ty.into(),
            version: m.extrinsic.version,
            signed_extensions: m
                .extrinsic
                .signed_extensions
                .iter()
                .map(|e| v14::SignedExtensionMetadata {
                    identifier: e.identifier.clone(),
                    ty: e.ty,
                    additional_signed: e.additional_signed,
                })
                .collect(),
        },
        ty: m.ty,
    }
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
