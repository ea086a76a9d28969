//! `gateprobe throttle` end to end: token buckets and every other limiter kind
//! in the simulator (real gateways: `real_limiters.rs`), per-key usage plans, 403 and quota stops, the gate's
//! exit codes, a window limiter, Retry-After, and a counting server that
//! holds the probe to its --max-rate and --max-requests.
use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use gateprobe::sim::{self, config};
use http_body_util::Full;
use serde_json::Value;

/// Probes measure time: run them one at a time, not beside each other.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CONFIG: &str = r#"{
  "account": { "throttle": { "rate": 100000, "burst": 50000 } },
  "deployments": {
    "v1": { "routes": [
      { "method": "GET", "path": "/x", "integration": { "type": "json", "body": { "ok": true } } },
      { "method": "GET", "path": "/k", "api_key_required": true,
        "integration": { "type": "json", "body": { "ok": true } } } ] }
  },
  "stages": {
    "B50": { "deployment": "v1", "method_throttles": { "GET /x": { "rate": 50, "burst": 10 } } },
    "B200": { "deployment": "v1", "throttle": { "rate": 200, "burst": 100 } },
    "B1000": { "deployment": "v1", "throttle": { "rate": 1000, "burst": 500 } },
    "KEYS": { "deployment": "v1" }
  },
  "usage_plans": [
    { "name": "basic", "api_keys": ["key-basic"], "throttle": { "rate": 50, "burst": 10 } },
    { "name": "gold", "api_keys": ["key-gold"], "throttle": { "rate": 200, "burst": 40 } },
    { "name": "silver", "api_keys": ["key-silver"], "throttle": { "rate": 100, "burst": 25 } },
    { "name": "capped", "api_keys": ["key-capped"], "throttle": { "rate": 500, "burst": 200 },
      "quota": { "limit": 100, "period": "DAY" } }
  ]
}"#;

async fn simulator() -> sim::Running {
    let config = config::parse("throttle test config", CONFIG).unwrap();
    sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(1))
        .await
        .unwrap()
}

pub(crate) async fn probe(url: &str, extra: &[&str]) -> (u8, Value) {
    let mut args = vec!["throttle", url];
    if !extra.contains(&"--idle") {
        args.extend_from_slice(&["--idle", "0"]);
    }
    args.extend_from_slice(extra);
    let (code, report) = load_report(&args).await;
    assert_valid_report(&report);
    (code, report)
}

pub(crate) fn estimate(report: &Value, what: &str) -> f64 {
    report["throttle"][what]["estimate"]
        .as_f64()
        .unwrap_or_else(|| panic!("no {what} estimate: {}", report["reason"]))
}

fn used(report: &Value) -> u64 {
    report["throttle"]["requests_used"].as_u64().unwrap()
}

