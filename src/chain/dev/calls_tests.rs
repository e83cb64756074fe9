use parity_scale_codec::Encode;

use super::*;

fn call(pallet: &str, name: &str, args: impl Encode) -> Vec<u8> {
    encode_call(pallet, name, args).unwrap_or_else(|| panic!("{pallet}.{name}"))
}

#[test]
fn every_supported_call_is_in_finney_with_the_indices_used() {
    let m = ChainMetadata::finney();
    for (pallet, name) in SUPPORTED_CALLS {
        let (p, c) = m.call_index(pallet, name).expect("in finney");
        assert_eq!(call_name(&[p, c]), Some((*pallet, *name)));
    }
    // The indices the SDK traces show.
    assert_eq!(
        m.call_index("SubtensorModule", "burned_register"),
        Some((7, 7))
    );
    assert_eq!(m.call_index("Commitments", "set_commitment"), Some((18, 0)));
}

#[test]
fn decodes_each_supported_call() {
    let hk = [5u8; 32];
    let table: Vec<(Vec<u8>, DevCall)> = vec![
        (
            call("SubtensorModule", "burned_register", (102_u16, hk)),
            DevCall::BurnedRegister {
                netuid: 102,
                hotkey: hk,
            },
        ),
        (
            call("SubtensorModule", "add_stake", (hk, 102_u16, 7_u64)),
            DevCall::AddStake {
                hotkey: hk,
                netuid: 102,
                amount: 7,
            },
        ),
        (
            call(
                "SubtensorModule",
                "set_weights",
                (102_u16, vec![0_u16, 1], vec![1_u16, 2], 3_u64),
            ),
            DevCall::SetWeights {
                netuid: 102,
                dests: vec![0, 1],
                weights: vec![1, 2],
                version_key: 3,
            },
        ),
        (
            call("SubtensorModule", "commit_weights", (102_u16, [1u8; 32])),
            DevCall::CommitWeights {
                netuid: 102,
                hash: [1; 32],
            },
        ),
        (
            call(
                "SubtensorModule",
                "reveal_weights",
                (102_u16, vec![0_u16], vec![9_u16], vec![4_u16, 5], 0_u64),
            ),
            DevCall::RevealWeights {
                netuid: 102,
                reveal: Reveal {
                    uids: vec![0],
                    values: vec![9],
                    salt: vec![4, 5],
                    version_key: 0,
                },
            },
        ),
        (
            call(
                "Balances",
                "transfer_keep_alive",
                (0_u8, hk, Compact(10_u64)),
            ),
            DevCall::Transfer {
                dest: Some(hk),
                value: 10,
                keep_alive: true,
            },
        ),
        (
            call(
                "Balances",
                "transfer_allow_death",
                (1_u8, Compact(3_u32), Compact(10_u64)),
            ),
            DevCall::Transfer {
                dest: None,
                value: 10,
                keep_alive: false,
            },
        ),
        (
            call(
                "SubtensorModule",
                "serve_axon",
                (
                    102_u16,
                    1_u32,
                    0x7f00_0001_u128,
                    8091_u16,
                    4_u8,
                    0_u8,
                    0_u8,
                    0_u8,
                ),
            ),
            DevCall::ServeAxon {
                netuid: 102,
                axon: Axon {
                    block: 0,
                    version: 1,
                    ip: 0x7f00_0001,
                    port: 8091,
                    ip_type: 4,
                    ..Axon::default()
                },
            },
        ),
    ];
    for (bytes, want) in table {
        assert_eq!(decode_call(&bytes).unwrap(), want);
    }
}

#[test]
fn commitment_fields() {
    // One Raw3 field, one BigRaw, one Sha256.
    let mut info = vec![102, 0, 12];
    info.extend([4, b'a', b'b', b'c']);
    info.push(136);
    info.extend(vec![1u8, 2].encode());
    info.push(131);
    info.extend([0u8; 32]);
    let mut bytes = call("Commitments", "set_commitment", ());
    bytes.extend(info);
    assert_eq!(
        decode_call(&bytes).unwrap(),
        DevCall::SetCommitment {
            netuid: 102,
            fields: vec![
                CommitmentField::Raw(b"abc".to_vec()),
                CommitmentField::Raw(vec![1, 2]),
                CommitmentField::Other(131),
            ],
        }
    );
}

#[test]
fn bad_calls_have_typed_errors() {
    let mut trailing = call("SubtensorModule", "commit_weights", (102_u16, [1u8; 32]));
    trailing.push(0);
    let short = call("SubtensorModule", "commit_weights", (102_u16, [1u8; 16]));
    let mut huge_count = call("Commitments", "set_commitment", 102_u16);
    huge_count.extend(Compact(1_000_000_u32).encode());
    let mut bad_data = call("Commitments", "set_commitment", 102_u16);
    bad_data.extend([4, 200]);
    let unsupported = call("SubtensorModule", "remove_stake", (0u8,));
    let remark = call("System", "remark", vec![1u8]);
    let table: Vec<(&str, Vec<u8>, i64)> = vec![
        ("trailing bytes", trailing, 1001),
        ("short argument", short, 1001),
        ("field count past the input", huge_count, 1001),
        ("unknown Data variant", bad_data, 1001),
        ("no such pallet", vec![250, 0], 1001),
        ("no such call", vec![7, 255], 1001),
        ("one byte", vec![7], 1001),
        ("finney call devnet does not run", unsupported, 1010),
        ("System.remark", remark, 1010),
    ];
    for (name, bytes, code) in table {
        let e = decode_call(&bytes).expect_err(name);
        assert_eq!(e.code(), code, "{name}: {e}");
    }
}
