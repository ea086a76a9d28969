//! `gateprobe throttle` against limiters nobody on this project wrote —
//! nginx `limit_req` with and without `nodelay`, nginx `limit_conn` before a
//! slow upstream, HAProxy's `sc_http_req_rate` stick table — and a test
//! server with a fixed window: the model named right and its parameters
//! within the acceptance bounds (rate ±5%, burst or queue depth ±10% or ±2,
//! concurrency ±1, window limit ±5%, window length ±10%).
//!
//! CI runs each once; `cargo test --release -- --ignored real_limiters_ten_times
//! --nocapture` runs each ten times and prints the table in docs/throttle.md.
use crate::common::*;
use crate::throttle::{fixed_window_server, probe, SERIAL};

use gateprobe::sim::{self, config};
use serde_json::Value;

/// The limiters, each with what the probe must find.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Real {
    NginxNodelay,
    /// A queue ahead of a rate: `limit_req rate=R burst=B` without `nodelay`.
    NginxQueue {
        rate: u32,
        burst: u32,
    },
    NginxLimitConn,
    Haproxy,
    FixedWindowServer,
}

const ALL: [Real; 7] = [
    Real::NginxNodelay,
    Real::NginxQueue {
        rate: 60,
        burst: 30,
    },
    Real::NginxQueue {
        rate: 40,
        burst: 12,
    },
    Real::NginxQueue {
        rate: 150,
        burst: 60,
    },
    Real::NginxLimitConn,
    Real::Haproxy,
    Real::FixedWindowServer,
];

/// A parameter's truth and how far the estimate may be: ±share, or ±least.
struct Truth {
    field: &'static str,
    value: f64,
    share: f64,
    least: f64,
}

const fn truth(field: &'static str, value: f64, share: f64, least: f64) -> Truth {
    Truth {
        field,
        value,
        share,
        least,
    }
}

impl Real {
    fn name(self) -> String {
        match self {
            Real::NginxNodelay => "nginx limit_req rate=100r/s burst=20 nodelay".to_string(),
            Real::NginxQueue { rate, burst } => {
                format!("nginx limit_req rate={rate}r/s burst={burst} (no nodelay)")
            }
            Real::NginxLimitConn => "nginx limit_conn 12 before a 140 ms upstream".to_string(),
            Real::Haproxy => "HAProxy sc_http_req_rate(1s) gt 80 (counts refusals)".to_string(),
            Real::FixedWindowServer => "test server: fixed window 60 per 1 s".to_string(),
        }
    }

    fn model(self) -> &'static str {
        match self {
            Real::NginxNodelay => "token_bucket",
            Real::NginxQueue { .. } => "queue",
            Real::NginxLimitConn => "concurrency",
            Real::Haproxy => "sliding_window",
            Real::FixedWindowServer => "fixed_window",
        }
    }

    /// nginx admits burst + 1 at once (its first request does not count).
    fn truths(self) -> Vec<Truth> {
        match self {
            Real::NginxNodelay => vec![
                truth("rate_per_s", 100.0, 0.05, 0.0),
                truth("burst", 21.0, 0.10, 2.0),
            ],
            // A full queue of B delays an admitted request by B ÷ R.
            Real::NginxQueue { rate, burst } => vec![
                truth("rate_per_s", f64::from(rate), 0.05, 0.0),
                truth("queue_depth", f64::from(burst), 0.10, 2.0),
                truth(
                    "queue_delay_ms",
                    1000.0 * f64::from(burst) / f64::from(rate),
                    0.15,
                    0.0,
                ),
            ],
            Real::NginxLimitConn => vec![truth("concurrency", 12.0, 0.0, 1.0)],
            Real::Haproxy => vec![
                truth("window_limit", 80.0, 0.05, 0.0),
                truth("window_s", 1.0, 0.10, 0.0),
            ],
            Real::FixedWindowServer => vec![
                truth("window_limit", 60.0, 0.05, 0.0),
                truth("window_s", 1.0, 0.10, 0.0),
            ],
        }
    }

    /// Gates that must pass with the true values.
    fn gates(self) -> Vec<String> {
        let words: &[&str] = match self {
            Real::NginxNodelay => &["--expect-model", "token_bucket", "--expect-rate", "100"],
            Real::NginxQueue { rate, burst } => {
                return ["--expect-model", "queue", "--expect-rate"]
                    .iter()
                    .map(|word| word.to_string())
                    .chain([
                        rate.to_string(),
                        "--expect-queue-depth".to_string(),
                        burst.to_string(),
                    ])
                    .collect();
            }
            Real::NginxLimitConn => &[
                "--expect-model",
                "concurrency",
                "--expect-concurrency",
                "12",
            ],
            Real::Haproxy => &[
                "--expect-model",
                "sliding_window",
                "--expect-window-limit",
                "80",
            ],
            Real::FixedWindowServer => &["--expect-model", "fixed_window", "--expect-window", "1s"],
        };
        words.iter().map(|word| word.to_string()).collect()
    }
}

