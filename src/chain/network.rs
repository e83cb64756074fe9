//! Which node a daemon or tool talks to: `--network finney|test|local` or `--chain-endpoint URL`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Axon;

/// A named Bittensor network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Mainnet.
    Finney,
    /// The test network.
    Test,
    /// A node on this machine (`connito devnet`, or a local subtensor), port 9944.
    Local,
}

impl Network {
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::Finney => "wss://entrypoint-finney.opentensor.ai:443",
            Self::Test => "wss://test.finney.opentensor.ai:443",
            Self::Local => "ws://127.0.0.1:9944",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "finney" | "main" | "mainnet" => Some(Self::Finney),
            "test" | "testnet" => Some(Self::Test),
            "local" => Some(Self::Local),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("give --network or --chain-endpoint, not both")]
    Both,
    #[error("unknown network {0:?} (finney, test or local)")]
    UnknownNetwork(String),
    #[error("chain endpoint {0:?}: expected ws://HOST:PORT or wss://HOST[:PORT]")]
    BadUrl(String),
}

/// The endpoint to use: an explicit URL, else the named network, else `local`.
pub fn endpoint(network: Option<&str>, url: Option<&str>) -> Result<String, EndpointError> {
    match (network, url) {
        (Some(_), Some(_)) => Err(EndpointError::Both),
        (None, Some(u)) => {
            let rest = u
                .strip_prefix("ws://")
                .or_else(|| u.strip_prefix("wss://"))
                .ok_or_else(|| EndpointError::BadUrl(u.into()))?;
            let host = rest.split('/').next().unwrap_or("");
            if host.is_empty() || u.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(EndpointError::BadUrl(u.into()));
            }
            Ok(u.to_string())
        }
        (Some(n), None) => Network::parse(n)
            .map(|n| n.endpoint().to_string())
            .ok_or_else(|| EndpointError::UnknownNetwork(n.into())),
        (None, None) => Ok(Network::Local.endpoint().to_string()),
    }
}

/// Whether `url`'s host is this machine (`127.0.0.0/8`, `localhost`, `[::1]`).
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `url` fit for logs: without user, password, query or fragment (providers put API keys there).
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or("");
    let hidden = authority.contains('@') || url.contains('?') || url.contains('#');
    let tail = if hidden { " (credentials hidden)" } else { "" };
    if scheme.is_empty() {
        format!("{host}{path}{tail}")
    } else {
        format!("{scheme}://{host}{path}{tail}")
    }
}

/// An axon's address as `ip:port` (`[ip]:port` for IPv6).
pub fn axon_address(a: &Axon) -> String {
    let ip: IpAddr = if a.ip_type == 6 {
        IpAddr::V6(Ipv6Addr::from(a.ip))
    } else {
        IpAddr::V4(Ipv4Addr::from(a.ip as u32))
    };
    std::net::SocketAddr::new(ip, a.port).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        type Row<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Result<&'a str, EndpointError>,
        );
        let rows: [Row; 8] = [
            (None, None, Ok("ws://127.0.0.1:9944")),
            (
                Some("finney"),
                None,
                Ok("wss://entrypoint-finney.opentensor.ai:443"),
            ),
            (
                Some("test"),
                None,
                Ok("wss://test.finney.opentensor.ai:443"),
            ),
            (None, Some("ws://10.0.0.2:9944"), Ok("ws://10.0.0.2:9944")),
            (Some("local"), Some("ws://x:1"), Err(EndpointError::Both)),
            (
                Some("devnet"),
                None,
                Err(EndpointError::UnknownNetwork("devnet".into())),
            ),
            (
                None,
                Some("http://x:1"),
                Err(EndpointError::BadUrl("http://x:1".into())),
            ),
            (
                None,
                Some("ws://x:1\r\n"),
                Err(EndpointError::BadUrl("ws://x:1\r\n".into())),
            ),
        ];
        for (n, u, want) in rows {
            assert_eq!(endpoint(n, u), want.map(String::from), "{n:?} {u:?}");
        }
    }

    #[test]
    fn loopback_urls() {
        for (url, want) in [
            ("ws://127.0.0.1:9944", true),
            ("http://localhost:9101/s", true),
            ("ws://[::1]:9944", true),
            ("http://127.3.2.1", true),
            ("wss://entrypoint-finney.opentensor.ai:443", false),
            ("http://203.0.113.7:9101", false),
            ("http://user@127.0.0.1:1", true),
        ] {
            assert_eq!(is_loopback_url(url), want, "{url}");
        }
    }

    #[test]
    fn urls_are_redacted_for_logs() {
        let rows = [
            ("ws://127.0.0.1:9944", "ws://127.0.0.1:9944"),
            (
                "wss://user:secret@node.example:443/rpc?apikey=abc",
                "wss://node.example:443/rpc (credentials hidden)",
            ),
            (
                "wss://node.example/x#k",
                "wss://node.example/x (credentials hidden)",
            ),
        ];
        for (url, want) in rows {
            assert_eq!(redact(url), want);
        }
    }

    #[test]
    fn axon_addresses() {
        let v4 = Axon {
            ip: u128::from(u32::from(Ipv4Addr::new(10, 0, 0, 1))),
            port: 8091,
            ip_type: 4,
            ..Axon::default()
        };
        assert_eq!(axon_address(&v4), "10.0.0.1:8091");
        let v6 = Axon {
            ip: 1,
            port: 1,
            ip_type: 6,
            ..Axon::default()
        };
        assert_eq!(axon_address(&v6), "[::1]:1");
    }
}
