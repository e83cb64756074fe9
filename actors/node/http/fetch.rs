//! The HTTP/1.1 client: one GET per connection to a checked [`Location`], never to a raw string.
//!
//! The host is resolved once and every address it resolves to is checked against an
//! [`AddressPolicy`] before connecting to that very address (a name that also resolves to a
//! forbidden address is refused, which defeats DNS rebinding). The request line is built from the
//! parsed, percent-encoded path. Redirects are never followed, the response head is capped at
//! [`MAX_RESPONSE_HEAD`] bytes, the body is read streaming and reading stops as soon as it passes
//! its cap, and one deadline covers the whole fetch.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use connito::submission::location::{
    AddressPolicy, Location, LocationError, check_addr, parse_location,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};
use url::{Host, Url};

/// Largest response head (status line and headers) read before giving up.
pub const MAX_RESPONSE_HEAD: usize = 8 << 10;
/// Body bytes asked of the socket per read.
const READ_CHUNK: usize = 64 << 10;

/// Bounds on one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Resolving the host, connecting and, for https, the TLS handshake.
    pub connect_timeout: Duration,
    /// The whole fetch, connecting included.
    pub total_timeout: Duration,
    /// Most body bytes accepted.
    pub max_body: usize,
}

impl FetchLimits {
    /// 5 s to connect, 10 s in all, at most `max_body` body bytes.
    pub fn new(max_body: usize) -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            max_body,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Location(#[from] LocationError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("connecting timed out")]
    ConnectTimeout,
    #[error("timed out")]
    Timeout,
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("response head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    #[error("Transfer-Encoding {0:?} is not supported (serve a Content-Length)")]
    TransferEncoding(String),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("body is {got} bytes, expected exactly {expected}")]
    LengthMismatch { expected: usize, got: usize },
}

/// GET a full URL from a trusted peer (a validator's global model, localnet's loopback daemons):
/// any unicast address is allowed, at most `max_body` body bytes, 10 s in all.
pub async fn get(url: &str, max_body: usize) -> Result<Vec<u8>, FetchError> {
    let loc = parse_location(url)?;
    let limits = FetchLimits::new(max_body);
    fetch(&loc, "", AddressPolicy::AllowPrivate, &limits, None).await
}

/// GET `{loc}/{leaf}` (`leaf` "" for `loc` itself), connecting only to addresses `policy` allows.
///
/// With `expected_len`, the body must be exactly that long: a different Content-Length fails
/// before the body is read, and reading stops as soon as the body is longer.
pub async fn fetch(
    loc: &Location,
    leaf: &str,
    policy: AddressPolicy,
    limits: &FetchLimits,
    expected_len: Option<usize>,
) -> Result<Vec<u8>, FetchError> {
    if let Some(n) = expected_len
        && n > limits.max_body
    {
        return Err(FetchError::TooLarge(limits.max_body));
    }
    let request = request_head(loc, &loc.join(leaf));
    let exchange = async {
        let conn = tokio::time::timeout(limits.connect_timeout, open(loc, policy))
            .await
            .map_err(|_| FetchError::ConnectTimeout)??;
        match conn {
            Conn::Plain(s) => exchange(s, &request, expected_len, limits.max_body).await,
            Conn::Tls(s) => exchange(s, &request, expected_len, limits.max_body).await,
        }
    };
    tokio::time::timeout(limits.total_timeout, exchange)
        .await
        .map_err(|_| FetchError::Timeout)?
}

/// The request head: the path comes from the parsed URL (percent-encoded, no query), so no CR,
/// LF or space can reach the request line.
pub(super) fn request_head(loc: &Location, url: &Url) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept-Encoding: identity\r\n\r\n",
        url.path(),
        loc.host_header()
    )
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

async fn open(loc: &Location, policy: AddressPolicy) -> Result<Conn, FetchError> {
    let addrs = resolve(loc).await?;
    check_all(&addrs, policy)?;
    let tcp = connect_any(&addrs).await?;
    if !loc.is_https() {
        return Ok(Conn::Plain(tcp));
    }
    let connector = TlsConnector::from(tls_config());
    let tls = connector
        .connect(server_name(loc)?, tcp)
        .await
        .map_err(|e| FetchError::Tls(e.to_string()))?;
    Ok(Conn::Tls(Box::new(tls)))
}

