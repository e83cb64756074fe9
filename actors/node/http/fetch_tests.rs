use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use connito::submission::location::{AddressPolicy::*, parse_location};
use tokio::net::TcpListener;

use super::*;
use crate::node::http::{Handler, Response, serve_on};

fn limits(max_body: usize) -> FetchLimits {
    FetchLimits {
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        max_body,
    }
}

fn loc(addr: SocketAddr) -> Location {
    parse_location(&format!("http://{addr}")).unwrap()
}

/// What a raw test server does after writing its reply.
#[derive(Clone, Copy)]
enum Then {
    Close,
    Hold,
    Endless,
}

struct RawServer {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
}

/// A server that answers every connection with `reply`, byte for byte, then does `then`.
async fn raw_server(reply: &[u8], then: Then) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let (count, reply) = (accepts.clone(), reply.to_vec());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(answer(sock, reply.clone(), then));
        }
    });
    RawServer { addr, accepts }
}

async fn answer(mut sock: TcpStream, reply: Vec<u8>, then: Then) {
    let mut request = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if sock.write_all(&reply).await.is_err() {
        return;
    }
    match then {
        Then::Close => {
            let _ = sock.shutdown().await;
        }
        Then::Hold => tokio::time::sleep(Duration::from_secs(30)).await,
        Then::Endless => {
            let block = vec![b'x'; 64 << 10];
            while sock.write_all(&block).await.is_ok() {}
        }
    }
}

#[tokio::test]
async fn fetches_leaves_of_a_served_location() {
    let h: Handler = Arc::new(|p: &str| match p {
        "/s/7/manifest" => Response::ok("application/json", b"{}".to_vec()),
        "/s/7/shard" => Response::ok("application/octet-stream", b"hello".to_vec()),
        _ => Response::not_found(),
    });
    let (addr, _task) = serve_on("127.0.0.1:0", h).await.unwrap();
    let base = parse_location(&format!("http://{addr}/s/7/")).unwrap();
    let lim = limits(100);
    let manifest = fetch(&base, "manifest", AllowPrivate, &lim, None).await;
    assert_eq!(manifest.unwrap(), b"{}");
    let shard = fetch(&base, "shard", AllowPrivate, &lim, Some(5)).await;
    assert_eq!(shard.unwrap(), b"hello");
    let missing = fetch(&base, "nope", AllowPrivate, &lim, None).await;
    assert!(matches!(missing, Err(FetchError::Status(404))));
    assert!(matches!(
        fetch(&base, "shard", AllowPrivate, &lim, Some(4)).await,
        Err(FetchError::LengthMismatch {
            expected: 4,
            got: 5
        })
    ));
}

#[tokio::test]
async fn a_name_is_resolved_and_each_address_tried() {
    let srv = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        Then::Close,
    )
    .await;
    let base = parse_location(&format!("http://localhost:{}", srv.addr.port())).unwrap();
    let body = fetch(&base, "", AllowPrivate, &limits(10), None).await;
    assert_eq!(body.unwrap(), b"ok");
}

#[tokio::test]
async fn public_only_refuses_loopback_before_connecting() {
    let srv = raw_server(b"HTTP/1.1 200 OK\r\n\r\n", Then::Close).await;
    let port = srv.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://[::1]:{port}"),
    ] {
        let base = parse_location(&url).unwrap();
        let got = fetch(&base, "shard", PublicOnly, &limits(10), None).await;
        assert!(
            matches!(
                got,
                Err(FetchError::Location(LocationError::ForbiddenAddress { .. }))
            ),
            "{url}: {got:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(srv.accepts.load(Ordering::SeqCst), 0, "never connected");
}

#[tokio::test]
async fn a_silent_server_hits_the_total_timeout() {
    let srv = raw_server(b"", Then::Hold).await;
    let short = FetchLimits {
        total_timeout: Duration::from_millis(300),
        ..limits(10)
    };
    let started = Instant::now();
    let got = fetch(&loc(srv.addr), "", AllowPrivate, &short, None).await;
    assert!(matches!(got, Err(FetchError::Timeout)), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_trickling_body_hits_the_total_timeout() {
    let srv = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab",
        Then::Hold,
    )
    .await;
    let short = FetchLimits {
        total_timeout: Duration::from_millis(300),
        ..limits(10)
    };
    let got = fetch(&loc(srv.addr), "", AllowPrivate, &short, None).await;
    assert!(matches!(got, Err(FetchError::Timeout)), "{got:?}");
}

#[tokio::test]
async fn a_wrong_content_length_fails_before_the_body() {
    let srv = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
        Then::Hold,
    )
    .await;
    let started = Instant::now();
    let got = fetch(&loc(srv.addr), "", AllowPrivate, &limits(1000), Some(50)).await;
    assert!(
        matches!(
            got,
            Err(FetchError::LengthMismatch {
                expected: 50,
                got: 100
            })
        ),
        "{got:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for a body"
    );
}

#[tokio::test]
async fn a_declared_length_over_the_cap_fails_before_the_body() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n";
    let srv = raw_server(head, Then::Hold).await;
    let started = Instant::now();
    let got = fetch(&loc(srv.addr), "", AllowPrivate, &limits(1000), None).await;
    assert!(matches!(got, Err(FetchError::TooLarge(1000))), "{got:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for a body"
    );
}

