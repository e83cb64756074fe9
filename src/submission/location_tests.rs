use super::*;
use AddressPolicy::{AllowPrivate, PublicOnly};

#[test]
fn good_locations_parse_to_a_trimmed_base() {
    for (raw, base, host_header, port) in [
        (
            "http://miner.example:9101",
            "http://miner.example:9101/",
            "miner.example:9101",
            9101,
        ),
        (
            "http://miner.example",
            "http://miner.example/",
            "miner.example",
            80,
        ),
        (
            "https://miner.example/",
            "https://miner.example/",
            "miner.example",
            443,
        ),
        (
            "http://1.2.3.4:8/s/7/",
            "http://1.2.3.4:8/s/7",
            "1.2.3.4:8",
            8,
        ),
        ("http://1.2.3.4:8/s//", "http://1.2.3.4:8/s", "1.2.3.4:8", 8),
        (
            "http://[2606:4700::1]:81/a",
            "http://[2606:4700::1]:81/a",
            "[2606:4700::1]:81",
            81,
        ),
        (
            "HTTPS://Miner.Example:443/x",
            "https://miner.example/x",
            "miner.example",
            443,
        ),
    ] {
        let loc = parse_location(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(loc.url().as_str(), base, "{raw}");
        assert_eq!(loc.host_header(), host_header, "{raw}");
        assert_eq!(loc.port_or_default(), port, "{raw}");
        assert_eq!(
            loc.is_https(),
            raw.to_lowercase().starts_with("https"),
            "{raw}"
        );
    }
}

#[test]
fn join_appends_one_encoded_segment() {
    for (raw, leaf, want) in [
        ("http://h:1", "manifest", "http://h:1/manifest"),
        ("http://h:1/", "shard", "http://h:1/shard"),
        ("http://h:1/s/7/", "shard", "http://h:1/s/7/shard"),
        ("http://h:1/s/7", "", "http://h:1/s/7"),
        ("http://h:1/s", "a b/c", "http://h:1/s/a%20b%2Fc"),
    ] {
        assert_eq!(parse_location(raw).unwrap().join(leaf).as_str(), want);
    }
}

#[test]
fn hosts_are_domains_or_literals() {
    let host = |raw: &str| -> Host<String> { parse_location(raw).unwrap().host().to_owned() };
    assert_eq!(
        host("http://a.example"),
        Host::Domain("a.example".to_string())
    );
    assert_eq!(
        host("http://1.2.3.4"),
        Host::<String>::Ipv4(Ipv4Addr::new(1, 2, 3, 4))
    );
    assert_eq!(
        host("http://[::1]:5"),
        Host::<String>::Ipv6(Ipv6Addr::LOCALHOST)
    );
}

#[test]
fn bad_locations_are_rejected_with_their_cause() {
    let long = format!("http://h/{}", "a".repeat(MAX_LOCATION_LEN));
    let rows: &[(&str, LocationError)] = &[
        (
            long.as_str(),
            LocationError::TooLong {
                len: long.len(),
                max: MAX_LOCATION_LEN,
            },
        ),
        ("http://h/\r\nX: y", LocationError::ControlChar { index: 9 }),
        ("http://h/a\tb", LocationError::ControlChar { index: 10 }),
        ("http://h/\u{7f}", LocationError::ControlChar { index: 9 }),
        ("http://h/\u{85}", LocationError::ControlChar { index: 9 }),
        ("\nhttp://h/", LocationError::ControlChar { index: 0 }),
        (" http://h/", LocationError::Whitespace { index: 0 }),
        ("http://h/a b", LocationError::Whitespace { index: 10 }),
        ("http://h/\u{a0}", LocationError::Whitespace { index: 9 }),
        ("ftp://h/", LocationError::BadScheme("ftp".into())),
        ("h:1", LocationError::BadScheme("h".into())),
        (
            "file:///etc/passwd",
            LocationError::BadScheme("file".into()),
        ),
        (
            "gopher://h:6379/_INFO",
            LocationError::BadScheme("gopher".into()),
        ),
        ("http://u:p@h/", LocationError::Userinfo),
        ("http://u@h/", LocationError::Userinfo),
        ("http://h:0/", LocationError::PortZero),
        ("http://h/?a=1", LocationError::HasQuery),
        ("http://h/?", LocationError::HasQuery),
        ("http://h/#x", LocationError::HasFragment),
        ("http://h/#", LocationError::HasFragment),
    ];
    for (raw, want) in rows {
        assert_eq!(parse_location(raw).as_ref(), Err(want), "{raw:?}");
    }
}

#[test]
fn unparsable_locations_are_parse_errors() {
    for raw in [
        "",
        "/manifest",
        "http://",
        "http://h:99999/",
        "http://[::1/",
    ] {
        assert!(
            matches!(parse_location(raw), Err(LocationError::Parse(_))),
            "{raw:?}: {:?}",
            parse_location(raw)
        );
    }
}

#[test]
fn every_error_has_a_message() {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let err = LocationError::ForbiddenAddress {
        ip,
        why: "loopback",
    };
    assert_eq!(
        err.to_string(),
        "address 127.0.0.1 is not allowed: loopback"
    );
    let err = LocationError::Unresolvable {
        host: "x".into(),
        reason: "no addresses".into(),
    };
    assert_eq!(err.to_string(), "host x does not resolve: no addresses");
    assert!(LocationError::NoHost.to_string().contains("no host"));
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

/// (address, allowed under PublicOnly, allowed under AllowPrivate)
fn address_rows() -> Vec<(IpAddr, bool, bool)> {
    vec![
        // IPv4 public
        (v4("1.1.1.1"), true, true),
        (v4("8.8.8.8"), true, true),
        (v4("100.63.255.255"), true, true),
        (v4("100.128.0.0"), true, true),
        (v4("172.15.255.255"), true, true),
        (v4("172.32.0.0"), true, true),
        (v4("198.17.255.255"), true, true),
        (v4("198.20.0.0"), true, true),
        (v4("223.255.255.255"), true, true),
        // IPv4 non-public unicast
        (v4("0.1.2.3"), false, true),
        (v4("10.0.0.1"), false, true),
        (v4("100.64.0.1"), false, true),
        (v4("100.127.255.254"), false, true),
        (v4("127.0.0.1"), false, true),
        (v4("127.255.0.9"), false, true),
        (v4("169.254.169.254"), false, true),
        (v4("172.16.0.1"), false, true),
        (v4("172.31.255.255"), false, true),
        (v4("192.0.0.8"), false, true),
        (v4("192.0.2.1"), false, true),
        (v4("192.88.99.1"), false, true),
        (v4("192.168.1.1"), false, true),
        (v4("198.18.0.1"), false, true),
        (v4("198.19.255.255"), false, true),
        (v4("198.51.100.7"), false, true),
        (v4("203.0.113.7"), false, true),
        (v4("240.0.0.1"), false, true),
        (v4("255.255.255.254"), false, true),
        // IPv4 never
        (v4("0.0.0.0"), false, false),
        (v4("255.255.255.255"), false, false),
        (v4("224.0.0.1"), false, false),
        (v4("239.255.255.250"), false, false),
        // IPv6 public
        (v6("2606:4700:4700::1111"), true, true),
        (v6("2a00:1450:4001::200e"), true, true),
        (v6("2001:db9::1"), true, true),
        // IPv6 non-public unicast
        (v6("::1"), false, true),
        (v6("::7f00:1"), false, true),
        (v6("fc00::1"), false, true),
        (v6("fd12:3456::1"), false, true),
        (v6("fe80::1"), false, true),
        (v6("febf::1"), false, true),
        (v6("fec0::1"), false, true),
        (v6("2001:db8::1"), false, true),
        (v6("2001:db8:ffff::1"), false, true),
        (v6("3fff::1"), false, true),
        (v6("2001::1"), false, true),
        (v6("2001:2::1"), false, true),
        (v6("100::1"), false, true),
        (v6("64:ff9b:1::1"), false, true),
        // IPv6 never
        (v6("::"), false, false),
        (v6("ff02::1"), false, false),
        (v6("ff0e::1"), false, false),
        // IPv4-mapped, NAT64 and 6to4: judged as the IPv4 address inside
        (v6("::ffff:8.8.8.8"), true, true),
        (v6("::ffff:127.0.0.1"), false, true),
        (v6("::ffff:169.254.169.254"), false, true),
        (v6("::ffff:10.1.2.3"), false, true),
        (v6("::ffff:0.0.0.0"), false, false),
        (v6("::ffff:224.0.0.1"), false, false),
        (v6("64:ff9b::8.8.8.8"), true, true),
        (v6("64:ff9b::127.0.0.1"), false, true),
        (v6("64:ff9b::a9fe:a9fe"), false, true),
        (v6("64:ff9b::255.255.255.255"), false, false),
        (v6("2002:0808:0808::1"), true, true),
        (v6("2002:7f00:0001::1"), false, true),
        (v6("2002:c0a8:0101::1"), false, true),
    ]
}

#[test]
fn addresses_are_judged_by_policy() {
    for (ip, public_ok, private_ok) in address_rows() {
        assert_eq!(
            check_addr(ip, PublicOnly).is_ok(),
            public_ok,
            "{ip} PublicOnly"
        );
        assert_eq!(
            check_addr(ip, AllowPrivate).is_ok(),
            private_ok,
            "{ip} AllowPrivate"
        );
    }
}

#[test]
fn refusals_name_the_range() {
    for (ip, why) in [
        (
            v4("169.254.169.254"),
            "link-local (169.254.0.0/16, cloud metadata)",
        ),
        (v4("127.0.0.1"), "loopback"),
        (v6("::ffff:127.0.0.1"), "loopback"),
        (v6("fd00::1"), "unique local"),
        (v4("255.255.255.255"), "broadcast"),
        (v6("::"), "unspecified"),
    ] {
        assert_eq!(
            check_addr(ip, PublicOnly),
            Err(LocationError::ForbiddenAddress { ip, why }),
            "{ip}"
        );
    }
}