/// Every address the host stands for, resolved once (IP literals are not resolved).
async fn resolve(loc: &Location) -> Result<Vec<SocketAddr>, LocationError> {
    let port = loc.port_or_default();
    let name = match loc.host() {
        Host::Ipv4(ip) => return Ok(vec![SocketAddr::new(ip.into(), port)]),
        Host::Ipv6(ip) => return Ok(vec![SocketAddr::new(ip.into(), port)]),
        Host::Domain(name) => name,
    };
    let unresolvable = |reason: String| LocationError::Unresolvable {
        host: name.to_string(),
        reason,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| unresolvable(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(unresolvable("no addresses".into()));
    }
    Ok(addrs)
}

/// Refuses the host when any of its addresses is forbidden.
pub(super) fn check_all(addrs: &[SocketAddr], policy: AddressPolicy) -> Result<(), LocationError> {
    addrs.iter().try_for_each(|a| check_addr(a.ip(), policy))
}

/// Connects to the first checked address that answers.
async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, FetchError> {
    let mut last = std::io::Error::new(
        std::io::ErrorKind::AddrNotAvailable,
        "no address to connect to",
    );
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last.into())
}

fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// SNI and certificate name: the URL's host.
fn server_name(loc: &Location) -> Result<ServerName<'static>, FetchError> {
    match loc.host() {
        Host::Domain(name) => {
            ServerName::try_from(name.to_string()).map_err(|e| FetchError::Tls(e.to_string()))
        }
        Host::Ipv4(ip) => Ok(ServerName::from(IpAddr::V4(ip))),
        Host::Ipv6(ip) => Ok(ServerName::from(IpAddr::V6(ip))),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &str,
    expected_len: Option<usize>,
    max_body: usize,
) -> Result<Vec<u8>, FetchError> {
    s.write_all(request.as_bytes()).await?;
    let (head, early_body) = read_head(&mut s).await?;
    let plan = body_plan(&parse_head(&head)?, expected_len, max_body)?;
    read_body(&mut s, early_body, plan).await
}