/// What keeps a limiter running until the trial ends.
enum Running {
    Daemon(
        #[allow(dead_code)] Daemon,
        #[allow(dead_code)] Option<sim::Running>,
    ),
    Server,
}

const SLOW_UPSTREAM: &str = r#"{
  "account": { "throttle": { "rate": 100000, "burst": 50000 } },
  "deployments": { "v1": { "latency_ms": { "fixed": 140 }, "routes": [
      { "method": "GET", "path": "/x", "integration": { "type": "json", "body": { "ok": true } } } ] } },
  "stages": { "S": { "deployment": "v1" } }
}"#;

/// Starts `real` and returns the URL to probe, or why it is skipped.
async fn start(real: Real, root: &std::path::Path) -> Result<(Running, String), String> {
    let files = format!("root {};", root.display());
    let nginx = |http: &str, location: &str| {
        start_nginx(http, &format!("location / {{ {location} }}")).map(|daemon| {
            let url = format!("http://127.0.0.1:{}/x", daemon.port);
            (daemon, url)
        })
    };
    match real {
        Real::NginxNodelay => nginx(
            "limit_req_zone $server_port zone=probe:1m rate=100r/s;",
            &format!("{files} limit_req zone=probe burst=20 nodelay; limit_req_status 429;"),
        )
        .map(|(daemon, url)| (Running::Daemon(daemon, None), url)),
        Real::NginxQueue { rate, burst } => nginx(
            &format!("limit_req_zone $server_port zone=probe:1m rate={rate}r/s;"),
            &format!("{files} limit_req zone=probe burst={burst}; limit_req_status 429;"),
        )
        .map(|(daemon, url)| (Running::Daemon(daemon, None), url)),
        Real::NginxLimitConn => {
            let config = config::parse("slow upstream", SLOW_UPSTREAM).unwrap();
            let upstream = sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(1))
                .await
                .unwrap();
            // `location /` with `proxy_pass …/S/` maps `/x` to the upstream's `/S/x`.
            let (daemon, url) = nginx(
                &format!(
                    "limit_conn_zone $server_port zone=conn:1m;\n\
                     upstream slow {{ server {}; keepalive 64; }}",
                    upstream.address
                ),
                "limit_conn conn 12; limit_conn_status 429; proxy_http_version 1.1; \
                 proxy_set_header Connection \"\"; proxy_pass http://slow/S/;",
            )?;
            Ok((Running::Daemon(daemon, Some(upstream)), url))
        }
        Real::Haproxy => {
            let daemon = start_haproxy(
                "  stick-table type ip size 1k expire 30s store http_req_rate(1s)\n  \
                 http-request track-sc0 src\n  \
                 http-request deny deny_status 429 if { sc_http_req_rate(0) gt 80 }\n  \
                 http-request return status 200 content-type text/plain string ok",
            )?;
            let url = format!("http://127.0.0.1:{}/", daemon.port);
            Ok((Running::Daemon(daemon, None), url))
        }
        Real::FixedWindowServer => {
            let (address, _) = serve(fixed_window_server(60)).await;
            Ok((Running::Server, format!("http://{address}/")))
        }
    }
}

