use super::*;
use frame_metadata::v14::StorageHasher;

fn decode(bytes: &[u8]) -> RuntimeMetadata {
    let p = RuntimeMetadataPrefixed::decode(&mut &bytes[..]).unwrap();
    assert_eq!(p.0, META_RESERVED);
    p.1
}

#[test]
fn the_shipped_metadata_is_the_shared_finney_file() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/finney-metadata-spec365.scale"
    );
    match std::fs::read(shared) {
        Ok(bytes) => assert!(
            bytes == FINNEY_SPEC365,
            "src/chain/metadata differs from {shared}"
        ),
        Err(e) => eprintln!("skipped: {shared} not readable ({e}); the shipped copy is used"),
    }
}

#[test]
fn every_version_decodes_as_itself_with_the_same_pallets() {
    let m = ChainMetadata::finney();
    assert_eq!(m.at_version(16), Some(FINNEY_SPEC365));
    assert_eq!(m.at_version(13), None);
    let pallets16: Vec<(String, u8)> = m
        .v16()
        .pallets
        .iter()
        .map(|p| (p.name.clone(), p.index))
        .collect();
    let RuntimeMetadata::V15(v15) = decode(m.at_version(15).unwrap()) else {
        panic!("not V15")
    };
    let RuntimeMetadata::V14(v14) = decode(m.at_version(14).unwrap()) else {
        panic!("not V14")
    };
    let pallets15: Vec<_> = v15
        .pallets
        .iter()
        .map(|p| (p.name.clone(), p.index))
        .collect();
    let pallets14: Vec<_> = v14
        .pallets
        .iter()
        .map(|p| (p.name.clone(), p.index))
        .collect();
    assert_eq!(pallets15, pallets16);
    assert_eq!(pallets14, pallets16);
    assert_eq!(v15.types.types.len(), m.types().types.len());
    assert_eq!(v15.apis.len(), m.v16().apis.len());
    // Storage entries, hashers and types are carried over one for one.
    for (p16, p15) in m.v16().pallets.iter().zip(&v15.pallets) {
        let e16: Vec<_> = p16
            .storage
            .iter()
            .flat_map(|s| &s.entries)
            .map(|e| (&e.name, &e.ty, &e.default))
            .collect();
        let e15: Vec<_> = p15
            .storage
            .iter()
            .flat_map(|s| &s.entries)
            .map(|e| (&e.name, &e.ty, &e.default))
            .collect();
        assert_eq!(e16, e15, "{}", p16.name);
    }
}

#[test]
fn v15_and_v14_describe_the_v4_extrinsic_with_finneys_extensions() {
    let m = ChainMetadata::finney();
    let RuntimeMetadata::V15(v15) = decode(m.at_version(15).unwrap()) else {
        panic!()
    };
    let ids: Vec<&str> = v15
        .extrinsic
        .signed_extensions
        .iter()
        .map(|e| e.identifier.as_str())
        .collect();
    // PROTOCOL.md §6, in order.
    assert_eq!(
        ids,
        [
            "CheckNonZeroSender",
            "CheckSpecVersion",
            "CheckTxVersion",
            "CheckGenesis",
            "CheckMortality",
            "CheckNonce",
            "CheckWeight",
            "ChargeTransactionPayment",
            "SudoTransactionExtension",
            "SubtensorTransactionExtension",
            "DrandPriority",
            "CheckMetadataHash",
        ]
    );
    assert_eq!(v15.extrinsic.version, 4);
    let extra = m.types().resolve(v15.extrinsic.extra_ty.id).unwrap();
    let parts = match &extra.type_def {
        TypeDef::Tuple(t) => t.fields.len(),
        TypeDef::Composite(c) => c.fields.len(),
        other => panic!("extra is {other:?}"),
    };
    assert_eq!(parts, 12);
    let runtime = m.types().resolve(v15.ty.id).unwrap();
    assert_eq!(
        runtime.path.segments.last().map(String::as_str),
        Some("Runtime")
    );
    let RuntimeMetadata::V14(v14) = decode(m.at_version(14).unwrap()) else {
        panic!()
    };
    let ux = m.types().resolve(v14.extrinsic.ty.id).unwrap();
    assert_eq!(
        ux.path.segments.last().map(String::as_str),
        Some("UncheckedExtrinsic")
    );
    assert_eq!(v14.extrinsic.signed_extensions.len(), 12);
}