/// Reads up to the blank line ending the head: returns the head (without the blank line) and
/// whatever body bytes came with it. Never holds more than [`MAX_RESPONSE_HEAD`] bytes.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<(Vec<u8>, Vec<u8>), FetchError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            buf.truncate(end);
            return Ok((buf, rest));
        }
        let room = (MAX_RESPONSE_HEAD - buf.len()).min(chunk.len());
        if room == 0 {
            return Err(FetchError::HeadTooLarge(MAX_RESPONSE_HEAD));
        }
        let n = s.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(FetchError::Malformed(
                "connection closed inside the response head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What the response head says about the body.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Head {
    pub status: u16,
    pub content_length: Option<usize>,
    pub transfer_encoding: Option<String>,
}

/// Parses a response head (without its final blank line): an HTTP/1.x status line, then headers.
pub(super) fn parse_head(raw: &[u8]) -> Result<Head, FetchError> {
    let text = std::str::from_utf8(raw).map_err(|_| FetchError::Malformed("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let mut head = Head {
        status: parse_status_line(lines.next().unwrap_or_default())?,
        content_length: None,
        transfer_encoding: None,
    };
    for line in lines {
        apply_header(&mut head, line)?;
    }
    Ok(head)
}

fn parse_status_line(line: &str) -> Result<u16, FetchError> {
    let bad = FetchError::Malformed("not an HTTP/1.x status line");
    let Some(rest) = ["HTTP/1.1 ", "HTTP/1.0 "]
        .iter()
        .find_map(|v| line.strip_prefix(*v))
    else {
        return Err(bad);
    };
    let (code, reason) = rest.split_at_checked(3).ok_or(bad)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(reason.is_empty() || reason.starts_with(' '))
    {
        return Err(FetchError::Malformed("bad status code"));
    }
    Ok(code.parse().expect("three ASCII digits"))
}

fn apply_header(head: &mut Head, line: &str) -> Result<(), FetchError> {
    let (name, value) = line
        .split_once(':')
        .ok_or(FetchError::Malformed("header line without a colon"))?;
    let value = value.trim();
    if name.eq_ignore_ascii_case("content-length") {
        let n = parse_content_length(value)?;
        if head.content_length.is_some_and(|m| m != n) {
            return Err(FetchError::Malformed("conflicting Content-Length headers"));
        }
        head.content_length = Some(n);
    } else if name.eq_ignore_ascii_case("transfer-encoding")
        && !value.eq_ignore_ascii_case("identity")
    {
        head.transfer_encoding = Some(value.to_string());
    }
    Ok(())
}

fn parse_content_length(value: &str) -> Result<usize, FetchError> {
    let bad = FetchError::Malformed("bad Content-Length");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    value.parse().map_err(|_| bad)
}

/// How much body to read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BodyPlan {
    /// A Content-Length within bounds: read exactly this many bytes, then stop.
    Declared(usize),
    /// No Content-Length: read until the server closes, failing as soon as `cap` is passed; the
    /// length must then equal `exact` when one is expected.
    UntilClose { cap: usize, exact: Option<usize> },
}

/// Decides from the head alone: status 200 only (redirects are not followed), no transfer
/// coding, and a declared length that fits before a single body byte is read.
pub(super) fn body_plan(
    head: &Head,
    expected_len: Option<usize>,
    max_body: usize,
) -> Result<BodyPlan, FetchError> {
    if head.status != 200 {
        return Err(FetchError::Status(head.status));
    }
    if let Some(te) = &head.transfer_encoding {
        return Err(FetchError::TransferEncoding(te.clone()));
    }
    match (head.content_length, expected_len) {
        (Some(got), Some(expected)) if got != expected => {
            Err(FetchError::LengthMismatch { expected, got })
        }
        (Some(got), _) if got > max_body => Err(FetchError::TooLarge(max_body)),
        (Some(got), _) => Ok(BodyPlan::Declared(got)),
        (None, exact) => Ok(BodyPlan::UntilClose {
            cap: exact.unwrap_or(max_body),
            exact,
        }),
    }
}

async fn read_body<S: AsyncRead + Unpin>(
    s: &mut S,
    early: Vec<u8>,
    plan: BodyPlan,
) -> Result<Vec<u8>, FetchError> {
    match plan {
        BodyPlan::Declared(n) => read_declared(s, early, n).await,
        BodyPlan::UntilClose { cap, exact } => read_until_close(s, early, cap, exact).await,
    }
}

/// Exactly `n` bytes; bytes after them (a server that sent more than it declared) are dropped.
async fn read_declared<S: AsyncRead + Unpin>(
    s: &mut S,
    mut body: Vec<u8>,
    n: usize,
) -> Result<Vec<u8>, FetchError> {
    body.truncate(n);
    let mut chunk = vec![0u8; READ_CHUNK.min(n - body.len())];
    while body.len() < n {
        let room = (n - body.len()).min(chunk.len());
        let got = s.read(&mut chunk[..room]).await?;
        if got == 0 {
            return Err(FetchError::LengthMismatch {
                expected: n,
                got: body.len(),
            });
        }
        body.extend_from_slice(&chunk[..got]);
    }
    Ok(body)
}

/// Until EOF, holding at most `cap` bytes plus one read.
async fn read_until_close<S: AsyncRead + Unpin>(
    s: &mut S,
    mut body: Vec<u8>,
    cap: usize,
    exact: Option<usize>,
) -> Result<Vec<u8>, FetchError> {
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        if body.len() > cap {
            return Err(FetchError::TooLarge(cap));
        }
        let got = s.read(&mut chunk).await?;
        if got == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..got]);
    }
    match exact {
        Some(expected) if body.len() != expected => Err(FetchError::LengthMismatch {
            expected,
            got: body.len(),
        }),
        _ => Ok(body),
    }
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
