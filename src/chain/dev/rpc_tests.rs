use super::*;
use crate::chain::dev::DevRuntime;
use crate::chain::dev::calls::encode_call;
use crate::chain::substrate::extrinsic::{Era, sign};
use crate::chain::substrate::hashing::{blake2_128, storage_prefix};
use crate::chain::substrate::metadata::ChainMetadata;
use crate::chain::substrate::scale_check::check_exact;
use crate::chain::{DevChain, DevChainConfig};
use crate::submission::Hotkey;
use frame_metadata::v14::StorageEntryType;
use parity_scale_codec::Compact;
use parity_scale_codec::{Decode, Encode};

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Two registered uids (one staked, with weights and a commitment) at block 5.
fn chain() -> DevChain {
    chain_of(DevRuntime::default())
}

fn chain_of(runtime: DevRuntime) -> DevChain {
    let cfg = DevChainConfig {
        runtime,
        commit_reveal_enabled: false,
        weights_rate_limit: 0,
        ..Default::default()
    };
    let c = DevChain::in_memory(cfg, 9, 0);
    let (v, m) = (Hotkey::dev("v"), Hotkey::dev("m"));
    for k in [&v, &m] {
        run(c.register(k, 102)).unwrap();
    }
    run(c.add_stake(&v, 102, 100.0)).unwrap();
    run(c.set_weights(&v, 102, vec![0, 1], vec![0, 7], 0)).unwrap();
    run(c.set_commitment(&m, 102, b"{\"e\":1}".to_vec())).unwrap();
    for _ in 0..4 {
        c.produce_block().unwrap();
    }
    // The best block (5) holds a success, a module error and a token error (System.Events).
    let ctx = c.signing_context();
    let axon = (
        102_u16,
        1_u32,
        0x0a00_0001_u128,
        8091_u16,
        4_u8,
        0_u8,
        0_u8,
        0_u8,
    );
    let calls = [
        encode_call("SubtensorModule", "serve_axon", axon),
        encode_call("SubtensorModule", "commit_weights", (102_u16, [0u8; 32])),
        encode_call(
            "Balances",
            "transfer_keep_alive",
            (0_u8, m_key(), Compact(5_u64)),
        ),
    ]
    .map(Option::unwrap);
    for (nonce, x) in calls.iter().enumerate() {
        let bytes = sign(&v, x, Era::Immortal, nonce as u32, &ctx, &ctx.genesis);
        c.submit_extrinsic(&bytes).unwrap();
    }
    c.produce_block().unwrap();
    c
}

fn m_key() -> [u8; 32] {
    Hotkey::dev("m").public()
}

fn call(c: &DevChain, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let out = handle_body(c, body.to_string().as_bytes());
    assert_eq!(out["id"], 1);
    out
}

fn result(c: &DevChain, method: &str, params: Value) -> Value {
    let out = call(c, method, params);
    assert!(out.get("error").is_none(), "{method}: {out}");
    out["result"].clone()
}

