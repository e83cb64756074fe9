//! Golden bytes: what the subxt client puts on the wire for finney's runtime (spec 365, the
//! metadata in `../shared/data`), against bytes written out by hand from the SCALE layout
//! (`PROTOCOL.md` §6: pallet and call indices, argument types, extension order), and against
//! devnet's own decoder and signature check.

use std::sync::Arc;

use subxt::config::substrate::SpecVersionForRange;

use super::*;
use crate::chain::substrate::extrinsic::{self, Era, SigningContext};
use crate::chain::substrate::metadata::ChainMetadata;

const GENESIS: [u8; 32] = [0x11; 32];
const BIRTH: [u8; 32] = [0x22; 32];

fn offline() -> subxt::OfflineClient<Subtensor> {
    let bytes = ChainMetadata::finney().at_version(16).expect("V16");
    let md = subxt::Metadata::decode_from(bytes).expect("finney metadata decodes");
    let cfg = SubstrateConfig::builder()
        .set_genesis_hash(H256(GENESIS))
        .set_spec_version_for_block_ranges([SpecVersionForRange {
            block_range: 0..u64::MAX,
            spec_version: 365,
            transaction_version: 1,
        }])
        .set_metadata_for_spec_versions([(365, Arc::new(md))])
        .build();
    subxt::OfflineClient::new_with_config(Subtensor(cfg))
}

fn call_bytes<P: subxt::tx::Payload>(p: &P) -> Vec<u8> {
    offline()
        .at_block(100u64)
        .unwrap()
        .tx()
        .call_data(p)
        .unwrap()
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

#[test]
fn calls_encode_as_the_scale_layout_says() {
    let rows: Vec<(Vec<u8>, &str)> = vec![
        (
            call_bytes(&subxt::dynamic::tx(
                "SubtensorModule",
                "set_weights",
                (102u16, vec![0u16, 1], vec![6553u16, 65535], 7u64),
            )),
            // pallet 7, call 0; netuid u16; Vec<u16> dests; Vec<u16> weights; version_key u64
            "07 00 6600 08 0000 0100 08 9919 ffff 0700000000000000",
        ),
        (
            call_bytes(&subxt::dynamic::tx(
                "SubtensorModule",
                "commit_weights",
                (102u16, H256([0xab; 32])),
            )),
            "07 60 6600 abababababababababababababababababababababababababababababababab",
        ),
        (
            call_bytes(&subxt::dynamic::tx(
                "SubtensorModule",
                "reveal_weights",
                (102u16, vec![1u16], vec![65535u16], vec![9u16, 10], 0u64),
            )),
            // call 97; uids, values, salt, version_key
            "07 61 6600 04 0100 04 ffff 08 0900 0a00 0000000000000000",
        ),
        (
            call_bytes(&subxt::dynamic::tx(
                "SubtensorModule",
                "serve_axon",
                (102u16, 1u32, 0x0a000001u128, 8091u16, 4u8, 0u8, 0u8, 0u8),
            )),
            // call 4; version u32; ip u128; port u16; ip_type, protocol, placeholders u8
            "07 04 6600 01000000 0100000a000000000000000000000000 9b1f 04 00 00 00",
        ),
        (
            call_bytes(&submit::set_commitment(102, b"hello").unwrap()),
            // Commitments (18) call 0; netuid; fields: Vec<Data> of one Raw5 (index 6) + bytes
            "12 00 6600 04 06 68656c6c6f",
        ),
        (
            call_bytes(&subxt::dynamic::tx(
                "SubtensorModule",
                "burned_register",
                (102u16, AccountId32([0x33; 32])),
            )),
            "07 07 6600 3333333333333333333333333333333333333333333333333333333333333333",
        ),
    ];
    for (got, want) in rows {
        assert_eq!(hex::encode(&got), hex::encode(h(want)));
    }
}

#[test]
fn the_signed_payload_is_subtensors_extension_order() {
    let key = crate::wallet::dev_key("//Alice").unwrap();
    let call = subxt::dynamic::tx(
        "SubtensorModule",
        "commit_weights",
        (102u16, H256([0xab; 32])),
    );
    let client = offline();
    let at = client.at_block(100u64).unwrap();
    let head = BlockInfo {
        number: 100,
        hash: BIRTH,
    };
    let mut signable = at
        .tx()
        .create_signable_offline(&call, ext_params(5, &head))
        .unwrap();
    let payload = signable.signer_payload().unwrap();
    let era = Era::mortal(MORTAL_PERIOD, 100).encode();
    let mut want = h("07 60 6600");
    want.extend([0xab; 32]);
    want.extend(&era); // CheckMortality: era
    want.extend(h("14 00 00")); // CheckNonce Compact(5); ChargeTransactionPayment tip 0; mode 0
    want.extend(365u32.to_le_bytes()); // CheckSpecVersion (implicit)
    want.extend(1u32.to_le_bytes()); // CheckTxVersion (implicit)
    want.extend(GENESIS); // CheckGenesis (implicit)
    want.extend(BIRTH); // CheckMortality (implicit): the birth block's hash
    want.push(0); // CheckMetadataHash (implicit): None
    assert_eq!(hex::encode(&payload), hex::encode(&want));

    // The whole extrinsic decodes with devnet's decoder and its signature checks out.
    let signed = signable.sign(&Signer(&key)).unwrap();
    let xt = extrinsic::decode(signed.encoded()).unwrap();
    let s = xt.signed.expect("signed");
    assert_eq!(s.signer, key.public());
    assert_eq!((s.nonce, s.tip, s.metadata_hash_mode), (5, 0, 0));
    let ctx = SigningContext {
        spec_version: 365,
        transaction_version: 1,
        genesis: GENESIS,
    };
    assert!(extrinsic::signature_ok(&xt.call, &s, &ctx, &BIRTH));
    assert!(!extrinsic::signature_ok(&xt.call, &s, &ctx, &[0; 32]));
}

#[test]
fn the_commit_hash_is_blake2_of_the_scale_tuple() {
    // (account, netuid_index u16, uids, values, salt: Vec<u16>, version_key u64), hashed with
    // blake2b-256; the digest was computed outside connito (Python hashlib) from these bytes.
    let alice = crate::chain::DEV_ACCOUNTS[0].1;
    let pre = crate::chain::commit_preimage(&alice, 102, &[0, 1], &[6553, 65535], &[7; 8], 0);
    assert_eq!(
        hex::encode(&pre),
        "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d\
         6600 0800000100 089919ffff 2007000700070007000700070007000700 0000000000000000"
            .replace(' ', "")
    );
    assert_eq!(
        hex::encode(crate::chain::commit_hash(
            &alice,
            102,
            &[0, 1],
            &[6553, 65535],
            &[7; 8],
            0
        )),
        "faec605381736f041a4a83c5187b05f36c04b0e3998f1999bf96f154d9d310e8"
    );
}
