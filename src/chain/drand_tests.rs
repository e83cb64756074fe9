use super::*;

/// Quicknet round 1000, from `pallets/drand/src/tests.rs` (`DRAND_PULSE`).
const ROUND_1000_SIGNATURE: [u8; 48] = hex_bytes(
    "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39",
);
const ROUND_1000_RANDOMNESS: [u8; 32] =
    hex_bytes("fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd");
/// Quicknet round 2000, from `pallets/commitments/src/mock.rs` (`DRAND_QUICKNET_SIG_2000_HEX`).
const ROUND_2000_SIGNATURE: [u8; 48] = hex_bytes(
    "b6cb8f482a0b15d45936a4c4ea08e98a087e71787caee3f4d07a8a9843b1bc5423c6b3c22f446488b3137eaca799c77e",
);
/// The pallet's "bad signature" pulse for round 1000 (`it_rejects_invalid_pulse_due_to_bad_signature`).
const BAD_ROUND_1000_SIGNATURE: [u8; 48] = hex_bytes(
    "b0a8b04e009cf72534321aca0f50048da596a3feec1172a0244d9a4a623a3123d0402da79854d4c705e94bc73224c341",
);

#[test]
fn quicknet_constants_are_the_pallets_default_beacon_config() {
    // `DefaultBeaconConfig`'s public key, byte by byte.
    let pallet_key: [u8; 96] = [
        131, 207, 15, 40, 150, 173, 238, 126, 184, 181, 240, 31, 202, 211, 145, 34, 18, 196, 55,
        224, 7, 62, 145, 31, 185, 0, 34, 211, 231, 96, 24, 60, 140, 75, 69, 11, 106, 10, 108, 58,
        198, 165, 119, 106, 45, 16, 100, 81, 13, 31, 236, 117, 140, 146, 28, 194, 43, 14, 23, 230,
        58, 175, 75, 203, 94, 214, 99, 4, 222, 156, 248, 9, 189, 39, 76, 167, 59, 171, 74, 245,
        166, 233, 199, 106, 75, 192, 158, 118, 234, 232, 153, 30, 245, 236, 228, 90,
    ];
    assert_eq!(QUICKNET_PUBLIC_KEY, pallet_key);
    assert_eq!((QUICKNET_GENESIS, QUICKNET_PERIOD), (1_692_803_367, 3));
    assert_eq!(QUICKNET_SCHEME.len(), 24);
}

#[test]
fn quicknet_chain_hash_is_computed_as_drand_does() {
    assert_eq!(
        BeaconConfiguration::quicknet().chain_hash(),
        QUICKNET_CHAIN_HASH
    );
}

#[test]
fn quicknet_round_1000_verifies_and_its_randomness_is_sha256_of_the_signature() {
    assert_eq!(
        verify(&QUICKNET_PUBLIC_KEY, 1000, &ROUND_1000_SIGNATURE),
        Ok(())
    );
    let pulse = Pulse::from_signature(1000, ROUND_1000_SIGNATURE);
    assert_eq!(pulse.randomness, ROUND_1000_RANDOMNESS);
    assert_eq!(pulse.verify(&QUICKNET_PUBLIC_KEY), Ok(()));
}

#[test]
fn quicknet_round_2000_from_the_commitments_pallet_verifies() {
    assert_eq!(
        verify(&QUICKNET_PUBLIC_KEY, 2000, &ROUND_2000_SIGNATURE),
        Ok(())
    );
}

#[test]
fn a_signature_signs_its_own_round_only() {
    for round in [0, 999, 1001, 2000] {
        assert_eq!(
            verify(&QUICKNET_PUBLIC_KEY, round, &ROUND_1000_SIGNATURE),
            Err(DrandError::SignatureMismatch { round }),
        );
    }
}