/// The acceptance bounds: rate ±5%, burst ±10% (±2 under 20).
fn assert_estimates(report: &Value, rate: f64, burst: f64, what: &str) {
    let (seen_rate, seen_burst) = (estimate(report, "rate_per_s"), estimate(report, "burst"));
    say(&format!(
        "{what}: rate {seen_rate:.1} (true {rate}), burst {seen_burst:.1} (true {burst}), \
         {} requests, {:.1} s; {}",
        used(report),
        report["run"]["duration_s"].as_f64().unwrap_or(0.0),
        report["reason"]
    ));
    assert_eq!(report["throttle"]["model"], "token_bucket", "{what}");
    assert!(
        (seen_rate / rate - 1.0).abs() <= 0.05,
        "{what}: rate {seen_rate} vs {rate} ± 5%"
    );
    let slack = if burst < 20.0 { 2.0 } else { 0.1 * burst };
    assert!(
        (seen_burst - burst).abs() <= slack,
        "{what}: burst {seen_burst} vs {burst} ± {slack}"
    );
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_buckets_are_estimated_within_bounds_and_budget() {
    let _serial = SERIAL.lock().await;
    let running = simulator().await;
    for (stage, rate, burst) in [
        ("B50", 50.0, 10.0),
        ("B200", 200.0, 100.0),
        ("B1000", 1000.0, 500.0),
    ] {
        let url = running.url(&format!("/{stage}/x"));
        let (code, report) = probe(&url, &["--max-rate", "3000"]).await;
        assert_eq!(code, 0, "{}", report["reason"]);
        assert_estimates(
            &report,
            rate,
            burst,
            &format!("simulator ({rate}, {burst})"),
        );
        let budget = (burst + 15.0 * rate) as u64;
        assert!(
            used(&report) <= budget,
            "{} requests > B + 15R = {budget}",
            used(&report)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_plan_keys_auth_and_quota() {
    let _serial = SERIAL.lock().await;
    let running = simulator().await;
    let url = running.url("/KEYS/k");
    // Three keys, three usage plans, one run: each key probed in turn and
    // estimated on its own, reported per key.
    let keys = [
        ("basic", 50.0, 10.0),
        ("silver", 100.0, 25.0),
        ("gold", 200.0, 40.0),
    ];
    let dir = temp_dir();
    let file = dir.path().join("keys.txt");
    std::fs::write(
        &file,
        "# usage-plan keys\nbasic=key-basic\n\nsilver=key-silver\n",
    )
    .unwrap();
    let file_arg = format!("@{}", file.display());
    let (code, report) = probe(
        &url,
        &["--api-keys", &file_arg, "--api-keys", "gold=key-gold"],
    )
    .await;
    assert_eq!(code, 0, "{}", report["reason"]);
    assert_eq!(report["command"], "throttle");
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{report}");
    for ((label, rate, burst), step) in keys.iter().zip(steps) {
        assert_eq!(step["name"], format!("key {label}"));
        assert_estimates(
            &step["report"],
            *rate,
            *burst,
            &format!("usage plan {label}"),
        );
        let counted = &step["report"]["api_keys"][label];
        assert!(counted["throttled"].as_u64().unwrap() > 0, "{counted}");
        assert_eq!(report["api_keys"][label], *counted);
    }
    assert!(
        !report.to_string().contains("key-basic") && !report.to_string().contains("key-gold"),
        "an API key leaked into the report"
    );
    // No key: 403, an auth problem, not throttling.
    let (code, report) = probe(&url, &[]).await;
    say(&format!("missing key: exit {code}: {}", report["reason"]));
    assert_eq!(code, 4);
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("401/403") && reason.contains("auth"),
        "{reason}"
    );
    assert!(report["throttle"]["forbidden"].as_u64().unwrap() >= 5);
    assert_eq!(report["throttle"]["model"], "unknown");
    // Nothing was refused by a limiter: no knee is claimed.
    assert!(
        report["throttle"]["knee_rate_per_s"].is_null(),
        "{}",
        report["throttle"]
    );
    assert!(used(&report) < 100, "stopped early: {}", used(&report));
    // Quota: 100 a day; the probe stops at the first Limit Exceeded. The
    // usage plan as the simulator prints it declares that quota: it held.
    let config = config::parse("throttle test config", CONFIG).unwrap();
    let (declared, _) = config::aws::usage_plan(&config, "capped").unwrap();
    let plan_file = dir.path().join("capped.json");
    std::fs::write(&plan_file, declared.to_string()).unwrap();
    let plan_arg = plan_file.display().to_string();
    let capped = ["-H", "x-api-key: key-capped", "--aws-usage-plan", &plan_arg];
    let (code, report) = probe(&url, &capped).await;
    say(&format!("quota: exit {code}: {}", report["reason"]));
    assert_eq!(code, 3);
    assert_eq!(report["throttle"]["quota_exhausted"], true);
    assert!(report["reason"].as_str().unwrap().contains("quota"));
    assert!(
        used(&report) <= 130,
        "sent {} after a 100 quota",
        used(&report)
    );
    let quota = check_named(&report, "throttle quota");
    assert_eq!(quota["verdict"], "pass", "{quota}");
    assert_eq!(report["throttle"]["quota"]["admitted"], 100, "{report:#}");
    // Declared 50 a day, admitted 100: the declaration is wrong, and the
    // check says so, naming it (a fresh simulator: the key's quota is spent).
    let mut half = declared.clone();
    half["quota"]["limit"] = 50.into();
    std::fs::write(&plan_file, half.to_string()).unwrap();
    let fresh = simulator().await;
    let (code, report) = probe(&fresh.url("/KEYS/k"), &capped).await;
    let quota = check_named(&report, "throttle quota");
    say(&format!(
        "quota declared 50: exit {code}: {}",
        quota["reason"]
    ));
    assert_eq!(code, 1, "{}", report["reason"]);
    assert_eq!(quota["verdict"], "fail");
    let reason = quota["reason"].as_str().unwrap();
    assert!(
        reason.contains("admitted 100")
            && reason.contains("50 per DAY")
            && reason.contains("capped.json quota"),
        "{reason}"
    );
}

fn check_named<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|check| check["name"] == name))
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expectations_gate_with_exit_codes() {
    let _serial = SERIAL.lock().await;
    let running = simulator().await;
    let url = running.url("/B50/x");
    let (code, report) = probe(&url, &["--expect-rate", "50", "--expect-burst", "10"]).await;
    assert_eq!(code, 0, "{}", report["reason"]);
    assert_eq!(check(&report, "throttle rate")["verdict"], "pass");
    assert_eq!(check(&report, "throttle burst")["verdict"], "pass");
    let (code, report) = probe(&url, &["--expect-rate", "150", "--expect-burst", "10"]).await;
    say(&format!(
        "expect 150 rps: exit {code}: {}",
        report["reason"]
    ));
    assert_eq!(code, 1);
    assert_eq!(check(&report, "throttle rate")["verdict"], "fail");
    assert!(report["reason"].as_str().unwrap().contains("throttle rate"));
    let (code, report) = probe(&url, &["--expect-burst", "60"]).await;
    assert_eq!(code, 1);
    assert_eq!(check(&report, "throttle burst")["verdict"], "fail");
}

/// A limiter in the test server, and the arrival time of every request.
/// A server with a fixed window of `limit` per second, the window starting
/// at the first request after the last one ended (a Redis INCR with a TTL).
pub(crate) fn fixed_window_server(limit: u32) -> Handler {
    let mut window = (None::<Instant>, 0_u32);
    limited_server(move |now| {
        let start = window.0.get_or_insert(now);
        if now.duration_since(*start) >= Duration::from_secs(1) {
            window = (Some(now), 0);
        }
        window.1 += 1;
        (window.1 > limit).then_some(None)
    })
    .0
}

fn limited_server(
    limiter: impl FnMut(Instant) -> Option<Option<u64>> + Send + 'static,
) -> (Handler, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let limiter = Mutex::new(limiter);
    let handler: Handler = Arc::new(move |_, _| {
        let now = Instant::now();
        seen.lock().unwrap().push(now);
        // None: admitted; Some(retry_after): throttled.
        match (limiter.lock().unwrap())(now) {
            None => hyper::Response::new(Full::new(Bytes::from_static(b"ok"))),
            Some(retry_after) => {
                let mut response = hyper::Response::builder().status(429);
                if let Some(seconds) = retry_after {
                    response = response.header("retry-after", seconds.to_string());
                }
                response
                    .body(Full::new(Bytes::from_static(
                        b"{\"message\":\"Too Many Requests\"}",
                    )))
                    .unwrap()
            }
        }
    });
    (handler, arrivals)
}

/// A token bucket in the test server.
fn bucket(
    rate: f64,
    burst: f64,
    retry_after: Option<u64>,
) -> impl FnMut(Instant) -> Option<Option<u64>> {
    let mut state: Option<(f64, Instant)> = None;
    move |now| {
        let (tokens, last) = state.get_or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            None
        } else {
            Some(retry_after)
        }
    }
}

