//! The fault suite: servers that misbehave the way real ones do, each run
//! against a bounded load. Every fault is counted under its kind, the exit
//! code says what happened, the report is valid and its books balance.
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common;

/// How a fault server treats each connection.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Accept, then reset at once (SO_LINGER 0): before any request is read.
    ResetAtAccept,
    /// Read the request, then reset.
    ResetAfterRequest,
    /// Send headers and part of the body, then reset.
    ResetMidBody,
    /// Read the request and never answer.
    SlowHeaders,
    /// Answer headers, then one body byte every 100 ms.
    TrickledBody,
    /// A chunked body that never ends, as fast as the socket takes it.
    EndlessChunked,
    /// Not HTTP at all.
    Garbage,
    /// HTTP/1.0 answers, closing the connection after each.
    Http10Close,
    /// A redirect to another port (never followed: a 302 is a response).
    Redirect(u16),
    /// A response whose headers exceed any sane size.
    HugeHeaders,
    /// Content-Length 100, 10 bytes sent, then a clean close.
    ShortBody,
    /// Accept and never read anything (a large POST cannot be sent).
    NeverReads,
}

async fn read_request(stream: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                seen.extend_from_slice(&buffer[..n]);
                if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    return true;
                }
            }
        }
    }
}

fn reset(stream: TcpStream) {
    // Linger 0 makes the close a RST and does not block (the deprecation is
    // about lingering with a timeout).
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn serve_connection(mut stream: TcpStream, fault: Fault) {
    match fault {
        Fault::ResetAtAccept => reset(stream),
        Fault::ResetAfterRequest => {
            read_request(&mut stream).await;
            reset(stream);
        }
        Fault::ResetMidBody => {
            read_request(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                .await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            reset(stream);
        }
        Fault::SlowHeaders => {
            read_request(&mut stream).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Fault::TrickledBody => {
            read_request(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                .await;
            for _ in 0..300 {
                if stream.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Fault::EndlessChunked => {
            read_request(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("4000\r\n{}\r\n", "y".repeat(0x4000));
            // Bounded: 30 s of it at most, whatever the client does.
            let until = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::time::Instant::now() < until {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
        Fault::Garbage => {
            read_request(&mut stream).await;
            let _ = stream
                .write_all(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02garbage garbage\r\n\r\n")
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Fault::Http10Close => {
            read_request(&mut stream).await;
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello").await;
            let _ = stream.shutdown().await;
        }
        Fault::Redirect(port) => {
            while read_request(&mut stream).await {
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/elsewhere\r\nContent-Length: 0\r\n\r\n"
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
        Fault::HugeHeaders => {
            read_request(&mut stream).await;
            let mut answer = String::from("HTTP/1.1 200 OK\r\n");
            for index in 0..2_000 {
                answer.push_str(&format!("x-filler-{index}: {}\r\n", "z".repeat(500)));
            }
            answer.push_str("Content-Length: 2\r\n\r\nok");
            let _ = stream.write_all(answer.as_bytes()).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Fault::ShortBody => {
            read_request(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                .await;
            let _ = stream.shutdown().await;
        }
        Fault::NeverReads => {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
}

/// A fault server on 127.0.0.1:0; it counts accepted connections.
async fn fault_server(fault: Fault) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(serve_connection(stream, fault));
        }
    });
    (address, accepted)
}

/// A listener that only counts connections (the redirect's target, a wrong port).
pub async fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, accepted)
}

struct Expect {
    /// The error kind every failure must have (`None`: no failures at all).
    kind: Option<&'static str>,
    exit: u8,
    /// The status every response must have, when there are responses.
    status: Option<&'static str>,
}

async fn check(name: &str, url: &str, extra: &[&str], expect: Expect) -> serde_json::Value {
    let mut args = vec![
        "load",
        url,
        "--rate",
        "100",
        "-n",
        "20",
        "--timeout",
        "400ms",
    ];
    args.extend_from_slice(extra);
    let (code, report) = common::load_report(&args).await;
    assert!(!report.is_null(), "{name}: no report");
    common::assert_valid_report(&report);
    common::assert_books_balance(&report);
    assert_eq!(
        code, expect.exit,
        "{name}: exit code ({})",
        report["reason"]
    );
    assert_eq!(report["exit_code"], expect.exit, "{name}");
    let errors = report["errors"].as_object().unwrap();
    let failed: u64 = errors.values().map(|v| v.as_u64().unwrap()).sum();
    let completed = report["run"]["requests_completed"].as_u64().unwrap();
    match expect.kind {
        Some(kind) => {
            assert_eq!(
                errors[kind].as_u64().unwrap(),
                failed,
                "{name}: every failure is `{kind}`: {errors:?}"
            );
            assert_eq!(
                failed, completed,
                "{name}: every request failed: {errors:?}"
            );
        }
        None => assert_eq!(failed, 0, "{name}: no transport failure: {errors:?}"),
    }
    if let Some(status) = expect.status {
        let responses = report["run"]["responses"].as_u64().unwrap();
        assert_eq!(responses, completed, "{name}: every request answered");
        let with_status: u64 = report["classes"]
            .as_object()
            .unwrap()
            .values()
            .map(|class| class["statuses"][status].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(with_status, responses, "{name}: all {status}");
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_counted_under_its_kind() {
    let started = std::time::Instant::now();
    let failing = |kind| Expect {
        kind: Some(kind),
        exit: 4,
        status: None,
    };
    // Refused: a port nothing listens on.
    let closed = common::free_port();
    check(
        "refused",
        &format!("http://127.0.0.1:{closed}/"),
        &[],
        failing("connect"),
    )
    .await;
    for (fault, kind) in [
        (Fault::ResetAtAccept, "reset"),
        (Fault::ResetAfterRequest, "reset"),
        (Fault::ResetMidBody, "reset"),
        (Fault::SlowHeaders, "timeout"),
        (Fault::TrickledBody, "timeout"),
        (Fault::EndlessChunked, "timeout"),
        (Fault::Garbage, "protocol"),
        (Fault::HugeHeaders, "protocol"),
        (Fault::ShortBody, "reset"),
    ] {
        let (address, _) = fault_server(fault).await;
        let url = format!("http://{address}/");
        check(&format!("{fault:?}"), &url, &[], failing(kind)).await;
    }
    // A reset right after accept is `reset` whatever the timing, over
    // HTTP/2 (whose handshake reads first) as over HTTP/1.1.
    let (address, _) = fault_server(Fault::ResetAtAccept).await;
    check(
        "ResetAtAccept over h2c",
        &format!("http://{address}/"),
        &["--http2"],
        failing("reset"),
    )
    .await;
    // A POST the server never reads: the body cannot be sent.
    let dir = common::temp_dir();
    let body = dir.path().join("body.txt");
    std::fs::write(&body, "b".repeat(8 * 1024 * 1024)).unwrap();
    let (address, _) = fault_server(Fault::NeverReads).await;
    let body_flag = format!("@{}", body.display());
    check(
        "NeverReads",
        &format!("http://{address}/"),
        &["-X", "POST", "-d", &body_flag],
        failing("timeout"),
    )
    .await;
    // HTTP/1.0 with close: valid answers, a new connection each time.
    let (address, accepted) = fault_server(Fault::Http10Close).await;
    check(
        "Http10Close",
        &format!("http://{address}/"),
        &[],
        Expect {
            kind: None,
            exit: 0,
            status: Some("200"),
        },
    )
    .await;
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        20,
        "a closed connection is not reused"
    );
    // Redirects are responses, never followed.
    let (elsewhere, visits) = counting_listener().await;
    let (address, _) = fault_server(Fault::Redirect(elsewhere)).await;
    check(
        "Redirect",
        &format!("http://{address}/"),
        &[],
        Expect {
            kind: None,
            exit: 0,
            status: Some("302"),
        },
    )
    .await;
    assert_eq!(
        visits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
    let elapsed = started.elapsed();
    common::say(&format!(
        "fault suite: 14 misbehaving servers in {:.1} s",
        elapsed.as_secs_f64()
    ));
    assert!(elapsed < Duration::from_secs(120), "{elapsed:?}");
}
