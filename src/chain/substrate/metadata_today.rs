//! Today's Subtensor metadata (spec 425, June 2026), made from the shipped spec-365 metadata plus
//! the items added since that connito uses, each typed as subtensor's source declares it
//! (opentensor/subtensor `main` at 14bc6f9f, `pallets/subtensor/src/lib.rs`,
//! `pallets/subtensor/runtime-api/src/lib.rs`, `pallets/shield/src/extension.rs`):
//!
//! - storage `SubtensorModule.{LastEpochBlock, PendingEpochAt, SubnetEpochIndex}`: `Identity`
//!   `NetUid` -> `u64`, value query, default 0 (the stateful epoch clock, spec 423);
//! - runtime API `SubnetInfoRuntimeApi.get_next_epoch_start_block(netuid: NetUid) ->
//!   Option<u64>`, the trait at API version 2;
//! - transaction extension `CheckShieldedTxValidity` (`pallet_shield`, spec 391): no explicit and
//!   no implicit bytes, tenth of the thirteen, after `SudoTransactionExtension`;
//! - `System.Version`'s `spec_version` raised to 425.
//!
//! Everything else (types, pallets, indices, hashers, calls, events, errors, constants) is
//! spec 365's. [`ADDED_STORAGE`], [`ADDED_APIS`] and [`ADDED_EXTENSIONS`] are the whole list; a
//! test compares the result with spec 365 plus exactly these.

use frame_metadata::v14::{StorageEntryModifier, StorageHasher};
use frame_metadata::v16::{self, ItemDeprecationInfo, StorageEntryType};
use parity_scale_codec::{Compact, Decode, Encode};
use scale_info::form::PortableForm;
use scale_info::{Path, PortableType, Type, TypeDef, TypeDefComposite, TypeParameter};

use super::metadata::MetadataError;

/// The spec version of the runtime emulated.
pub const SPEC_VERSION: u32 = 425;

/// Storage items added: `(pallet, item)`, each `Identity NetUid -> u64`, default 0.
pub const ADDED_STORAGE: [(&str, &str); 3] = [
    ("SubtensorModule", "LastEpochBlock"),
    ("SubtensorModule", "PendingEpochAt"),
    ("SubtensorModule", "SubnetEpochIndex"),
];

/// Runtime API methods added: `(api, method)`.
pub const ADDED_APIS: [(&str, &str); 1] = [("SubnetInfoRuntimeApi", "get_next_epoch_start_block")];

/// Transaction extensions added, each zero-size, with the one it follows.
pub const ADDED_EXTENSIONS: [(&str, &str); 1] =
    [("CheckShieldedTxValidity", "SudoTransactionExtension")];

type Registry = Vec<PortableType>;

/// Today's V16 metadata from spec 365's.
pub fn today_from(
    spec365: &v16::RuntimeMetadataV16,
) -> Result<v16::RuntimeMetadataV16, MetadataError> {
    let mut m = spec365.clone();
    let netuid = netuid_type(&m)?;
    let u64_ty = find(&m.types.types, |t| {
        matches!(
            t.type_def,
            TypeDef::Primitive(scale_info::TypeDefPrimitive::U64)
        )
    })
    .ok_or(MetadataError::MissingType("u64"))?;
    add_storage(&mut m, netuid, u64_ty)?;
    let option_u64 = option_of(&mut m.types.types, u64_ty);
    add_api_method(&mut m, netuid, option_u64)?;
    add_extensions(&mut m)?;
    raise_spec_version(&mut m)?;
    Ok(m)
}

fn find(types: &Registry, f: impl Fn(&Type<PortableForm>) -> bool) -> Option<u32> {
    types.iter().find(|t| f(&t.ty)).map(|t| t.id)
}