#[test]
fn the_pallets_bad_signature_pulse_is_refused() {
    // Not a point of G1 at all: refused before any pairing.
    assert_eq!(
        verify(&QUICKNET_PUBLIC_KEY, 1000, &BAD_ROUND_1000_SIGNATURE),
        Err(DrandError::BadSignature),
    );
}

#[test]
fn a_flipped_bit_is_refused_with_a_typed_error() {
    // Low bits of x: most flips leave no point on the curve (BadSignature), the rest another
    // point, in G1 or not; none verifies.
    for (byte, bit) in [(47, 0), (47, 7), (30, 3), (1, 0)] {
        let mut sig = ROUND_1000_SIGNATURE;
        sig[byte] ^= 1 << bit;
        let err = verify(&QUICKNET_PUBLIC_KEY, 1000, &sig).unwrap_err();
        assert!(
            matches!(
                err,
                DrandError::BadSignature | DrandError::SignatureMismatch { round: 1000 }
            ),
            "byte {byte} bit {bit}: {err:?}"
        );
    }
    // Clearing the compression flag is an encoding error.
    let mut sig = ROUND_1000_SIGNATURE;
    sig[0] &= 0x7f;
    assert_eq!(
        verify(&QUICKNET_PUBLIC_KEY, 1000, &sig),
        Err(DrandError::BadSignature)
    );
    let mut key = QUICKNET_PUBLIC_KEY;
    key[95] ^= 1;
    assert!(verify(&key, 1000, &ROUND_1000_SIGNATURE).is_err());
}

#[test]
fn garbage_bytes_are_encoding_errors() {
    assert_eq!(
        verify(&[0xff; 96], 1000, &ROUND_1000_SIGNATURE),
        Err(DrandError::BadPublicKey)
    );
    assert_eq!(
        verify(&[0; 96], 1000, &ROUND_1000_SIGNATURE),
        Err(DrandError::BadPublicKey)
    );
    assert_eq!(
        verify(&QUICKNET_PUBLIC_KEY, 1000, &[0xff; 48]),
        Err(DrandError::BadSignature)
    );
    assert_eq!(
        verify(&QUICKNET_PUBLIC_KEY, 1000, &[0; 48]),
        Err(DrandError::BadSignature)
    );
    // The infinity flag with other bits set: arkworks reads it as infinity, we refuse it.
    let mut sig = [0u8; 48];
    sig[0] = 0xc0;
    sig[47] = 1;
    assert_eq!(
        verify(&QUICKNET_PUBLIC_KEY, 1000, &sig),
        Err(DrandError::BadSignature)
    );
    // The field modulus p as x: not a field element.
    let mut sig = hex_bytes::<48>(
        "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab",
    );
    sig[0] |= 0x80;
    assert_eq!(
        verify(&QUICKNET_PUBLIC_KEY, 1000, &sig),
        Err(DrandError::BadSignature)
    );
}

#[test]
fn the_zero_public_key_is_refused_though_the_zero_signature_would_match_it() {
    let mut zero_key = [0u8; 96];
    zero_key[0] = 0xc0; // compressed point at infinity
    let mut zero_sig = [0u8; 48];
    zero_sig[0] = 0xc0;
    assert_eq!(
        verify(&zero_key, 7, &zero_sig),
        Err(DrandError::BadPublicKey)
    );
    assert_eq!(
        verify(&QUICKNET_PUBLIC_KEY, 7, &zero_sig),
        Err(DrandError::SignatureMismatch { round: 7 })
    );
}

#[test]
fn a_seeded_beacon_signs_rounds_that_verify_under_its_key_only() {
    let beacon = Beacon::from_seed(&[7; 32]);
    let key = beacon.public_key();
    for round in [1, 2, 1000, u64::MAX] {
        let sig = beacon.sign(round);
        assert_eq!(verify(&key, round, &sig), Ok(()), "round {round}");
        assert_eq!(
            verify(&QUICKNET_PUBLIC_KEY, round, &sig),
            Err(DrandError::SignatureMismatch { round })
        );
        assert_eq!(beacon.pulse(round).verify(&key), Ok(()));
    }
    assert_eq!(
        verify(&key, 1000, &ROUND_1000_SIGNATURE),
        Err(DrandError::SignatureMismatch { round: 1000 })
    );
}