#[test]
fn connect_sequence_of_the_python_sdk_is_answered() {
    let legacy = chain_of(DevRuntime::Spec365);
    let v = result(&legacy, "state_getRuntimeVersion", json!([null]));
    assert_eq!(v["specVersion"].as_u64(), Some(365));
    let c = chain();
    let v = result(&c, "state_getRuntimeVersion", json!([null]));
    assert_eq!(
        (v["specVersion"].as_u64(), v["transactionVersion"].as_u64()),
        (Some(425), Some(1))
    );
    let genesis = result(&c, "chain_getBlockHash", json!([0]));
    assert_eq!(genesis, json!(hex0x(&c.genesis_hash())));
    let md = result(
        &c,
        "state_call",
        json!(["Metadata_metadata_at_version", "0x0f000000", null]),
    );
    let bytes = parse_hex(md.as_str().unwrap()).unwrap();
    let inner = Option::<Vec<u8>>::decode(&mut &bytes[..]).unwrap().unwrap();
    assert_eq!(&inner[..5], b"meta\x0f");
    // The SDK sends runtime-call data without 0x.
    let md2 = result(
        &c,
        "state_call",
        json!(["Metadata_metadata_at_version", "0f000000", null]),
    );
    assert_eq!(md, md2);
    let head = result(&c, "chain_getHead", json!([]));
    let header = result(&c, "chain_getHeader", json!([head]));
    assert_eq!(header["number"], "0x5");
    assert_eq!(
        header["parentHash"],
        result(&c, "chain_getBlockHash", json!([4]))
    );
    let v = result(&c, "state_getRuntimeVersion", json!([header["parentHash"]]));
    assert_eq!(v["specVersion"], 425);
    let props = result(&c, "system_properties", json!([]));
    assert_eq!(
        props,
        json!({"ss58Format": 42, "tokenDecimals": 9, "tokenSymbol": "TAO"})
    );
    let v14 = result(&c, "state_getMetadata", json!([]));
    let v14 = parse_hex(v14.as_str().unwrap()).unwrap();
    assert_eq!(&v14[..5], b"meta\x0e");
}

#[test]
fn storage_items_are_keyed_and_typed_as_finneys() {
    for runtime in [DevRuntime::Spec365, DevRuntime::Spec425] {
        storage_items_are_keyed_and_typed_as(runtime);
    }
}

fn storage_items_are_keyed_and_typed_as(runtime: DevRuntime) {
    let c = chain_of(runtime);
    let m = runtime.metadata();
    let snapshot = c.storage_snapshot();
    // Every key belongs to a metadata storage item, and its value is one value of that type.
    let mut items = std::collections::BTreeSet::new();
    for (key, value) in snapshot.iter() {
        let (pallet, entry) = m
            .v16()
            .pallets
            .iter()
            .filter_map(|p| p.storage.as_ref().map(|s| (p, s)))
            .flat_map(|(p, s)| s.entries.iter().map(move |e| (p, (s, e))))
            .find(|(_, (s, e))| key.starts_with(&storage_prefix(&s.prefix, &e.name)))
            .map(|(p, (_, e))| (p, e))
            .unwrap_or_else(|| panic!("key {} is no item of {runtime:?}", hex0x(key)));
        let ty = match &entry.ty {
            StorageEntryType::Plain(t) => t.id,
            StorageEntryType::Map { value, .. } => value.id,
        };
        check_exact(m.types(), ty, value)
            .unwrap_or_else(|e| panic!("{}.{}: {e}", pallet.name, entry.name));
        items.insert(format!("{}.{}", pallet.name, entry.name));
    }
    for want in [
        "System.Number",
        "System.Events",
        "System.Account",
        "SubtensorModule.Keys",
        "SubtensorModule.Weights",
        "Commitments.CommitmentOf",
    ] {
        assert!(items.contains(want), "{want} missing: {items:?}");
    }
    // Read back through RPC: the uid of hotkey m (Uids: Identity netuid, Blake2_128Concat hotkey).
    let hk = Hotkey::dev("m").public();
    let mut key = storage_prefix("SubtensorModule", "Uids").to_vec();
    key.extend(102_u16.encode());
    key.extend(blake2_128(&hk));
    key.extend(hk);
    let uid = result(&c, "state_getStorageAt", json!([hex0x(&key), null]));
    assert_eq!(uid, json!("0x0100"));
    // Weights of uid 0 keep the explicit zero: [(0, 0), (1, 65535)].
    let mut key = storage_prefix("SubtensorModule", "Weights").to_vec();
    key.extend(102_u16.encode());
    key.extend(0_u16.encode());
    let w = result(&c, "state_getStorage", json!([hex0x(&key)]));
    let w = Vec::<(u16, u16)>::decode(&mut &parse_hex(w.as_str().unwrap()).unwrap()[..]).unwrap();
    assert_eq!(w, vec![(0, 0), (1, 65535)]);
    let n = result(
        &c,
        "state_getStorage",
        json!([hex0x(&storage_prefix("System", "Number"))]),
    );
    assert_eq!(n, json!("0x05000000"));
}

