//! `gateprobe load` end to end against loopback servers whose truth is known.
use crate::common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classification_counts_equal_what_the_server_served() {
    let (address, counts) = serve_canary_split().await;
    let url = format!("http://{address}/PROD/hello");
    let (code, report) = load_report(&[
        "load",
        &url,
        "--rate",
        "2000",
        "-n",
        "6000",
        "--classify",
        "canary=body:empty",
        "--classify",
        "stable=json:/version",
    ])
    .await;
    assert_eq!(code, 0);
    assert_valid_report(&report);
    assert_books_balance(&report);
    let classes = &report["classes"];
    assert_eq!(
        classes["canary"]["count"].as_u64().unwrap(),
        counts.get(&counts.empty)
    );
    assert_eq!(
        classes["stable"]["count"].as_u64().unwrap(),
        counts.get(&counts.json)
    );
    assert_eq!(
        report["run"]["requests_completed"].as_u64().unwrap(),
        counts.get(&counts.total)
    );
    assert_eq!(counts.get(&counts.total), 6000);
    assert!(
        classes.get("unmatched").is_none(),
        "every response matched a rule"
    );
    let share = classes["canary"]["share"].as_f64().unwrap();
    assert!((0.08..0.12).contains(&share), "canary share {share}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templated_post_bodies_are_unique_per_request() {
    let names = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = names.clone();
    let (address, _) = serve(Arc::new(move |request, _| {
        let name = request
            .headers()
            .get("x-run")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        seen.lock().unwrap().push(name);
        Response::new(Full::new(Bytes::from_static(br#"{"executionArn":"arn"}"#)))
    }))
    .await;
    let url = format!("http://{address}/PROD/execution?n={{{{seq}}}}");
    let (code, _) = load_report(&[
        "load", &url, "-X", "POST", "--rate", "500", "-n", "300",
        "-H", "x-run: run-{{uuid}}",
        "-d", r#"{"input":"{}","name":"run-{{uuid}}","stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:Demo"}"#,
    ]).await;
    assert_eq!(code, 0);
    let names = names.lock().unwrap();
    assert_eq!(names.len(), 300);
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), 300, "every templated name is unique");
    assert!(
        names[0].starts_with("run-") && names[0].len() == 40,
        "{}",
        names[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_counted_and_exits_4() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let (code, report) = load_report(&["load", &url, "--rate", "200", "-n", "50"]).await;
    assert_eq!(code, 4, "nothing succeeded");
    assert_valid_report(&report);
    assert_books_balance(&report);
    assert_eq!(report["verdict"], "error");
    assert_eq!(report["errors"]["connect"].as_u64().unwrap(), 50);
    assert_eq!(report["classes"]["error"]["count"].as_u64().unwrap(), 50);
}

/// Accepts connections and answers each request with a truncated response,
/// then closes: the client sees the connection end mid-response.
async fn serve_truncating() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial")
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_response_is_counted_and_exits_4() {
    let address = serve_truncating().await;
    let url = format!("http://{address}/");
    let (code, report) = load_report(&["load", &url, "--rate", "200", "-n", "40"]).await;
    assert_eq!(code, 4);
    assert_books_balance(&report);
    assert_eq!(
        report["errors"]["reset"].as_u64().unwrap(),
        40,
        "{}",
        report["errors"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let url = format!("http://{address}/");
    let started = std::time::Instant::now();
    let (code, report) = load_report(&[
        "load",
        &url,
        "--rate",
        "100",
        "-n",
        "20",
        "--timeout",
        "300ms",
    ])
    .await;
    assert_eq!(code, 4);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout"
    );
    assert_books_balance(&report);
    assert_eq!(report["errors"]["timeout"].as_u64().unwrap(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn some_failures_still_exit_0_when_something_succeeded() {
    // Every third connection is cut before any answer; the others serve.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if accepted.fetch_add(1, Ordering::SeqCst) % 3 == 0 {
                drop(stream);
                continue;
            }
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"ok",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let url = format!("http://{address}/");
    let (code, report) = load_report(&["load", &url, "--rate", "300", "-n", "90"]).await;
    assert_eq!(code, 0);
    assert_books_balance(&report);
    let failed: u64 = report["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let ok = report["classes"]["ok"]["count"].as_u64().unwrap();
    assert!(failed > 0 && ok > 0, "failed {failed}, ok {ok}");
    assert_eq!(failed + ok, 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_cap_drops_explicitly_instead_of_slowing() {
    // A server that takes 200 ms per request, offered 100 rps with at most 5
    // in flight: about 25 rps can be served; the rest must be counted dropped.
    let (address, counts) = serve(Arc::new(|_, _| {
        std::thread::sleep(Duration::from_millis(200));
        Response::new(Full::new(Bytes::from_static(b"slow")))
    }))
    .await;
    let url = format!("http://{address}/");
    let (code, report) = load_report(&[
        "load",
        &url,
        "--rate",
        "100",
        "--duration",
        "2s",
        "--max-in-flight",
        "5",
    ])
    .await;
    assert_eq!(code, 0);
    assert_books_balance(&report);
    let run = &report["run"];
    assert_eq!(
        run["requests_due"].as_u64().unwrap(),
        200,
        "100 rps for 2 s came due"
    );
    let dropped = run["dropped"].as_u64().unwrap();
    assert!(dropped >= 100, "dropped {dropped}");
    assert_eq!(
        run["requests_sent"].as_u64().unwrap(),
        counts.get(&counts.total)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_and_shapes_run_to_their_bounds() {
    let (address, counts) = serve_ok().await;
    let url = format!("http://{address}/");
    let (code, report) =
        load_report(&["load", &url, "--rate", "max", "-c", "4", "-n", "500"]).await;
    assert_eq!(code, 0);
    assert_eq!(report["run"]["model"], "closed");
    assert_eq!(report["run"]["requests_sent"].as_u64().unwrap(), 500);
    assert_eq!(counts.get(&counts.total), 500);

    let (code, report) = load_report(&["load", &url, "--steps", "100,300@1s"]).await;
    assert_eq!(code, 0);
    assert_eq!(report["run"]["requests_due"].as_u64().unwrap(), 400);
    let sent = report["series"]["sent"].as_array().unwrap();
    assert!((95..=105).contains(&sent[0].as_u64().unwrap()), "{sent:?}");

    let (code, report) = load_report(&["load", &url, "--ramp", "0..400@1s"]).await;
    assert_eq!(code, 0);
    assert_eq!(report["run"]["requests_due"].as_u64().unwrap(), 200);
}

/// `late` counts requests the generator itself held back: a generator
/// stopped (SIGSTOP) for 300 ms at 200 rps sends the ≈ 60 requests that came
/// due meanwhile late, and says so in every format; a run that is not starved
/// counts none.
#[test]
fn late_counts_sends_the_starved_generator_held_back() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (address, _) = runtime.block_on(serve_ok());
    let url = format!("http://{address}/");
    let dir = temp_dir();
    let run = |name: &str, starve: bool| -> serde_json::Value {
        let json = dir.path().join(format!("{name}.json"));
        let markdown = dir.path().join(format!("{name}.md"));
        let junit = dir.path().join(format!("{name}.xml"));
        let html = dir.path().join(format!("{name}.html"));
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
            .args(["load", &url, "--rate", "200", "--duration", "2s", "--quiet"])
            .arg("--json")
            .arg(&json)
            .arg("--markdown")
            .arg(&markdown)
            .arg("--junit")
            .arg(&junit)
            .arg("--html")
            .arg(&html)
            .spawn()
            .unwrap();
        if starve {
            std::thread::sleep(Duration::from_millis(700));
            let signal = |name: &str| {
                let sent = std::process::Command::new("kill")
                    .args([name, &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(sent.success());
            };
            signal("-STOP");
            std::thread::sleep(Duration::from_millis(300));
            signal("-CONT");
        }
        assert_eq!(child.wait().unwrap().code(), Some(0), "{name}");
        let report = read_json(&json);
        assert_valid_report(&report);
        let late = report["run"]["late"].as_u64().unwrap();
        for path in [&markdown, &junit, &html] {
            let text = std::fs::read_to_string(path).unwrap();
            assert_eq!(
                text.contains(&format!("{late} late")),
                late > 0,
                "{name}: {} shows the late count {late}",
                path.display()
            );
        }
        report
    };
    let starved = run("starved", true);
    let late = starved["run"]["late"].as_u64().unwrap();
    eprintln!("late: {late} of {} sent", starved["run"]["requests_sent"]);
    assert!(
        late >= 20,
        "≈ 60 requests came due while the generator was stopped: {late} late"
    );
    // Not starved: late only as far as the send lag says the generator was
    // behind (other tests share these cores), and none when it never was.
    let calm = run("calm", false);
    let late = calm["run"]["late"].as_u64().unwrap();
    let max_lag_ms = calm["schedule_lag_ms"]["max"].as_f64().unwrap();
    eprintln!("calm: {late} late, max send lag {max_lag_ms} ms");
    if max_lag_ms < 9.9 {
        assert_eq!(
            late, 0,
            "no send was 10 ms behind (max lag {max_lag_ms} ms)"
        );
    } else {
        assert!(late > 0, "a send {max_lag_ms} ms behind is late");
    }
    drop(runtime);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_keepalive_opens_a_connection_per_request() {
    let closes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = closes.clone();
    let (address, counts) = serve(Arc::new(move |request, _| {
        if request
            .headers()
            .get("connection")
            .is_some_and(|v| v == "close")
        {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        Response::new(Full::new(Bytes::from_static(b"ok")))
    }))
    .await;
    let url = format!("http://{address}/");
    let (code, report) =
        load_report(&["load", &url, "--rate", "200", "-n", "120", "--no-keepalive"]).await;
    assert_eq!(code, 0, "{report}");
    assert_books_balance(&report);
    assert_eq!(counts.get(&counts.total), 120);
    assert_eq!(
        counts.get(&counts.connections),
        120,
        "one connection per request"
    );
    assert_eq!(
        closes.load(Ordering::SeqCst),
        120,
        "each request says Connection: close"
    );
    // Kept alive (the default), the same load reuses a few connections.
    let before = counts.get(&counts.connections);
    let (code, _) = load_report(&["load", &url, "--rate", "200", "-n", "120"]).await;
    assert_eq!(code, 0);
    let opened = counts.get(&counts.connections) - before;
    assert!(
        opened <= 10,
        "{opened} connections for 120 requests at 200 rps"
    );
}
