use super::*;

fn ctx() -> SigningContext {
    SigningContext {
        spec_version: 365,
        transaction_version: 1,
        genesis: [7; 32],
    }
}

/// `SubtensorModule.burned_register(102, hotkey)`.
fn call() -> Vec<u8> {
    let mut c = vec![7, 7];
    c.extend(102_u16.to_le_bytes());
    c.extend([9; 32]);
    c
}

#[test]
fn era_encodings_match_substrate() {
    // (period, current) -> bytes, from Substrate's own tests and an SDK trace (finalized #3).
    let table: &[(u64, u64, &[u8])] = &[(64, 42, &[0xa5, 0x02]), (128, 3, &[0x36, 0x00])];
    for &(period, current, bytes) in table {
        let era = Era::mortal(period, current);
        assert_eq!(era.encode(), bytes, "period {period} at {current}");
        assert_eq!(Era::decode(&mut &bytes[..]).unwrap(), era);
    }
    assert_eq!(Era::Immortal.encode(), vec![0]);
    assert_eq!(Era::decode(&mut &[0u8][..]).unwrap(), Era::Immortal);
}

#[test]
fn era_birth_table() {
    let m = Era::mortal(128, 3);
    // (block being built, birth)
    for (current, birth) in [(3, 3), (4, 3), (130, 3), (131, 131), (2, 3)] {
        assert_eq!(m.birth(current), birth, "current {current}");
    }
    assert_eq!(Era::Immortal.birth(1000), 0);
}

#[test]
fn era_rejects_phase_past_period() {
    // period 4 (low bits 1), phase 5.
    let v: u16 = 1 | (5 << 4);
    let bytes = v.to_le_bytes();
    assert!(matches!(
        Era::decode(&mut &bytes[..]),
        Err(ExtrinsicError::BadFormat(_))
    ));
}

#[test]
fn signed_roundtrip_verifies() {
    let key = Hotkey::dev("alice");
    let era = Era::mortal(128, 10);
    let birth = [3; 32];
    let bytes = sign(&key, &call(), era, 5, &ctx(), &birth);
    let x = decode(&bytes).unwrap();
    let s = x.signed.unwrap();
    assert_eq!(x.call, call());
    assert_eq!((s.signer, s.era, s.nonce, s.tip), (key.public(), era, 5, 0));
    assert!(signature_ok(&x.call, &s, &ctx(), &birth));
}

#[test]
fn signature_covers_every_implicit_field() {
    let key = Hotkey::dev("alice");
    let birth = [3; 32];
    let bytes = sign(&key, &call(), Era::Immortal, 0, &ctx(), &birth);
    let x = decode(&bytes).unwrap();
    let s = x.signed.unwrap();
    let mut other_spec = ctx();
    other_spec.spec_version = 366;
    let mut other_tx = ctx();
    other_tx.transaction_version = 2;
    let mut other_genesis = ctx();
    other_genesis.genesis = [8; 32];
    for c in [other_spec, other_tx, other_genesis] {
        assert!(!signature_ok(&x.call, &s, &c, &birth));
    }
    assert!(!signature_ok(&x.call, &s, &ctx(), &[4; 32]));
    let mut tampered = x.call.clone();
    tampered[4] ^= 1;
    assert!(!signature_ok(&tampered, &s, &ctx(), &birth));
}

#[test]
fn long_payloads_are_hashed_before_signing() {
    let key = Hotkey::dev("bob");
    let mut long_call = vec![18, 0];
    long_call.extend([1; 300]);
    let bytes = sign(&key, &long_call, Era::Immortal, 0, &ctx(), &[0; 32]);
    let s = decode(&bytes).unwrap().signed.unwrap();
    let payload = signing_payload(&long_call, &s, &ctx(), &[0; 32]);
    assert_eq!(payload.len(), 32);
    assert!(signature_ok(&long_call, &s, &ctx(), &[0; 32]));
}

#[test]
fn bad_inputs_have_typed_errors() {
    let good = sign(
        &Hotkey::dev("a"),
        &call(),
        Era::Immortal,
        0,
        &ctx(),
        &[0; 32],
    );
    let mut wrong_len = good.clone();
    wrong_len.push(0);
    let mut v5 = good.clone();
    v5[2] = 0x85;
    let mut index_address = good.clone();
    index_address[3] = 1;
    let mut ed25519 = good.clone();
    ed25519[36] = 0;
    let table: Vec<(&str, Vec<u8>, i64)> = vec![
        ("empty", vec![], 1001),
        ("length mismatch", wrong_len, 1001),
        ("truncated", good[..40].to_vec(), 1001),
        ("version 5", v5, 1001),
        ("account index address", index_address, 1011),
        ("ed25519 signature", ed25519, 1010),
        ("oversized", vec![0; MAX_EXTRINSIC_BYTES + 1], 1010),
    ];
    for (name, bytes, code) in table {
        let e = decode(&bytes).expect_err(name);
        assert_eq!(e.code(), code, "{name}: {e}");
    }
}

#[test]
fn unsigned_extrinsics_decode_without_signature() {
    let mut body = vec![UNSIGNED_V4];
    body.extend(call());
    let mut bytes = Compact(body.len() as u32).encode();
    bytes.extend(body);
    let x = decode(&bytes).unwrap();
    assert!(x.signed.is_none());
    assert_eq!(x.call, call());
}

#[test]
fn node_error_texts() {
    let e = ExtrinsicError::Invalid(InvalidTransaction::BadProof);
    assert_eq!(
        e.message_and_data(),
        (
            "Invalid Transaction".to_string(),
            Some("Transaction has a bad signature".to_string())
        )
    );
    assert_eq!(e.code(), 1010);
}
