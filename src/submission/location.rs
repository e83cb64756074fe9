//! Where a miner serves its submission: the location URL committed on chain, parsed and checked
//! before a validator connects anywhere.
//!
//! The URL is written by the miner, so it is untrusted: [`parse_location`] accepts only a plain
//! `http`/`https` base URL (no userinfo, query, fragment or control characters), and
//! [`check_addr`] decides which resolved addresses a fetch may connect to, so a location cannot
//! point a validator at its own loopback services, a private network or a cloud metadata address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Longest location accepted, in bytes (on-chain commitments are far shorter).
pub const MAX_LOCATION_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("location is {len} bytes, longer than the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error("location holds a control character at byte {index}")]
    ControlChar { index: usize },
    #[error("location holds whitespace at byte {index}")]
    Whitespace { index: usize },
    #[error("location is not a URL: {0}")]
    Parse(String),
    #[error("location scheme {0:?} is not http or https")]
    BadScheme(String),
    #[error("location carries a user name or password")]
    Userinfo,
    #[error("location has no host")]
    NoHost,
    #[error("location has port 0")]
    PortZero,
    #[error("location has a query string (miners serve {{base}}/manifest and {{base}}/shard)")]
    HasQuery,
    #[error("location has a fragment")]
    HasFragment,
    #[error("address {ip} is not allowed: {why}")]
    ForbiddenAddress { ip: IpAddr, why: &'static str },
    #[error("host {host} does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
}

/// A checked base URL: `http(s)://host[:port][/base/path]`, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    url: Url,
}

/// Parses and checks an untrusted location URL (see the module docs for the rules).
pub fn parse_location(raw: &str) -> Result<Location, LocationError> {
    check_raw_text(raw)?;
    let mut url = Url::parse(raw).map_err(|e| LocationError::Parse(e.to_string()))?;
    check_parts(&url)?;
    trim_trailing_slashes(&mut url);
    Ok(Location { url })
}

/// Length and characters, before parsing: the parser would silently drop tabs and newlines.
fn check_raw_text(raw: &str) -> Result<(), LocationError> {
    if raw.len() > MAX_LOCATION_LEN {
        return Err(LocationError::TooLong {
            len: raw.len(),
            max: MAX_LOCATION_LEN,
        });
    }
    for (index, c) in raw.char_indices() {
        if c.is_control() {
            return Err(LocationError::ControlChar { index });
        }
        if c.is_whitespace() {
            return Err(LocationError::Whitespace { index });
        }
    }
    Ok(())
}

fn check_parts(url: &Url) -> Result<(), LocationError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(LocationError::BadScheme(url.scheme().into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LocationError::Userinfo);
    }
    if url.host().is_none_or(|h| matches!(h, Host::Domain(""))) {
        return Err(LocationError::NoHost);
    }
    if url.port() == Some(0) {
        return Err(LocationError::PortZero);
    }
    if url.query().is_some() {
        return Err(LocationError::HasQuery);
    }
    if url.fragment().is_some() {
        return Err(LocationError::HasFragment);
    }
    Ok(())
}

fn trim_trailing_slashes(url: &mut Url) {
    let trimmed = url.path().trim_end_matches('/').to_string();
    url.set_path(&trimmed);
}

impl Location {
    /// The base URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The base URL with one more path segment (`join("manifest")` -> `{base}/manifest`);
    /// `join("")` is the base itself. The segment is percent-encoded.
    pub fn join(&self, leaf: &str) -> Url {
        let mut url = self.url.clone();
        if !leaf.is_empty() {
            url.path_segments_mut()
                .expect("http(s) URLs always have a path")
                .pop_if_empty()
                .push(leaf);
        }
        url
    }

    /// The host: a domain name, or an IP literal that needs no resolution.
    pub fn host(&self) -> Host<&str> {
        self.url.host().expect("checked at parse time")
    }