#[test]
fn indices_match_protocol_md() {
    let m = ChainMetadata::finney();
    let calls = [
        ("SubtensorModule", "set_weights", (7, 0)),
        ("SubtensorModule", "add_stake", (7, 2)),
        ("SubtensorModule", "serve_axon", (7, 4)),
        ("SubtensorModule", "burned_register", (7, 7)),
        ("SubtensorModule", "commit_weights", (7, 96)),
        ("SubtensorModule", "reveal_weights", (7, 97)),
        ("SubtensorModule", "commit_timelocked_weights", (7, 113)),
        ("Commitments", "set_commitment", (18, 0)),
        ("Balances", "transfer_allow_death", (5, 0)),
        ("Balances", "transfer_keep_alive", (5, 3)),
    ];
    for (pallet, call, want) in calls {
        assert_eq!(m.call_index(pallet, call), Some(want), "{pallet}.{call}");
    }
    assert_eq!(m.call_index("SubtensorModule", "no_such_call"), None);
    assert_eq!(m.event_index("System", "ExtrinsicSuccess"), Some((0, 0)));
    assert_eq!(m.event_index("System", "ExtrinsicFailed"), Some((0, 1)));
    assert_eq!(
        m.error_index("SubtensorModule", "SubnetNotExists"),
        Some((7, 73))
    );
}

#[test]
fn storage_hashers_match_protocol_md() {
    use StorageHasher::*;
    let m = ChainMetadata::finney();
    let cases: [(&str, &str, &[StorageHasher]); 8] = [
        ("SubtensorModule", "Keys", &[Identity, Identity]),
        ("SubtensorModule", "Uids", &[Identity, Blake2_128Concat]),
        ("SubtensorModule", "Weights", &[Identity, Identity]),
        ("SubtensorModule", "Bonds", &[Identity, Identity]),
        ("SubtensorModule", "Axons", &[Identity, Blake2_128Concat]),
        (
            "SubtensorModule",
            "TotalHotkeyAlpha",
            &[Blake2_128Concat, Identity],
        ),
        (
            "SubtensorModule",
            "WeightCommits",
            &[Twox64Concat, Twox64Concat],
        ),
        ("Commitments", "CommitmentOf", &[Identity, Twox64Concat]),
    ];
    for (pallet, item, want) in cases {
        let (_, e) = m
            .storage(pallet, item)
            .unwrap_or_else(|| panic!("{pallet}.{item}"));
        let v14::StorageEntryType::Map { hashers, .. } = &e.ty else {
            panic!("{item} is not a map")
        };
        assert_eq!(hashers.as_slice(), want, "{pallet}.{item}");
    }
    let (s, _) = m.storage("System", "Account").unwrap();
    assert_eq!(s.prefix, "System");
    assert!(m.storage("SubtensorModule", "LastEpochBlock").is_none());
}

#[test]
fn the_runtime_version_constant_is_spec_365() {
    let m = ChainMetadata::finney();
    let v = m.constant("System", "Version").unwrap();
    // spec_name and impl_name are SCALE strings; spec_version follows after authoring_version.
    let mut r = v;
    let spec_name = String::decode(&mut r).unwrap();
    let _impl_name = String::decode(&mut r).unwrap();
    let _authoring = u32::decode(&mut r).unwrap();
    let spec_version = u32::decode(&mut r).unwrap();
    assert_eq!((spec_name.as_str(), spec_version), ("node-subtensor", 365));
    assert!(
        m.runtime_api("NeuronInfoRuntimeApi", "get_neurons_lite")
            .is_some()
    );
    assert!(
        m.runtime_api("SubnetInfoRuntimeApi", "get_metagraph")
            .is_some()
    );
    assert!(m.runtime_api("Metadata", "metadata_at_version").is_some());
}

#[test]
fn bad_metadata_bytes_get_typed_errors() {
    assert!(matches!(
        ChainMetadata::from_bytes(b""),
        Err(MetadataError::Decode(_))
    ));
    assert!(matches!(
        ChainMetadata::from_bytes(&[1, 2, 3, 4, 16]),
        Err(MetadataError::Decode(_))
    ));
    let mut wrong_magic = FINNEY_SPEC365.to_vec();
    wrong_magic[0] = b'x';
    assert!(matches!(
        ChainMetadata::from_bytes(&wrong_magic),
        Err(MetadataError::Magic(_))
    ));
    let v14 = ChainMetadata::finney().at_version(14).unwrap();
    assert_eq!(
        ChainMetadata::from_bytes(v14).err(),
        Some(MetadataError::NotV16(14))
    );
    let truncated = &FINNEY_SPEC365[..FINNEY_SPEC365.len() / 2];
    assert!(matches!(
        ChainMetadata::from_bytes(truncated),
        Err(MetadataError::Decode(_))
    ));
}