#[test]
fn a_beacon_is_a_function_of_its_seed() {
    let a = Beacon::from_seed(&[1; 32]);
    assert_eq!(a.public_key(), Beacon::from_seed(&[1; 32]).public_key());
    assert_eq!(a.sign(5), Beacon::from_seed(&[1; 32]).sign(5));
    assert_ne!(a.public_key(), Beacon::from_seed(&[2; 32]).public_key());
    assert_ne!(a.sign(5), a.sign(6));
}

#[test]
fn the_seed_derivation_is_frozen() {
    // Devnet's beacon key must not change under it between versions.
    let beacon = Beacon::from_seed(&[0; 32]);
    assert_eq!(
        hex::encode(beacon.public_key()),
        "93d459c513dfc4804e825c4d1c943a9273386ffe84d4d0c59b7b3fc44496bf185d045be40d6382771a41262ffd\
         250ffe0ef2a5c462a3c16788453d668299061d91f5bdc3ecedfe1c31e4f07b9ce51a94195b2259a852ccc960c22a\
         5ce91b2873"
    );
    assert_eq!(
        hex::encode(beacon.sign(1)),
        "89ca2706a704b594d01c86e509985d1697223ac1381da8565b2f2ba989df29c6a7fb6394f6f2082bc8794b48b5196add"
    );
}