#[test]
fn keys_are_paged_in_order_and_query_storage_at_reads_them() {
    let c = chain();
    let prefix = hex0x(&storage_prefix("SubtensorModule", "Keys"));
    let all = result(&c, "state_getKeysPaged", json!([prefix, 100, prefix, null]));
    assert_eq!(all.as_array().unwrap().len(), 2);
    let first = result(&c, "state_getKeysPaged", json!([prefix, 1, null]));
    let second = result(&c, "state_getKeysPaged", json!([prefix, 1, first[0]]));
    assert_eq!(json!([first[0], second[0]]), all);
    let none = result(&c, "state_getKeysPaged", json!([prefix, 10, all[1]]));
    assert_eq!(none, json!([]));
    let q = result(&c, "state_queryStorageAt", json!([all, null]));
    let changes = q[0]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0][1], json!(hex0x(&Hotkey::dev("v").public())));
    let symbol = hex0x(&storage_prefix("SubtensorModule", "TokenSymbol"));
    assert_eq!(
        result(&c, "state_getKeysPaged", json!([symbol, 100, symbol, null])),
        json!([])
    );
}

#[test]
fn bad_requests_get_json_rpc_errors() {
    let c = chain();
    let code = |body: &[u8]| handle_body(&c, body)["error"]["code"].as_i64();
    assert_eq!(code(b"{not json"), Some(-32700));
    assert_eq!(code(b"[]"), Some(-32600));
    assert_eq!(code(b"{\"id\":1}"), Some(-32600));
    assert_eq!(
        code(b"{\"id\":1,\"method\":\"x\",\"params\":5}"),
        Some(-32600)
    );
    assert_eq!(code(&vec![b' '; MAX_REQUEST_BYTES + 1]), Some(-32600));
    assert_eq!(
        call(&c, "no_such_method", json!([]))["error"]["code"],
        -32601
    );
    assert_eq!(
        call(&c, "chain_getHeader", json!(["0x12"]))["error"]["code"],
        -32602
    );
    assert_eq!(
        call(&c, "state_getStorage", json!(["0xzz"]))["error"]["code"],
        -32602
    );
    assert_eq!(
        call(&c, "state_getKeysPaged", json!(["0x", 5000]))["error"]["code"],
        -32602
    );
    let unknown_block = hex0x(&[7; 32]);
    assert_eq!(
        call(&c, "state_getRuntimeVersion", json!([unknown_block]))["error"]["code"],
        -32602
    );
    let e = call(&c, "state_call", json!(["Nope_nope", "0x", null]));
    assert_eq!(e["error"]["code"], 4003);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Exported method Nope_nope is not found")
    );
    // A batch answers each call; a future block number is null, not an error.
    let batch = handle_body(
        &c,
        br#"[{"id":1,"method":"chain_getBlockHash","params":[99]},{"id":2,"method":"nope"}]"#,
    );
    assert_eq!(batch[0]["result"], Value::Null);
    assert_eq!(batch[1]["error"]["code"], -32601);
    let methods = result(&c, "rpc_methods", json!([]));
    assert!(methods["methods"].as_array().unwrap().len() >= METHODS.len());
}