/// `(pallet, item)` of every storage entry.
fn storage_names(m: &ChainMetadata) -> std::collections::BTreeSet<(String, String)> {
    (m.v16().pallets.iter())
        .flat_map(|p| {
            let entries = p.storage.iter().flat_map(|s| s.entries.iter());
            entries.map(|e| (p.name.clone(), e.name.clone()))
        })
        .collect()
}

fn api_names(m: &ChainMetadata) -> std::collections::BTreeSet<(String, String)> {
    (m.v16().apis.iter())
        .flat_map(|a| a.methods.iter().map(|f| (a.name.clone(), f.name.clone())))
        .collect()
}

#[test]
fn todays_metadata_is_spec_365_plus_exactly_the_listed_additions() {
    use super::super::metadata_today::{ADDED_APIS, ADDED_EXTENSIONS, ADDED_STORAGE};
    let (old, new) = (ChainMetadata::finney(), ChainMetadata::today());
    let added = |a: &[(&str, &str)]| -> std::collections::BTreeSet<(String, String)> {
        a.iter()
            .map(|(p, i)| (p.to_string(), i.to_string()))
            .collect()
    };
    let storage: Vec<_> = storage_names(new)
        .difference(&storage_names(old))
        .cloned()
        .collect();
    assert_eq!(
        storage
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        added(&ADDED_STORAGE)
    );
    assert!(storage_names(old).is_subset(&storage_names(new)));
    let apis: std::collections::BTreeSet<_> = api_names(new)
        .difference(&api_names(old))
        .cloned()
        .collect();
    assert_eq!(apis, added(&ADDED_APIS));
    assert!(api_names(old).is_subset(&api_names(new)));
    // Extensions: spec 365's with each added one after the one it follows.
    let ids = |m: &ChainMetadata| -> Vec<String> {
        let ex = &m.v16().extrinsic;
        ex.transaction_extensions_by_version[&0]
            .iter()
            .map(|i| ex.transaction_extensions[i.0 as usize].identifier.clone())
            .collect()
    };
    let mut want = ids(old);
    for (name, after) in ADDED_EXTENSIONS {
        let at = want.iter().position(|x| x == after).unwrap();
        want.insert(at + 1, name.to_string());
    }
    assert_eq!(ids(new), want);
    assert_eq!(want[9], "CheckShieldedTxValidity");
    // The registry only grows; pallets keep their calls, events, errors and constants (but
    // System.Version, whose spec version is raised).
    let (t_old, t_new) = (&old.types().types, &new.types().types);
    assert!(t_new.len() > t_old.len());
    for (a, b) in old.v16().pallets.iter().zip(&new.v16().pallets) {
        assert_eq!((&a.name, a.index), (&b.name, b.index));
        assert_eq!(
            a.calls.as_ref().map(|c| c.ty.id),
            b.calls.as_ref().map(|c| c.ty.id)
        );
        assert_eq!(
            a.event.as_ref().map(|c| c.ty.id),
            b.event.as_ref().map(|c| c.ty.id)
        );
        assert_eq!(
            a.error.as_ref().map(|c| c.ty.id),
            b.error.as_ref().map(|c| c.ty.id)
        );
        for (x, y) in a.constants.iter().zip(&b.constants) {
            assert_eq!(x.name, y.name);
            assert!(
                x.value == y.value || (a.name.as_str(), x.name.as_str()) == ("System", "Version")
            );
        }
    }
    for (x, y) in t_old.iter().zip(t_new) {
        // The extension tuple gains the new extension; every other type is unchanged.
        if x.ty != y.ty {
            assert!(
                matches!(x.ty.type_def, TypeDef::Tuple(_)),
                "type {} changed",
                x.id
            );
        }
    }
}

