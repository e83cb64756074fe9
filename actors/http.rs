//! A minimal HTTP/1.1 server and client on loopback: daemons serve `/metrics`, shards and global
//! models; validators and miners fetch them. One request per connection, bounded sizes and
//! timeouts everywhere.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type,
            body,
        }
    }
    pub fn not_found() -> Self {
        Self {
            status: 404,
            content_type: "text/plain",
            body: b"not found\n".to_vec(),
        }
    }
}

pub type Handler = Arc<dyn Fn(&str) -> Response + Send + Sync>;

const MAX_REQUEST_HEAD: usize = 8 << 10;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `127.0.0.1:port` (0 = any free port) and serves GET requests with `handler`.
/// Serves `handler` on `bind` (`HOST:PORT`); the task is the accept loop (abort it to stop).
pub async fn serve_on(
    bind: &str,
    handler: Handler,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let h = handler.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(IO_TIMEOUT, handle(sock, h)).await;
            });
        }
    });
    Ok((addr, task))
}

async fn handle(mut sock: TcpStream, handler: Handler) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let resp = if method == "GET" {
        let path = path.to_string();
        let h = handler.clone();
        tokio::task::spawn_blocking(move || h(&path))
            .await
            .unwrap_or_else(|_| Response {
                status: 500,
                content_type: "text/plain",
                body: b"internal error\n".to_vec(),
            })
    } else {
        Response {
            status: 405,
            content_type: "text/plain",
            body: b"only GET\n".to_vec(),
        }
    };
    let reason = match resp.status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let header = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        resp.content_type,
        resp.body.len()
    );
    sock.write_all(header.as_bytes()).await?;
    sock.write_all(&resp.body).await?;
    sock.shutdown().await
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("bad url {0} (only http://127.0.0.1:PORT/... style urls)")]
    BadUrl(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed response")]
    Malformed,
}

/// GET `url` (`http://host:port/path`), reading at most `max_body` bytes of body.
pub async fn get(url: &str, max_body: usize) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(IO_TIMEOUT, get_inner(url, max_body))
        .await
        .map_err(|_| FetchError::Timeout)?
}

async fn get_inner(url: &str, max_body: usize) -> Result<Vec<u8>, FetchError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| FetchError::BadUrl(url.into()))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut sock = TcpStream::connect(host).await?;
    sock.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut resp = Vec::new();
    let limit = max_body + MAX_REQUEST_HEAD;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        resp.extend_from_slice(&buf[..n]);
        if resp.len() > limit {
            return Err(FetchError::TooLarge(max_body));
        }
    }
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(FetchError::Malformed)?;
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(FetchError::Malformed)?;
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    let body = resp[split + 4..].to_vec();
    if body.len() > max_body {
        return Err(FetchError::TooLarge(max_body));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_and_fetches_on_loopback() {
        let h: Handler = Arc::new(|p: &str| {
            if p == "/x" {
                Response::ok("text/plain", b"hello".to_vec())
            } else {
                Response::not_found()
            }
        });
        let (addr, _task) = serve_on("127.0.0.1:0", h).await.unwrap();
        assert_eq!(
            get(&format!("http://{addr}/x"), 100).await.unwrap(),
            b"hello"
        );
        assert!(matches!(
            get(&format!("http://{addr}/y"), 100).await,
            Err(FetchError::Status(404))
        ));
        assert!(matches!(
            get(&format!("http://{addr}/x"), 2).await,
            Err(FetchError::TooLarge(2))
        ));
        assert!(matches!(
            get("ftp://x", 2).await,
            Err(FetchError::BadUrl(_))
        ));
    }
}
