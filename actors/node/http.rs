//! A minimal HTTP/1.1 server and client: daemons serve `/metrics`, shards and global models;
//! validators and miners fetch them ([`fetch`]). One request per connection, bounded sizes and
//! timeouts everywhere.

mod fetch;

pub use fetch::{FetchError, FetchLimits, fetch, get};

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
            Err(FetchError::Location(_))
        ));
    }
}