#[test]
fn the_added_items_are_typed_as_subtensor_declares_them() {
    use frame_metadata::v16::StorageEntryType;
    let m = ChainMetadata::today();
    let prim_u64 = |id: u32| {
        matches!(
            m.types().resolve(id).unwrap().type_def,
            TypeDef::Primitive(scale_info::TypeDefPrimitive::U64)
        )
    };
    let (_, tempo) = m.storage("SubtensorModule", "Tempo").unwrap();
    let StorageEntryType::Map { key: tempo_key, .. } = &tempo.ty else {
        panic!("Tempo is a map");
    };
    let tempo_key = tempo_key.id;
    for item in ["LastEpochBlock", "PendingEpochAt", "SubnetEpochIndex"] {
        let (_, e) = m.storage("SubtensorModule", item).unwrap();
        let StorageEntryType::Map {
            hashers,
            key,
            value,
        } = &e.ty
        else {
            panic!("{item} is a map");
        };
        assert_eq!(hashers, &vec![StorageHasher::Identity], "{item}");
        // `NetUid`: the key type of every per-subnet map of spec 365 (`Tempo`'s).
        assert_eq!(key.id, tempo_key, "{item} key");
        assert!(prim_u64(value.id), "{item} value");
        assert_eq!(e.default, 0u64.encode());
    }
    let f = m
        .runtime_api("SubnetInfoRuntimeApi", "get_next_epoch_start_block")
        .unwrap();
    assert_eq!(f.inputs.len(), 1);
    assert_eq!(f.inputs[0].ty.id, tempo_key);
    let out = m.types().resolve(f.output.id).unwrap();
    assert_eq!(out.path.segments, ["Option"]);
    assert!(prim_u64(out.type_params[0].ty.unwrap().id));
    let ex = &m.v16().extrinsic.transaction_extensions;
    let shield = ex
        .iter()
        .find(|e| e.identifier == "CheckShieldedTxValidity")
        .unwrap();
    let ty = m.types().resolve(shield.ty.id).unwrap();
    assert_eq!(
        ty.path.segments,
        ["pallet_shield", "extension", "CheckShieldedTxValidity"]
    );
    assert!(matches!(&ty.type_def, TypeDef::Composite(c) if c.fields.is_empty()));
    assert!(
        matches!(&m.types().resolve(shield.implicit.id).unwrap().type_def, TypeDef::Tuple(t) if t.fields.is_empty())
    );
    // V15 and V14 (what the SDK and polkadot.js read) list it too, in place.
    for v in [14_u32, 15] {
        let bytes = m.at_version(v).unwrap();
        let p = RuntimeMetadataPrefixed::decode(&mut &bytes[..]).unwrap();
        let ids: Vec<String> = match p.1 {
            RuntimeMetadata::V14(x) => x
                .extrinsic
                .signed_extensions
                .iter()
                .map(|e| e.identifier.clone())
                .collect(),
            RuntimeMetadata::V15(x) => x
                .extrinsic
                .signed_extensions
                .iter()
                .map(|e| e.identifier.clone())
                .collect(),
            _ => unreachable!(),
        };
        assert_eq!(ids[9], "CheckShieldedTxValidity", "V{v}");
        assert_eq!(ids.len(), 13, "V{v}");
    }
}

#[test]
fn todays_runtime_version_is_spec_425_with_the_subnet_info_api_at_version_2() {
    let v = |m: &ChainMetadata| {
        let c = m.constant("System", "Version").unwrap();
        <(String, String, u32, u32, u32, Vec<([u8; 8], u32)>, u32, u8)>::decode(&mut &c[..])
            .unwrap()
    };
    let (old, new) = (v(ChainMetadata::finney()), v(ChainMetadata::today()));
    assert_eq!((old.3, new.3), (365, 425));
    let id = crate::chain::substrate::hashing::blake2_64(b"SubnetInfoRuntimeApi");
    let api = new.5.iter().find(|(i, _)| *i == id).unwrap();
    assert!(api.1 >= 2);
    assert_eq!((old.0, old.6), (new.0, new.6));
}

/// A tuple type's members, nested tuples flattened (how extension tuples list their parts).
fn flat_tuple(types: &PortableRegistry, id: u32) -> Vec<u32> {
    match &types.resolve(id).unwrap().type_def {
        TypeDef::Tuple(t) => t
            .fields
            .iter()
            .flat_map(|f| flat_tuple(types, f.id))
            .collect(),
        _ => vec![id],
    }
}

#[test]
fn the_extrinsics_extension_tuple_lists_the_extensions_in_order_in_both_runtimes() {
    for m in [ChainMetadata::finney(), ChainMetadata::today()] {
        let (_, extra) = extrinsic_types(m.types()).unwrap();
        let ex = &m.v16().extrinsic;
        let want: Vec<u32> = ex.transaction_extensions_by_version[&0]
            .iter()
            .map(|i| ex.transaction_extensions[i.0 as usize].ty.id)
            .collect();
        let got = flat_tuple(m.types(), extra);
        assert_eq!(got.len(), want.len());
        // A member is the extension's type, or a wrapper of it (spec 365's payment extension:
        // `ChargeTransactionPaymentWrapper` around `ChargeTransactionPayment`).
        for (member, ext) in got.into_iter().zip(want) {
            let wraps = match &m.types().resolve(member).unwrap().type_def {
                TypeDef::Composite(c) => c.fields.len() == 1 && c.fields[0].ty.id == ext,
                _ => false,
            };
            assert!(
                member == ext || wraps,
                "tuple member {member}, extension {ext}"
            );
        }
    }
}