#[test]
fn metagraph_and_neuron_apis_are_encoded_with_finneys_types() {
    let c = chain();
    let m = ChainMetadata::finney();
    let calls: [(&str, &str, Vec<u8>); 11] = [
        ("SubnetInfoRuntimeApi", "get_dynamic_info", 102_u16.encode()),
        ("SubnetInfoRuntimeApi", "get_dynamic_info", 0_u16.encode()),
        ("SubnetInfoRuntimeApi", "get_all_dynamic_info", vec![]),
        ("SwapRuntimeApi", "current_alpha_price", 102_u16.encode()),
        (
            "SubnetInfoRuntimeApi",
            "get_subnet_hyperparams",
            102_u16.encode(),
        ),
        (
            "SubnetInfoRuntimeApi",
            "get_subnet_hyperparams_v2",
            102_u16.encode(),
        ),
        ("NeuronInfoRuntimeApi", "get_neurons_lite", 102_u16.encode()),
        (
            "NeuronInfoRuntimeApi",
            "get_neuron_lite",
            (102_u16, 1_u16).encode(),
        ),
        (
            "NeuronInfoRuntimeApi",
            "get_neuron_lite",
            (102_u16, 9_u16).encode(),
        ),
        ("SubnetInfoRuntimeApi", "get_metagraph", 102_u16.encode()),
        ("SubnetInfoRuntimeApi", "get_metagraph", 7_u16.encode()),
    ];
    for (api, method, args) in calls {
        let name = format!("{api}_{method}");
        let out = result(&c, "state_call", json!([name, hex::encode(&args), null]));
        let bytes = parse_hex(out.as_str().unwrap()).unwrap();
        let ty = m.runtime_api(api, method).unwrap().output.id;
        check_exact(m.types(), ty, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Two neurons; uid 0 staked 100 (in rao), with hotkey v.
    let out = result(
        &c,
        "state_call",
        json!(["NeuronInfoRuntimeApi_get_neurons_lite", "6600", null]),
    );
    let bytes = parse_hex(out.as_str().unwrap()).unwrap();
    let mut r = &bytes[..];
    assert_eq!(
        parity_scale_codec::Compact::<u32>::decode(&mut r)
            .unwrap()
            .0,
        2
    );
    assert_eq!(
        <[u8; 32]>::decode(&mut r).unwrap(),
        Hotkey::dev("v").public()
    );
    // Unknown subnet: an empty list; missing uid: None; metagraph of another netuid: None.
    let empty = result(
        &c,
        "state_call",
        json!(["NeuronInfoRuntimeApi_get_neurons_lite", "0700", null]),
    );
    assert_eq!(empty, "0x00");
    let none = result(
        &c,
        "state_call",
        json!(["SubnetInfoRuntimeApi_get_metagraph", "0x0700", null]),
    );
    assert_eq!(none, "0x00");
    // Bad arguments are an execution error, not a crash.
    let e = call(
        &c,
        "state_call",
        json!(["SubnetInfoRuntimeApi_get_metagraph", "0x66", null]),
    );
    assert_eq!(e["error"]["code"], 4003);
    let e = call(
        &c,
        "state_call",
        json!(["SubnetInfoRuntimeApi_get_metagraph", "0x660000", null]),
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("left over"),
        "{e}"
    );
}

#[test]
fn every_runtime_api_devnet_answers_is_in_the_metadata_of_its_runtime() {
    // Spec 365 lacks only what today's runtime added; devnet does not answer those there.
    let legacy = chain_of(DevRuntime::Spec365);
    for name in crate::chain::DEV_RUNTIME_APIS {
        let (api, method) = name.split_once('_').unwrap();
        let added = crate::chain::substrate::metadata_today::ADDED_APIS.contains(&(api, method));
        let has = ChainMetadata::finney().runtime_api(api, method).is_some();
        assert_eq!(has, !added, "{name}");
        if added {
            let e = call(&legacy, "state_call", json!([name, "0x6600"]));
            assert!(
                e["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("not found"),
                "{e}"
            );
        }
    }
    let m = ChainMetadata::today();
    let names = crate::chain::DEV_RUNTIME_APIS.iter().chain(&[
        "Core_version",
        "Metadata_metadata",
        "Metadata_metadata_versions",
        "Metadata_metadata_at_version",
    ]);
    for name in names {
        let (api, method) = name.split_once('_').unwrap();
        assert!(
            m.runtime_api(api, method).is_some(),
            "{name} is not in today's metadata"
        );
    }
}

#[test]
fn batches_and_key_lists_are_bounded() {
    let c = chain();
    let call = |method: &str, id: usize| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": []});
    let too_many: Vec<Value> = (0..MAX_BATCH + 1)
        .map(|i| call("chain_getHead", i))
        .collect();
    let out = handle_body(&c, json!(too_many).to_string().as_bytes());
    assert_eq!(out["error"]["code"], -32600);
    // 0.6 MB of hex each: the response stops growing past MAX_RESPONSE_BYTES.
    let big: Vec<Value> = (0..MAX_BATCH)
        .map(|i| call("state_getMetadata", i))
        .collect();
    let out = handle_body(&c, json!(big).to_string().as_bytes());
    let answers = out.as_array().unwrap();
    assert_eq!(answers.len(), MAX_BATCH);
    assert!(answers[0].get("result").is_some());
    assert_eq!(answers[MAX_BATCH - 1]["error"]["code"], -32600);
    assert_eq!(answers[MAX_BATCH - 1]["id"], MAX_BATCH - 1);
    assert!(out.to_string().len() < MAX_RESPONSE_BYTES + (2 << 20));
    let keys: Vec<String> = (0..MAX_KEYS_PAGE + 1).map(|_| "0x00".to_string()).collect();
    let e = handle_body(
        &c,
        json!({"id": 1, "method": "state_queryStorageAt", "params": [keys]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(e["error"]["code"], -32602);
}

#[test]
fn rpc_methods_lists_the_subscriptions_polkadot_js_needs() {
    let c = chain();
    let methods = result(&c, "rpc_methods", json!([]));
    let methods: Vec<&str> = methods["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    // polkadot.js deletes every api.rpc method not listed here.
    for m in [
        "chain_subscribeNewHeads",
        "chain_unsubscribeNewHeads",
        "author_submitAndWatchExtrinsic",
        "state_subscribeStorage",
        "state_unsubscribeStorage",
        "system_accountNextIndex",
    ] {
        assert!(methods.contains(&m), "{m} not in {methods:?}");
    }
    assert_eq!(methods.len(), METHODS.len() + SUBSCRIPTION_METHODS.len());
}

#[test]
fn storage_subscriptions_send_every_key_then_only_changes() {
    let block = [7u8; 32];
    let keys = vec![vec![1u8], vec![2u8, 3]];
    let first = vec![Some(vec![9u8]), None];
    let set = storage_change_set(&block, &keys, None, &first).unwrap();
    assert_eq!(
        set,
        json!({"block": hex0x(&block), "changes": [["0x01", "0x09"], ["0x0203", null]]})
    );
    assert_eq!(
        storage_change_set(&block, &keys, Some(&first), &first),
        None
    );
    let next = vec![Some(vec![9u8]), Some(vec![])];
    let set = storage_change_set(&block, &keys, Some(&first), &next).unwrap();
    assert_eq!(set["changes"], json!([["0x0203", "0x"]]));
    let removed = vec![None, Some(vec![])];
    let set = storage_change_set(&block, &keys, Some(&next), &removed).unwrap();
    assert_eq!(set["changes"], json!([["0x01", null]]));

    let req = |params: Value| parse_request(&json!({"id": 1, "method": "m", "params": params}));
    let keys = storage_subscription_keys(&req(json!([["0x01", "0203"]])).unwrap()).unwrap();
    assert_eq!(keys, vec![vec![1u8], vec![2, 3]]);
    for bad in [json!([]), json!([[]]), json!([[1]]), json!([["0xz"]])] {
        let e = storage_subscription_keys(&req(bad.clone()).unwrap()).unwrap_err();
        assert_eq!(e.code(), -32602, "{bad}");
    }
    let many: Vec<String> = (0..=MAX_KEYS_PAGE).map(|_| "0x00".into()).collect();
    assert!(storage_subscription_keys(&req(json!([many])).unwrap()).is_err());
}
