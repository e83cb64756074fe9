use super::*;

/// A throwaway hotkey written by the `bittensor` Python package 11.3.0
/// (`Wallet.create_new_hotkey(use_password=False)`), verbatim.
const BITTENSOR_KEYFILE: &str = r#"{"secretSeed":"0xc7a4be4a83149fb84a2c031e19e8e162e53bd3bb76fc1485d36bc4a09f756eea","publicKey":"0xc48ba991db4a59ca4955d2fc50e5c4e0c4ec858a72d98369476008db86747f27","accountId":"0xc48ba991db4a59ca4955d2fc50e5c4e0c4ec858a72d98369476008db86747f27","ss58Address":"5GWQjMBvVA86Zznai4o1NBan6YpGAxWfNtKjuQGs75bwF5FA","secretPhrase":"own manage rookie ask cage crush only disease labor mango wrong garlic","privateKey":"0x5ec6299e690e219a3f7807a925e830573367b0735fedf9f456202da996c8710cde6965f1e90d951fa380e147b007f4fc3b2514c2ed9389a3c8c98a1db3676491","cryptoType":1}"#;

fn p() -> &'static Path {
    Path::new("/w/h")
}

#[test]
fn reads_a_bittensor_keyfile() {
    let key = parse_keyfile(p(), BITTENSOR_KEYFILE).unwrap();
    assert_eq!(
        key.address(),
        "5GWQjMBvVA86Zznai4o1NBan6YpGAxWfNtKjuQGs75bwF5FA"
    );
}

#[test]
fn mnemonic_derivation_matches_bittensor() {
    let kf: Keyfile = serde_json::from_str(BITTENSOR_KEYFILE).unwrap();
    let seed = seed_from_mnemonic(kf.secret_phrase.as_deref().unwrap()).unwrap();
    assert_eq!(
        format!("0x{}", hex::encode(seed)),
        kf.secret_seed.clone().unwrap()
    );
    let key = Hotkey::from_seed(&seed);
    assert_eq!(
        format!("0x{}", hex::encode(key.secret_bytes())),
        kf.private_key.unwrap()
    );
    // Without the seed, the phrase alone gives the same key.
    let phrase_only = BITTENSOR_KEYFILE.replace(
        r#""secretSeed":"0xc7a4be4a83149fb84a2c031e19e8e162e53bd3bb76fc1485d36bc4a09f756eea","#,
        "",
    );
    assert_eq!(
        parse_keyfile(p(), &phrase_only).unwrap().public(),
        key.public()
    );
}

#[test]
fn new_key_round_trips_through_its_keyfile() {
    let k = new_key(&[7u8; 16]).unwrap();
    assert_eq!(k.phrase.split(' ').count(), 12);
    let json = serde_json::to_string(&k.keyfile).unwrap();
    assert_eq!(
        parse_keyfile(p(), &json).unwrap().public(),
        k.hotkey.public()
    );
    assert_eq!(new_key(&[7u8; 32]).unwrap().phrase.split(' ').count(), 24);
    assert!(matches!(new_key(&[7u8; 5]), Err(WalletError::Mnemonic(_))));
}

#[test]
fn bad_keyfiles_are_typed_errors() {
    type Check = fn(&WalletError) -> bool;
    let cases: Vec<(String, Check)> = vec![
        ("$NACL....".into(), |e| {
            matches!(e, WalletError::Encrypted(_))
        }),
        ("not json".into(), |e| {
            matches!(e, WalletError::BadKeyfile { .. })
        }),
        (
            BITTENSOR_KEYFILE.replace("5GWQjMBvVA86", "5GWQjMBvVA87"),
            |e| matches!(e, WalletError::AddressMismatch { .. }),
        ),
        (
            BITTENSOR_KEYFILE.replace(r#""cryptoType":1"#, r#""cryptoType":0"#),
            |e| matches!(e, WalletError::BadKeyfile { .. }),
        ),
        (BITTENSOR_KEYFILE.replace("0xc7a4be4a", "0xzz"), |e| {
            matches!(e, WalletError::BadKeyfile { .. })
        }),
        (
            BITTENSOR_KEYFILE.replace("own manage", "own owner"),
            // the seed wins; with a bad phrase and no seed the phrase is an error
            |_| true,
        ),
        (
            r#"{"publicKey":"0x00","accountId":"0x00","ss58Address":"x"}"#.into(),
            |e| matches!(e, WalletError::BadKeyfile { .. }),
        ),
    ];
    for (text, ok) in cases {
        match parse_keyfile(p(), &text) {
            Err(e) => assert!(ok(&e), "{text}: {e}"),
            Ok(_) => assert!(text.contains("own owner"), "{text} was accepted"),
        }
    }
    assert!(matches!(
        seed_from_mnemonic("own owner rookie"),
        Err(WalletError::Mnemonic(_))
    ));
}

#[test]
fn wallet_paths_and_names() {
    let home = Path::new("/home/op");
    let spec = |path: &str, name: &str, hotkey: &str| WalletSpec {
        path: path.into(),
        name: name.into(),
        hotkey: hotkey.into(),
    };
    assert_eq!(
        spec(DEFAULT_WALLET_PATH, "v", "default")
            .hotkey_file(Some(home))
            .unwrap(),
        PathBuf::from("/home/op/.bittensor/wallets/v/hotkeys/default")
    );
    assert_eq!(
        spec("/srv/w", "v", "h").hotkey_file(None).unwrap(),
        PathBuf::from("/srv/w/v/hotkeys/h")
    );
    assert_eq!(expand_home("~x/y", Some(home)), PathBuf::from("~x/y"));
    for (name, hotkey) in [("..", "h"), ("v", "a/b"), ("", "h"), ("v", "h\n")] {
        assert!(matches!(
            spec("/w", name, hotkey).hotkey_file(None),
            Err(WalletError::BadName(_))
        ));
    }
}

#[test]
fn written_keyfiles_are_private_and_readable() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w/hotkeys/h");
    let k = new_key(&[1u8; 16]).unwrap();
    write_hotkey(&path, &k.keyfile, false).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dmode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dmode, 0o700);
    assert_eq!(read_hotkey(&path).unwrap().public(), k.hotkey.public());
    let pub_txt = std::fs::read_to_string(dir.path().join("w/hotkeys/hpub.txt")).unwrap();
    assert!(pub_txt.contains(&k.hotkey.address()) && !pub_txt.contains("secret"));
    assert!(matches!(
        write_hotkey(&path, &k.keyfile, false),
        Err(WalletError::Exists(_))
    ));
    write_hotkey(&path, &k.keyfile, true).unwrap();
    assert!(matches!(
        read_hotkey(&dir.path().join("nope")),
        Err(WalletError::Missing(_))
    ));
}

#[test]
fn dev_uris_derive_the_dev_accounts() {
    for (name, public) in crate::chain::DEV_ACCOUNTS {
        assert_eq!(
            dev_key(&format!("//{name}")).unwrap().public(),
            public,
            "{name}"
        );
    }
    for bad in ["Alice", "//", "//a/b"] {
        assert!(dev_key(bad).is_err(), "{bad}");
    }
}