/// `NetUid`, the key type of `SubtensorModule.Tempo`.
fn netuid_type(m: &v16::RuntimeMetadataV16) -> Result<u32, MetadataError> {
    let missing = MetadataError::MissingType("SubtensorModule.Tempo's NetUid key");
    let pallet = (m.pallets.iter())
        .find(|p| p.name == "SubtensorModule")
        .ok_or(MetadataError::MissingType("SubtensorModule"))?;
    let entry = (pallet
        .storage
        .as_ref()
        .ok_or(missing.clone())?
        .entries
        .iter())
    .find(|e| e.name == "Tempo")
    .ok_or(missing.clone())?;
    match &entry.ty {
        StorageEntryType::Map { key, .. } => Ok(key.id),
        StorageEntryType::Plain(_) => Err(missing),
    }
}

/// `Option<T>`'s type id, added to the registry if it has none.
fn option_of(types: &mut Registry, inner: u32) -> u32 {
    let is_option = |t: &Type<PortableForm>| {
        t.path.segments == ["Option"]
            && t.type_params.first().and_then(|p| p.ty).map(|s| s.id) == Some(inner)
    };
    if let Some(id) = find(types, is_option) {
        return id;
    }
    let variant =
        |name: &str, index: u8, fields: Vec<scale_info::Field<PortableForm>>| scale_info::Variant {
            name: name.into(),
            fields,
            index,
            docs: vec![],
        };
    let some = scale_info::Field {
        name: None,
        ty: inner.into(),
        type_name: Some("T".into()),
        docs: vec![],
    };
    push(
        types,
        Type {
            path: Path {
                segments: vec!["Option".into()],
            },
            type_params: vec![TypeParameter {
                name: "T".into(),
                ty: Some(inner.into()),
            }],
            type_def: TypeDef::Variant(scale_info::TypeDefVariant {
                variants: vec![variant("None", 0, vec![]), variant("Some", 1, vec![some])],
            }),
            docs: vec![],
        },
    )
}

fn push(types: &mut Registry, ty: Type<PortableForm>) -> u32 {
    let id = types.len() as u32;
    types.push(PortableType { id, ty });
    id
}

fn add_storage(
    m: &mut v16::RuntimeMetadataV16,
    netuid: u32,
    u64_ty: u32,
) -> Result<(), MetadataError> {
    for (pallet, item) in ADDED_STORAGE {
        let storage = (m.pallets.iter_mut())
            .find(|p| p.name == pallet)
            .and_then(|p| p.storage.as_mut())
            .ok_or(MetadataError::MissingType("a pallet with storage"))?;
        storage.entries.push(v16::StorageEntryMetadata {
            name: item.into(),
            modifier: StorageEntryModifier::Default,
            ty: StorageEntryType::Map {
                hashers: vec![StorageHasher::Identity],
                key: netuid.into(),
                value: u64_ty.into(),
            },
            default: 0u64.encode(),
            docs: vec![format!(
                " --- MAP ( netuid ) --> {item} (stateful epoch clock)"
            )],
            deprecation_info: ItemDeprecationInfo::NotDeprecated,
        });
    }
    Ok(())
}

fn add_api_method(
    m: &mut v16::RuntimeMetadataV16,
    netuid: u32,
    option_u64: u32,
) -> Result<(), MetadataError> {
    for (api, method) in ADDED_APIS {
        let a = (m.apis.iter_mut())
            .find(|a| a.name == api)
            .ok_or(MetadataError::MissingType("SubnetInfoRuntimeApi"))?;
        a.version = Compact(a.version.0.max(2));
        a.methods.push(v16::RuntimeApiMethodMetadata {
            name: method.into(),
            inputs: vec![v16::FunctionParamMetadata {
                name: "netuid".into(),
                ty: netuid.into(),
            }],
            output: option_u64.into(),
            docs: vec![],
            deprecation_info: ItemDeprecationInfo::NotDeprecated,
        });
    }
    Ok(())
}