    /// The explicit port, or 80 / 443 for http / https.
    pub fn port_or_default(&self) -> u16 {
        self.url
            .port_or_known_default()
            .expect("http and https have known default ports")
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The `Host` header value: host (IPv6 in brackets) and the port when it is not the default.
    pub fn host_header(&self) -> String {
        let host = self.url.host_str().expect("checked at parse time");
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// Which addresses a fetch may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Globally routable unicast only: what a validator uses for miners' locations.
    PublicOnly,
    /// Any unicast address, loopback and private included (localnet, trusted peers).
    AllowPrivate,
}

/// Whether a fetch under `policy` may connect to `ip`.
pub fn check_addr(ip: IpAddr, policy: AddressPolicy) -> Result<(), LocationError> {
    match (classify(ip), policy) {
        (Class::Public, _) | (Class::NonPublic(_), AddressPolicy::AllowPrivate) => Ok(()),
        (Class::NonPublic(why) | Class::Never(why), _) => {
            Err(LocationError::ForbiddenAddress { ip, why })
        }
    }
}

enum Class {
    Public,
    /// Unicast, but not globally routable.
    NonPublic(&'static str),
    /// Never a peer to connect to, whatever the policy.
    Never(&'static str),
}

type V4Net = (Ipv4Addr, u8, &'static str);
type V6Net = (Ipv6Addr, u8, &'static str);

const V4_NEVER: &[V4Net] = &[
    (Ipv4Addr::UNSPECIFIED, 32, "unspecified"),
    (Ipv4Addr::BROADCAST, 32, "broadcast"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
];

const V4_NON_PUBLIC: &[V4Net] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" (0.0.0.0/8)"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private (10.0.0.0/8)"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared CGNAT (100.64.0.0/10)",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local (169.254.0.0/16, cloud metadata)",
    ),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private (172.16.0.0/12)"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation (TEST-NET-1)",
    ),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast"),
    (
        Ipv4Addr::new(192, 168, 0, 0),
        16,
        "private (192.168.0.0/16)",
    ),
    (
        Ipv4Addr::new(198, 18, 0, 0),
        15,
        "benchmarking (198.18.0.0/15)",
    ),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation (TEST-NET-2)",
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation (TEST-NET-3)",
    ),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved (240.0.0.0/4)"),
];

const V6_NEVER: &[V6Net] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

const V6_NON_PUBLIC: &[V6Net] = &[
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
        96,
        "IPv4-compatible (deprecated)",
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use NAT64",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
        48,
        "benchmarking",
    ),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo"),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (deprecated)",
    ),
];

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let bits = u32::from(ip);
    let hit = |nets: &[V4Net]| {
        nets.iter()
            .find(|(net, len, _)| prefix_eq32(bits, u32::from(*net), *len))
            .map(|n| n.2)
    };
    match (hit(V4_NEVER), hit(V4_NON_PUBLIC)) {
        (Some(why), _) => Class::Never(why),
        (None, Some(why)) => Class::NonPublic(why),
        (None, None) => Class::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let bits = u128::from(ip);
    let hit = |nets: &[V6Net]| {
        nets.iter()
            .find(|(net, len, _)| prefix_eq128(bits, u128::from(*net), *len))
            .map(|n| n.2)
    };
    match (hit(V6_NEVER), hit(V6_NON_PUBLIC)) {
        (Some(why), _) => Class::Never(why),
        (None, Some(why)) => Class::NonPublic(why),
        (None, None) => Class::Public,
    }
}

/// The IPv4 address an IPv6 address stands for, judged by the IPv4 rules: IPv4-mapped
/// (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let nat64 = u128::from(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0));
    let six_to_four = u128::from(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0));
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if prefix_eq128(bits, nat64, 96) {
        Some(Ipv4Addr::from(bits as u32))
    } else if prefix_eq128(bits, six_to_four, 16) {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    }
}

fn prefix_eq32(a: u32, b: u32, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    a & mask == b & mask
}

fn prefix_eq128(a: u128, b: u128, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    a & mask == b & mask
}

#[cfg(test)]
#[path = "location_tests.rs"]
mod tests;