#[tokio::test]
async fn an_expected_length_over_the_cap_is_refused_without_connecting() {
    let srv = raw_server(b"", Then::Close).await;
    let got = fetch(&loc(srv.addr), "", AllowPrivate, &limits(10), Some(11)).await;
    assert!(matches!(got, Err(FetchError::TooLarge(10))), "{got:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(srv.accepts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_endless_body_stops_at_the_cap() {
    let srv = raw_server(b"HTTP/1.1 200 OK\r\n\r\n", Then::Endless).await;
    let started = Instant::now();
    for (expected, cap) in [(None, 100_000), (Some(10), 10)] {
        let got = fetch(&loc(srv.addr), "", AllowPrivate, &limits(100_000), expected).await;
        assert!(
            matches!(got, Err(FetchError::TooLarge(c)) if c == cap),
            "{got:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(2), "stopped early");
}

#[tokio::test]
async fn a_short_body_is_a_length_mismatch() {
    let declared = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd",
        Then::Close,
    )
    .await;
    let undeclared = raw_server(b"HTTP/1.1 200 OK\r\n\r\nabcd", Then::Close).await;
    for (srv, expected) in [
        (&declared, None),
        (&declared, Some(10)),
        (&undeclared, Some(10)),
    ] {
        let got = fetch(&loc(srv.addr), "", AllowPrivate, &limits(100), expected).await;
        assert!(
            matches!(
                got,
                Err(FetchError::LengthMismatch {
                    expected: 10,
                    got: 4
                })
            ),
            "{got:?}"
        );
    }
    let got = fetch(&loc(undeclared.addr), "", AllowPrivate, &limits(100), None).await;
    assert_eq!(got.unwrap(), b"abcd", "without a length, EOF ends the body");
}

#[tokio::test]
async fn bytes_past_the_declared_length_are_dropped() {
    let srv = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabcdef",
        Then::Close,
    )
    .await;
    let got = fetch(&loc(srv.addr), "", AllowPrivate, &limits(100), None).await;
    assert_eq!(got.unwrap(), b"ab");
}

#[tokio::test]
async fn an_endless_head_is_refused_after_its_cap() {
    let srv = raw_server(&vec![b'a'; 1 << 20], Then::Hold).await;
    let started = Instant::now();
    let got = fetch(&loc(srv.addr), "", AllowPrivate, &limits(100), None).await;
    assert!(
        matches!(got, Err(FetchError::HeadTooLarge(MAX_RESPONSE_HEAD))),
        "{got:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let target = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        Then::Close,
    )
    .await;
    let reply = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://{}/\r\nContent-Length: 0\r\n\r\n",
        target.addr
    );
    let srv = raw_server(reply.as_bytes(), Then::Close).await;
    let got = fetch(&loc(srv.addr), "", AllowPrivate, &limits(100), None).await;
    assert!(matches!(got, Err(FetchError::Status(302))), "{got:?}");
    assert_eq!(target.accepts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn chunked_bodies_are_refused() {
    let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    let srv = raw_server(reply, Then::Close).await;
    let got = fetch(&loc(srv.addr), "", AllowPrivate, &limits(100), None).await;
    assert!(
        matches!(&got, Err(FetchError::TransferEncoding(te)) if te == "chunked"),
        "{got:?}"
    );
}

#[tokio::test]
async fn https_to_a_plain_server_is_a_tls_error() {
    let srv = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        Then::Close,
    )
    .await;
    for host in ["127.0.0.1".to_string(), "localhost".to_string()] {
        let base = parse_location(&format!("https://{host}:{}", srv.addr.port())).unwrap();
        let got = fetch(&base, "", AllowPrivate, &limits(100), None).await;
        assert!(matches!(got, Err(FetchError::Tls(_))), "{host}: {got:?}");
    }
}

#[test]
fn the_request_line_comes_from_the_parsed_path() {
    let base = parse_location("http://h.example:81/a%0d%0aX:%20y/\u{e9}/").unwrap();
    let head = request_head(&base, &base.join("shard"));
    assert_eq!(
        head,
        "GET /a%0d%0aX:%20y/%C3%A9/shard HTTP/1.1\r\nHost: h.example:81\r\n\
         Connection: close\r\nAccept-Encoding: identity\r\n\r\n"
    );
    let v6 = parse_location("https://[2606:4700::1]").unwrap();
    assert!(
        request_head(&v6, &v6.join("manifest"))
            .starts_with("GET /manifest HTTP/1.1\r\nHost: [2606:4700::1]\r\n")
    );
}

#[test]
fn one_forbidden_address_refuses_the_host() {
    let public: SocketAddr = "8.8.8.8:80".parse().unwrap();
    let metadata: SocketAddr = "169.254.169.254:80".parse().unwrap();
    assert!(check_all(&[public], PublicOnly).is_ok());
    assert!(matches!(
        check_all(&[public, metadata], PublicOnly),
        Err(LocationError::ForbiddenAddress { .. })
    ));
    assert!(check_all(&[public, metadata], AllowPrivate).is_ok());
}

#[test]
fn response_heads_are_parsed_strictly() {
    let ok = |status, content_length, te: Option<&str>| Head {
        status,
        content_length,
        transfer_encoding: te.map(String::from),
    };
    let rows: Vec<(&str, Result<Head, &str>)> = vec![
        ("HTTP/1.1 200 OK", Ok(ok(200, None, None))),
        ("HTTP/1.0 404", Ok(ok(404, None, None))),
        (
            "HTTP/1.1 200 OK\r\ncontent-length:  12 ",
            Ok(ok(200, Some(12), None)),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3",
            Ok(ok(200, Some(3), None)),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked",
            Ok(ok(200, None, Some("gzip, chunked"))),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity",
            Ok(ok(200, None, None)),
        ),
        (
            "HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/",
            Ok(ok(302, None, None)),
        ),
        ("HTTP/2 200", Err("not an HTTP/1.x status line")),
        ("ICY 200 OK", Err("not an HTTP/1.x status line")),
        ("", Err("not an HTTP/1.x status line")),
        ("HTTP/1.1 20", Err("not an HTTP/1.x status line")),
        ("HTTP/1.1 2x0 OK", Err("bad status code")),
        ("HTTP/1.1 2000", Err("bad status code")),
        (
            "HTTP/1.1 200 OK\r\nno colon",
            Err("header line without a colon"),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: -1",
            Err("bad Content-Length"),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: +1",
            Err("bad Content-Length"),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: ",
            Err("bad Content-Length"),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999",
            Err("bad Content-Length"),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2",
            Err("conflicting Content-Length headers"),
        ),
    ];
    for (raw, want) in rows {
        match (parse_head(raw.as_bytes()), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{raw:?}"),
            (Err(FetchError::Malformed(got)), Err(want)) => assert_eq!(got, want, "{raw:?}"),
            (got, want) => panic!("{raw:?}: got {got:?}, want {want:?}"),
        }
    }
    assert!(matches!(
        parse_head(b"HTTP/1.1 200 \xff"),
        Err(FetchError::Malformed(_))
    ));
}

#[test]
fn the_body_plan_is_decided_from_the_head() {
    let head = |status, content_length, te: Option<&str>| Head {
        status,
        content_length,
        transfer_encoding: te.map(String::from),
    };
    let plan = |h: Head, expected| format!("{:?}", body_plan(&h, expected, 100));
    for (got, want) in [
        (plan(head(200, Some(5), None), None), "Ok(Declared(5))"),
        (plan(head(200, Some(5), None), Some(5)), "Ok(Declared(5))"),
        (plan(head(200, Some(100), None), None), "Ok(Declared(100))"),
        (
            plan(head(200, None, None), None),
            "Ok(UntilClose { cap: 100, exact: None })",
        ),
        (
            plan(head(200, None, None), Some(7)),
            "Ok(UntilClose { cap: 7, exact: Some(7) })",
        ),
        (plan(head(200, Some(101), None), None), "Err(TooLarge(100))"),
        (
            plan(head(200, Some(6), None), Some(5)),
            "Err(LengthMismatch { expected: 5, got: 6 })",
        ),
        (
            plan(head(200, None, Some("chunked")), None),
            "Err(TransferEncoding(\"chunked\"))",
        ),
        (plan(head(301, None, None), None), "Err(Status(301))"),
        (plan(head(302, Some(0), None), None), "Err(Status(302))"),
        (plan(head(404, Some(9), None), None), "Err(Status(404))"),
        (plan(head(204, None, None), None), "Err(Status(204))"),
    ] {
        assert_eq!(got, want);
    }
}

#[test]
fn errors_read_well() {
    for (err, want) in [
        (FetchError::ConnectTimeout, "connecting timed out"),
        (
            FetchError::HeadTooLarge(8192),
            "response head larger than 8192 bytes",
        ),
        (
            FetchError::LengthMismatch {
                expected: 5,
                got: 6,
            },
            "body is 6 bytes, expected exactly 5",
        ),
        (
            FetchError::TransferEncoding("chunked".into()),
            "Transfer-Encoding \"chunked\" is not supported (serve a Content-Length)",
        ),
    ] {
        assert_eq!(err.to_string(), want);
    }
}