/// Adds each extension after the one it follows, to the extension list, version 0's indices
/// and the extrinsic's `Extension` tuple type.
fn add_extensions(m: &mut v16::RuntimeMetadataV16) -> Result<(), MetadataError> {
    let runtime = super::metadata::find_type(&m.types, "Runtime", Some("runtime"))
        .ok_or(MetadataError::MissingType("Runtime"))?;
    let (_, extra) = super::metadata::extrinsic_types(&m.types)?;
    let unit = find(
        &m.types.types,
        |t| matches!(&t.type_def, TypeDef::Tuple(x) if x.fields.is_empty()),
    )
    .ok_or(MetadataError::MissingType("()"))?;
    for (name, after) in ADDED_EXTENSIONS {
        let ty = push(&mut m.types.types, zero_size_extension(name, runtime));
        let exts = &mut m.extrinsic.transaction_extensions;
        let at = (exts.iter().position(|e| e.identifier == after)).ok_or(
            MetadataError::MissingType("the extension the new one follows"),
        )?;
        let after_ty = exts[at].ty.id;
        exts.insert(
            at + 1,
            v16::TransactionExtensionMetadata {
                identifier: name.into(),
                ty: ty.into(),
                implicit: unit.into(),
            },
        );
        insert_in_tuple(&mut m.types.types, extra, after_ty, ty)?;
    }
    let all = (0..m.extrinsic.transaction_extensions.len() as u32)
        .map(Compact)
        .collect();
    m.extrinsic.transaction_extensions_by_version = [(0, all)].into();
    Ok(())
}

/// `pallet_shield::extension::CheckShieldedTxValidity<Runtime>`: a composite of no fields.
fn zero_size_extension(name: &str, runtime: u32) -> Type<PortableForm> {
    Type {
        path: Path {
            segments: vec!["pallet_shield".into(), "extension".into(), name.into()],
        },
        type_params: vec![TypeParameter {
            name: "T".into(),
            ty: Some(runtime.into()),
        }],
        type_def: TypeDef::Composite(TypeDefComposite { fields: vec![] }),
        docs: vec![],
    }
}

/// Puts `new` after `after` in the tuple that holds it within the extrinsic's `Extension` tuple
/// `extra` (itself, or a tuple nested in it).
fn insert_in_tuple(
    types: &mut Registry,
    extra: u32,
    after: u32,
    new: u32,
) -> Result<(), MetadataError> {
    let holder = holder_of(types, extra, after).ok_or(MetadataError::MissingType(
        "the extension in the extrinsic's Extension tuple",
    ))?;
    let TypeDef::Tuple(tuple) = &mut types[holder as usize].ty.type_def else {
        unreachable!("holder_of finds tuples");
    };
    let at = tuple
        .fields
        .iter()
        .position(|f| f.id == after)
        .expect("found by holder_of");
    tuple.fields.insert(at + 1, new.into());
    Ok(())
}

/// The tuple type, `root` or one nested in it, that has `member` as a field.
fn holder_of(types: &Registry, root: u32, member: u32) -> Option<u32> {
    let TypeDef::Tuple(t) = &types.get(root as usize)?.ty.type_def else {
        return None;
    };
    if t.fields.iter().any(|f| f.id == member) {
        return Some(root);
    }
    t.fields.iter().find_map(|f| holder_of(types, f.id, member))
}

/// `sp_version::RuntimeVersion` as SCALE: names, versions, APIs, transaction and system version.
type VersionFields = (String, String, u32, u32, u32, Vec<([u8; 8], u32)>, u32, u8);

/// `System.Version` with [`SPEC_VERSION`], and each API at its version in the metadata.
fn raise_spec_version(m: &mut v16::RuntimeMetadataV16) -> Result<(), MetadataError> {
    let api_versions: Vec<([u8; 8], u32)> = (m.apis.iter())
        .map(|a| (super::hashing::blake2_64(a.name.as_bytes()), a.version.0))
        .collect();
    let c = (m.pallets.iter_mut())
        .find(|p| p.name == "System")
        .and_then(|p| p.constants.iter_mut().find(|c| c.name == "Version"))
        .ok_or(MetadataError::MissingType("System.Version"))?;
    let mut v = VersionFields::decode(&mut &c.value[..])
        .map_err(|e| MetadataError::Decode(format!("System.Version: {e}")))?;
    v.3 = SPEC_VERSION;
    for (id, version) in v.5.iter_mut() {
        if let Some((_, served)) = api_versions.iter().find(|(i, _)| i == id) {
            *version = (*version).max(*served);
        }
    }
    c.value = v.encode();
    Ok(())
}