#[test]
fn debug_shows_the_public_key_and_not_the_secret() {
    let beacon = Beacon::from_seed(&[3; 32]);
    let shown = format!("{beacon:?}");
    assert!(shown.contains(&hex::encode(beacon.public_key())), "{shown}");
    let mut secret = Vec::new();
    beacon.secret.serialize_compressed(&mut secret).unwrap();
    assert!(!shown.contains(&hex::encode(&secret)), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn a_pulse_with_wrong_randomness_is_refused() {
    let mut pulse = Pulse::from_signature(1000, ROUND_1000_SIGNATURE);
    pulse.randomness[0] ^= 1;
    assert_eq!(
        pulse.verify(&QUICKNET_PUBLIC_KEY),
        Err(DrandError::RandomnessMismatch { round: 1000 })
    );
}

#[test]
fn round_at_and_round_time_table() {
    let g = QUICKNET_GENESIS;
    // (unix seconds, round at that time)
    let table = [
        (0, 0),
        (g - 1, 0),
        (g, 1),
        (g + 1, 1),
        (g + 2, 1),
        (g + 3, 2),
        (g + 5, 2),
        (g + 6, 3),
        (g + 2997, 1000),
        (g + 2999, 1000),
        (g + 3000, 1001),
        (u64::MAX, (u64::MAX - g) / 3 + 1),
    ];
    for (now, round) in table {
        assert_eq!(round_at(now), round, "at {now}");
    }
    // (round, its time)
    for (round, time) in [
        (0, g),
        (1, g),
        (2, g + 3),
        (1000, g + 2997),
        (u64::MAX, u64::MAX),
    ] {
        assert_eq!(round_time(round), time, "round {round}");
    }
    for round in [1, 2, 1000, 123_456_789] {
        assert_eq!(round_at(round_time(round)), round);
        assert_eq!(round_at(round_time(round) - 1), round - 1);
    }
}

#[test]
fn a_schedule_must_fit_the_pallet() {
    assert_eq!(Schedule::default(), Schedule::QUICKNET);
    assert_eq!(Schedule::new(100, 0), Err(DrandError::ZeroPeriod));
    assert_eq!(
        Schedule::new(1 << 32, 3),
        Err(DrandError::OutOfRange {
            what: "genesis time",
            value: 1 << 32
        })
    );
    let s = Schedule::new(100, 2).unwrap();
    assert_eq!(
        (s.round_at(99), s.round_at(100), s.round_at(102)),
        (0, 1, 2)
    );
    assert_eq!(s.round_time(3), 104);
}

#[test]
fn pulse_scale_encoding_is_the_pallets() {
    let pulse = Pulse::from_signature(1000, ROUND_1000_SIGNATURE);
    let mut expected = vec![0xe8, 0x03, 0, 0, 0, 0, 0, 0]; // 1000, u64 LE
    expected.push(0x80); // Compact(32)
    expected.extend(ROUND_1000_RANDOMNESS);
    expected.push(0xc0); // Compact(48)
    expected.extend(ROUND_1000_SIGNATURE);
    let encoded = pulse.encode();
    assert_eq!(encoded, expected);
    assert_eq!((encoded.len(), pulse.size_hint()), (90, 90));
    assert_eq!(Pulse::decode(&mut &encoded[..]), Ok(pulse));
}

#[test]
fn pulse_decoding_refuses_other_lengths() {
    // The pallet's own test pulse: 32 zero bytes of randomness, a 96-byte signature.
    let mut bytes = 1_u64.encode();
    bytes.extend(vec![0u8; 32].encode());
    bytes.extend(vec![1u8; 96].encode());
    assert!(Pulse::decode(&mut &bytes[..]).is_err());
    let mut short = 1_u64.encode();
    short.extend(vec![0u8; 31].encode());
    assert!(Pulse::decode(&mut &short[..]).is_err());
    let encoded = Pulse::from_signature(1, [0; 48]).encode();
    assert!(Pulse::decode(&mut &encoded[..89]).is_err());
}

#[test]
fn beacon_configuration_scale_encoding_is_the_pallets() {
    let config = BeaconConfiguration::quicknet();
    let mut expected = vec![0x81, 0x01]; // Compact(96)
    expected.extend(QUICKNET_PUBLIC_KEY);
    expected.extend([3, 0, 0, 0]); // period, u32 LE
    expected.extend([0x27, 0x21, 0xe6, 0x64]); // 1_692_803_367, u32 LE
    expected.push(0x80);
    expected.extend(QUICKNET_CHAIN_HASH);
    expected.push(0x80);
    expected.extend(QUICKNET_GROUP_HASH);
    expected.push(0x60); // Compact(24)
    expected.extend(b"bls-unchained-g1-rfc9380");
    expected.push(0x20); // Compact(8)
    expected.extend(b"quicknet");
    let encoded = config.encode();
    assert_eq!(encoded, expected);
    assert_eq!(encoded.len(), 206);
    assert_eq!(BeaconConfiguration::decode(&mut &encoded[..]), Ok(config));
}

#[test]
fn a_custom_beacon_configuration_carries_our_key_and_schedule() {
    let beacon = Beacon::from_seed(&[9; 32]);
    let schedule = Schedule::new(1_700_000_000, 1).unwrap();
    let config = beacon.configuration(schedule, "devnet").unwrap();
    assert_eq!(config.public_key, beacon.public_key());
    assert_eq!((config.period, config.genesis_time), (1, 1_700_000_000));
    assert_eq!(config.schedule(), Ok(schedule));
    assert_eq!(config.hash, config.chain_hash());
    assert_ne!(config.hash, QUICKNET_CHAIN_HASH);
    assert_eq!(config.scheme_id, QUICKNET_SCHEME.as_bytes());
    assert_eq!(config.beacon_id, b"devnet");
    let encoded = config.encode();
    assert_eq!(encoded.len(), 206 - 2);
    assert_eq!(BeaconConfiguration::decode(&mut &encoded[..]), Ok(config));
    assert_eq!(
        beacon.configuration(schedule, &"x".repeat(33)),
        Err(DrandError::BeaconIdTooLong { len: 33 })
    );
}