/// One probe of `real`: whether the model and every parameter were right
/// and the gates passed, and a line saying what was found. `None`: skipped.
async fn trial(real: Real) -> Option<(bool, String, Value)> {
    let root = temp_dir();
    std::fs::write(root.path().join("x"), "ok\n").unwrap();
    let (running, url) = match start(real, root.path()).await {
        Ok(started) => started,
        Err(why) => {
            say(&format!("SKIPPED {}: {why}", real.name()));
            return None;
        }
    };
    let _serial = SERIAL.lock().await;
    let gates = real.gates();
    let gates: Vec<&str> = gates.iter().map(String::as_str).collect();
    let (code, report) = probe(&url, &gates).await;
    drop(running);
    let throttle = &report["throttle"];
    let mut right = code == 0 && throttle["model"] == real.model();
    let mut seen = vec![format!(
        "{} (exit {code})",
        throttle["model"].as_str().unwrap_or("?")
    )];
    for Truth {
        field,
        value,
        share,
        least,
    } in real.truths()
    {
        let found = throttle[field]["estimate"].as_f64();
        let within = found.is_some_and(|found| (found - value).abs() <= (value * share).max(least));
        right &= within;
        seen.push(format!(
            "{field} {} (true {value})",
            found.map_or("-".to_string(), |found| format!("{found:.1}"))
        ));
    }
    let line = format!(
        "{}: {} — {}",
        real.name(),
        seen.join(", "),
        report["reason"]
    );
    say(&line);
    Some((right, line, report))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_limiters_are_named_with_their_parameters() {
    for real in ALL {
        let Some((right, line, report)) = trial(real).await else {
            continue;
        };
        assert!(right, "{line}");
        if real == Real::Haproxy {
            // Locked out: it backed off at once and said so.
            let lockout = &report["throttle"]["lockout"];
            assert!(
                lockout["refused_after"].as_u64().unwrap() <= 2 * 80,
                "{lockout}"
            );
            assert_eq!(report["throttle"]["counts_refused"], true);
            let window = &report["throttle"]["window_s"];
            assert!(window["ci_low"].as_f64().unwrap() <= 1.0, "{window}");
            assert!(1.0 <= window["ci_high"].as_f64().unwrap(), "{window}");
        }
        if let Real::NginxQueue { rate, .. } = real {
            // The knee is the queue's rate, not a step of the doubling
            // search; the safe rate is at most the truth.
            let rate = f64::from(rate);
            say(&format!(
                "  queue depth {} from: {}",
                report["throttle"]["queue_depth"],
                report["throttle"]["interval_kind"]["queue_depth"]
            ));
            let knee = report["throttle"]["knee_rate_per_s"].as_f64().unwrap();
            let safe = report["throttle"]["safe_rate_per_s"].as_f64().unwrap();
            assert!((knee / rate - 1.0).abs() <= 0.05, "knee {knee}");
            assert!(safe <= rate * 1.000_001, "safe {safe}");
            // The rate's and the depth's intervals hold the truth (the delay
            // is a median of what was measured: B ÷ R less a part-leaked slot).
            for Truth { field, value, .. } in real.truths() {
                if field == "queue_delay_ms" {
                    continue;
                }
                let interval = &report["throttle"][field];
                let (low, high) = (interval["ci_low"].as_f64(), interval["ci_high"].as_f64());
                assert!(
                    low.is_some_and(|low| low <= value) && high.is_some_and(|high| value <= high),
                    "{field} {interval} misses {value}"
                );
            }
        }
    }
}

/// Ten probes of each real limiter; ≥ 9 of 10 right each (docs/throttle.md's table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn real_limiters_ten_times() {
    let mut rows = Vec::new();
    for real in ALL {
        let mut right = 0;
        let mut ran = 0;
        for _ in 0..10 {
            if let Some((ok, _, _)) = trial(real).await {
                ran += 1;
                right += u32::from(ok);
            }
        }
        rows.push((real, right, ran));
    }
    println!("| limiter | model | right |");
    println!("|---|---|---|");
    for (real, right, ran) in &rows {
        println!(
            "| {} | `{}` | {right} of {ran} |",
            real.name(),
            real.model()
        );
    }
    for (real, right, ran) in rows {
        assert!(ran == 0 || right >= 9, "{}: {right} of {ran}", real.name());
    }
}