/// Most arrivals in any one-second window.
fn busiest_second(arrivals: &[Instant]) -> usize {
    let mut sorted = arrivals.to_vec();
    sorted.sort();
    let mut most = 0;
    let mut start = 0;
    for (end, at) in sorted.iter().enumerate() {
        while at.duration_since(sorted[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counting_server_sees_max_rate_and_max_requests_kept() {
    let _serial = SERIAL.lock().await;
    // Nothing throttles: the probe climbs to --max-rate and holds it until
    // --max-requests runs out.
    let (handler, arrivals) = limited_server(|_| None);
    let (address, _) = serve(handler).await;
    let url = format!("http://{address}/");
    let (code, report) = probe(&url, &["--max-rate", "200", "--max-requests", "700"]).await;
    let arrivals = arrivals.lock().unwrap().clone();
    let busiest = busiest_second(&arrivals);
    say(&format!(
        "no limiter, --max-rate 200 --max-requests 700: {} arrived, busiest second {busiest}; exit {code}: {}",
        arrivals.len(),
        report["reason"]
    ));
    assert_eq!(code, 3, "nothing throttled is inconclusive");
    assert_eq!(report["throttle"]["model"], "none");
    assert!(arrivals.len() <= 700, "{} requests", arrivals.len());
    assert!(busiest <= 200, "{busiest} in one second");
    assert!(busiest >= 190, "the probe did reach its cap: {busiest}");
    // A limiter below the cap: the overload is capped at --max-rate too.
    let (handler, arrivals) = limited_server(bucket(100.0, 20.0, None));
    let (address, _) = serve(handler).await;
    let url = format!("http://{address}/");
    let (code, report) = probe(&url, &["--max-rate", "150", "--max-requests", "2000"]).await;
    let arrivals = arrivals.lock().unwrap().clone();
    let busiest = busiest_second(&arrivals);
    say(&format!(
        "bucket (100, 20), --max-rate 150: {} arrived, busiest second {busiest}; exit {code}: {}",
        arrivals.len(),
        report["reason"]
    ));
    assert!(
        arrivals.len() <= 2000 && busiest <= 150,
        "{busiest} in one second"
    );
    assert_eq!(code, 0, "{}", report["reason"]);
    assert!((estimate(&report, "rate_per_s") / 100.0 - 1.0).abs() <= 0.05);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_window_server_is_named_with_its_limit_and_length() {
    let _serial = SERIAL.lock().await;
    let (address, _) = serve(fixed_window_server(60)).await;
    let url = format!("http://{address}/");
    let (code, report) = probe(&url, &["--expect-burst", "60"]).await;
    say(&format!(
        "fixed window 60/s: model {}, exit {code}: {}",
        report["throttle"]["model"], report["reason"]
    ));
    assert_eq!(report["throttle"]["model"], "fixed_window");
    assert_within(&report, "window_limit", 60.0, 0.05, 0.0);
    assert_within(&report, "window_s", 1.0, 0.10, 0.0);
    assert_eq!(code, 1);
    assert!(check(&report, "throttle burst")["reason"]
        .as_str()
        .unwrap()
        .contains("window"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_respected_unless_told_otherwise() {
    let _serial = SERIAL.lock().await;
    let (handler, arrivals) = limited_server(bucket(50.0, 10.0, Some(1)));
    let (address, _) = serve(handler).await;
    let url = format!("http://{address}/");
    let (code, report) = probe(&url, &[]).await;
    say(&format!("Retry-After: exit {code}: {}", report["reason"]));
    assert_eq!(code, 3);
    assert_eq!(report["throttle"]["retry_after_s"], 1.0);
    assert!(report["reason"].as_str().unwrap().contains("Retry-After"));
    let sent = arrivals.lock().unwrap().len();
    assert!(sent < 120, "kept sending after Retry-After: {sent}");
    let (code, report) = probe(&url, &["--ignore-retry-after", "--idle", "1s"]).await;
    assert_eq!(code, 0, "{}", report["reason"]);
    assert!((estimate(&report, "rate_per_s") / 50.0 - 1.0).abs() <= 0.05);
}

/// `report.throttle.<field>.estimate` within ±`share` (or ±`least`) of `truth`.
pub(crate) fn assert_within(report: &Value, field: &str, truth: f64, share: f64, least: f64) {
    let seen = estimate(report, field);
    let slack = (truth * share).max(least);
    assert!(
        (seen - truth).abs() <= slack,
        "{field} {seen} vs {truth} ± {slack}: {}",
        report["reason"]
    );
}

pub(crate) const KINDS: &str = r#"{
  "account": { "throttle": { "rate": 100000, "burst": 50000 } },
  "deployments": {
    "v1": { "routes": [
      { "method": "GET", "path": "/x", "integration": { "type": "json", "body": { "ok": true } } } ] },
    "fn": { "routes": [
      { "method": "GET", "path": "/x", "integration": { "type": "json", "body": { "ok": true } } } ],
      "concurrency": { "limit": 12, "duration_ms": 140 } }
  },
  "stages": {
    "QUEUE": { "deployment": "v1", "throttle": { "kind": "queue", "rate": 60, "burst": 30 } },
    "FIXED": { "deployment": "v1", "throttle": { "kind": "fixed_window", "limit": 50, "window_s": 1 } },
    "SLIDE": { "deployment": "v1",
      "throttle": { "kind": "sliding_window", "limit": 80, "window_s": 1, "counts_refused": true } },
    "LAMBDA": { "deployment": "fn" }
  }
}"#;

/// Every kind of limiter the simulator has, named by the probe with its
/// parameters within the acceptance bounds, and its gates passing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limiter_kind_in_the_simulator_is_named() {
    let _serial = SERIAL.lock().await;
    let config = config::parse("kinds", KINDS).unwrap();
    let sim = sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(1))
        .await
        .unwrap();
    let url = |stage: &str| format!("http://{}/{stage}/x", sim.address);
    // nginx-like queue: rate 60, 30 waiting, each admitted request waits ≈ 0.5 s.
    let (code, report) = probe(
        &url("QUEUE"),
        &[
            "--expect-model",
            "queue",
            "--expect-rate",
            "60",
            "--expect-queue-depth",
            "30",
        ],
    )
    .await;
    say(&format!("queue 60/30: exit {code}: {}", report["reason"]));
    assert_eq!(report["throttle"]["model"], "queue", "{}", report["reason"]);
    assert_within(&report, "rate_per_s", 60.0, 0.05, 0.0);
    assert_within(&report, "queue_depth", 30.0, 0.10, 2.0);
    assert_within(&report, "queue_delay_ms", 500.0, 0.15, 0.0);
    assert_eq!(code, 0, "{}", report["reason"]);
    // A fixed window of 50 per second.
    let (code, report) = probe(
        &url("FIXED"),
        &[
            "--expect-model",
            "fixed_window",
            "--expect-window-limit",
            "50",
            "--expect-window",
            "1s",
        ],
    )
    .await;
    say(&format!(
        "fixed window 50/1s: exit {code}: {}",
        report["reason"]
    ));
    assert_eq!(
        report["throttle"]["model"], "fixed_window",
        "{}",
        report["reason"]
    );
    assert_within(&report, "window_limit", 50.0, 0.05, 0.0);
    assert_within(&report, "window_s", 1.0, 0.10, 0.0);
    assert_eq!(code, 0, "{}", report["reason"]);
    // A Lambda function with reserved concurrency 12 taking 140 ms: API
    // Gateway answers its throttles 500, so the user marks those.
    let (code, report) = probe(
        &url("LAMBDA"),
        &[
            "--classify",
            "throttled=status:500",
            "--expect-model",
            "concurrency",
            "--expect-concurrency",
            "12",
        ],
    )
    .await;
    say(&format!(
        "concurrency 12 × 140 ms: exit {code}: {}",
        report["reason"]
    ));
    assert_eq!(
        report["throttle"]["model"], "concurrency",
        "{}",
        report["reason"]
    );
    assert_within(&report, "concurrency", 12.0, 0.0, 1.0);
    assert_eq!(code, 0, "{}", report["reason"]);
    // A sliding window that counts refusals locks the client out: the probe
    // backs off, spends at most 2 × 80 more refused requests, and says so.
    let (code, report) = probe(&url("SLIDE"), &["--expect-model", "sliding_window"]).await;
    say(&format!(
        "sliding window 80/1s counting refusals: exit {code}: {}",
        report["reason"]
    ));
    let throttle = &report["throttle"];
    assert_eq!(throttle["model"], "sliding_window", "{}", report["reason"]);
    assert_eq!(throttle["counts_refused"], true);
    let after = throttle["lockout"]["refused_after"].as_u64().unwrap();
    assert!(
        after <= 160,
        "{after} refused requests after the lockout was recognised"
    );
    assert!(throttle["lockout"]["recovered_after_s"].as_f64().is_some());
    assert_eq!(code, 0, "{}", report["reason"]);
    // The wrong model failing its gate is tested in virtual time
    // (throttle_stats::the_wrong_model_fails_its_gate_in_virtual_time).
}

/// The simulator's concurrency limit admits C ÷ duration at 2× overload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_admits_concurrency_over_duration() {
    let _serial = SERIAL.lock().await;
    let config = config::parse("kinds", KINDS).unwrap();
    let sim = sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(1))
        .await
        .unwrap();
    let url = format!("http://{}/LAMBDA/x", sim.address);
    let expected = 12.0 / 0.140;
    let rate = format!("{:.0}", 2.0 * expected);
    let (_, report) = load_report(&["load", &url, "--rate", &rate, "--duration", "4s"]).await;
    let admitted = report["classes"]["ok"]["count"].as_f64().unwrap_or(0.0);
    let seconds = report["run"]["duration_s"].as_f64().unwrap();
    let admitted_rate = admitted / seconds;
    say(&format!(
        "concurrency 12 × 140 ms at {rate} rps: {admitted_rate:.1} admitted rps (C ÷ duration = {expected:.1})"
    ));
    assert!(
        (admitted_rate / expected - 1.0).abs() <= 0.05,
        "{admitted_rate} vs {expected}"
    );
}

#[test]
fn bad_inputs_exit_2_with_one_line() {
    for (args, expected) in [
        (vec!["--rate", "100"], "--rate: the throttle probe chooses"),
        (vec!["--max-rate", "fast"], "--max-rate"),
        (vec!["--tolerance", "150%"], "--tolerance"),
        (vec!["--start-rate", "5000"], "above --max-rate"),
        (vec!["--expect-burst", "lots"], "--expect-burst"),
        (
            vec!["--expect-model", "bucket"],
            "--expect-model: expected one of token_bucket",
        ),
        (vec!["--expect-concurrency", "-3"], "--expect-concurrency"),
        (vec!["--expect-window", "soon"], "--expect-window"),
    ] {
        let output = assert_cmd::Command::cargo_bin("gateprobe")
            .unwrap()
            .args(["throttle", "http://127.0.0.1:9/"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_rotates_api_keys_and_counts_each() {
    let _serial = SERIAL.lock().await;
    let running = simulator().await;
    let url = running.url("/KEYS/k");
    let keys = [
        "--api-keys",
        "capped=key-capped",
        "--api-keys",
        "bogus=not-a-key",
        "--api-keys",
        "key-gold",
    ];
    let mut args = vec!["load", url.as_str(), "--rate", "300", "-n", "300"];
    args.extend_from_slice(&keys);
    let (code, report) = load_report(&args).await;
    assert_eq!(code, 0, "{}", report["reason"]);
    assert_valid_report(&report);
    let per_key = &report["api_keys"];
    for label in ["capped", "bogus", "key 3"] {
        assert_eq!(per_key[label]["sent"], 100, "round-robin: {per_key}");
    }
    assert_eq!(per_key["bogus"]["forbidden"], 100, "{per_key}");
    assert_eq!(per_key["key 3"]["responses"], 100, "{per_key}");
    // The capped key's quota (100 a day) held all 100.
    assert_eq!(per_key["capped"]["throttled"], 0, "{per_key}");
    assert!(!report.to_string().contains("not-a-key") && !report.to_string().contains("key-gold"));
    // Random order: every key used, none by more than chance allows.
    args.extend_from_slice(&["--api-key-order", "random"]);
    let (_, report) = load_report(&args).await;
    for label in ["capped", "bogus", "key 3"] {
        let sent = report["api_keys"][label]["sent"].as_u64().unwrap();
        assert!((70..=130).contains(&sent), "{label}: {sent} of 300");
    }
    // Input mistakes exit 2.
    for bad in [
        vec!["--api-keys", "a=k1", "-H", "x-api-key: k2"],
        vec!["--api-keys", "a=k1", "--api-keys", "a=k2"],
        vec!["--api-keys", "k1", "--api-key-order", "sometimes"],
        vec!["--api-keys", "@/nonexistent/keys.txt"],
    ] {
        let mut args = vec!["load", url.as_str(), "-n", "1"];
        args.extend_from_slice(&bad);
        assert_eq!(run(&args).await, 2, "{bad:?}");
    }
}
