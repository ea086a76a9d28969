//! The simulator's truth, checked from outside over HTTP with gateprobe itself.
use crate::common;

use std::time::Instant;

use common::*;
use gateprobe::sim::{self, config};

const CONFIG: &str = r#"{
  "account": { "throttle": { "rate": 100000, "burst": 50000 } },
  "deployments": {
    "stable": { "routes": [
      { "method": "GET", "path": "/s", "integration": { "type": "json", "body": { "version": "1" } } },
      { "method": "GET", "path": "/m", "integration": { "type": "json", "body": { "version": "1" } } },
      { "method": "GET", "path": "/k", "api_key_required": true, "integration": { "type": "json", "body": { "version": "1" } } },
      { "method": "GET", "path": "/hello", "integration": { "type": "json", "body": { "version": "1" } } }
    ] },
    "mock": { "routes": [
      { "method": "GET", "path": "/hello", "integration": { "type": "mock", "status": 200, "body": "" } }
    ] }
  },
  "stages": {
    "L": { "deployment": "stable", "throttle": { "rate": 1, "burst": 30 },
           "method_throttles": { "GET /m": { "rate": 1, "burst": 10 } } },
    "R": { "deployment": "stable", "throttle": { "rate": 40, "burst": 20 } },
    "Q": { "deployment": "stable" },
    "C10": { "deployment": "stable", "canary": { "percent_traffic": 10, "deployment": "mock" } },
    "C0": { "deployment": "stable", "canary": { "percent_traffic": 0, "deployment": "mock" } },
    "C100": { "deployment": "stable", "canary": { "percent_traffic": 100, "deployment": "mock" } }
  },
  "usage_plans": [
    { "name": "a", "api_keys": ["key-a"], "stages": ["L"], "throttle": { "rate": 1, "burst": 5 } },
    { "name": "b", "api_keys": ["key-b"], "stages": ["L"], "throttle": { "rate": 1, "burst": 8 } },
    { "name": "quota", "api_keys": ["key-q"], "stages": ["Q"], "quota": { "limit": 7, "period": "DAY" } }
  ]
}"#;

async fn start(seed: u64) -> sim::Running {
    let config = config::parse("test config", CONFIG).unwrap();
    sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(seed))
        .await
        .unwrap()
}

const CLASSES: [&str; 10] = [
    "--classify", "throttled=status:429&header:x-amzn-errortype=TooManyRequestsException&json:/message=Too Many Requests",
    "--classify", "quota=status:429&json:/message=Limit Exceeded",
    "--classify", "forbidden=status:403&json:/message=Forbidden",
    "--classify", "canary=status:200&body:empty",
    "--classify", "ok=status:200",
];

/// Sends `count` requests at once (one connection each) and returns the report.
async fn volley(url: &str, count: usize, extra: &[&str]) -> serde_json::Value {
    let count = count.to_string();
    let mut args = vec!["load", url, "--rate", "max", "-c", &count, "-n", &count];
    args.extend_from_slice(extra);
    args.extend_from_slice(&CLASSES);
    let (code, report) = load_report(&args).await;
    assert_eq!(code, 0);
    report
}

fn class(report: &serde_json::Value, name: &str) -> u64 {
    report["classes"][name]["count"].as_u64().unwrap_or(0)
}

fn assert_near(seen: u64, expected: u64, slack: u64, what: &str) {
    assert!(
        seen.abs_diff(expected) <= slack,
        "{what}: {seen}, expected {expected} ± {slack}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_apply_in_layers_with_exact_bursts() {
    let running = start(1).await;
    // Usage-plan keys: two keys, independent buckets (bursts 5 and 8).
    let a = volley(&running.url("/L/k"), 10, &["-H", "x-api-key: key-a"]).await;
    assert_near(class(&a, "ok"), 5, 1, "key-a burst");
    assert_near(class(&a, "throttled"), 5, 1, "key-a throttled");
    let b = volley(&running.url("/L/k"), 16, &["-H", "x-api-key: key-b"]).await;
    assert_near(class(&b, "ok"), 8, 1, "key-b burst, independent of key-a");
    // Method limit (burst 10) under the stage limit (burst 30, 13 used so far).
    let m = volley(&running.url("/L/m"), 20, &[]).await;
    assert_near(class(&m, "ok"), 10, 1, "method burst");
    // Stage limit: what the key and method requests left of its 30.
    let s = volley(&running.url("/L/s"), 20, &[]).await;
    let used = class(&a, "ok") + class(&b, "ok") + class(&m, "ok");
    assert_near(class(&s, "ok"), 30 - used, 1, "stage burst left");
    // Missing and unknown keys are 403, not throttling.
    let missing = volley(&running.url("/L/k"), 3, &[]).await;
    assert_eq!(class(&missing, "forbidden"), 3);
    let unknown = volley(&running.url("/L/k"), 3, &["-H", "x-api-key: nope"]).await;
    assert_eq!(class(&unknown, "forbidden"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_overload_admits_burst_plus_rate_times_time() {
    let running = start(2).await;
    let url = running.url("/R/s");
    let mut args = vec!["load", url.as_str(), "--rate", "80", "--duration", "5s"];
    args.extend_from_slice(&CLASSES);
    let (code, report) = load_report(&args).await;
    assert_eq!(code, 0);
    let admitted = class(&report, "ok") as f64;
    let expected = 20.0 + 5.0 * 40.0;
    say(&format!(
        "stage 40 rps burst 20, offered 80 rps × 5 s: admitted {admitted} (expected {expected})"
    ));
    assert!(
        (admitted / expected - 1.0).abs() <= 0.03,
        "admitted {admitted}, expected {expected} ± 3%"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhaustion_is_limit_exceeded() {
    let running = start(3).await;
    let url = running.url("/Q/k");
    let mut args = vec![
        "load",
        url.as_str(),
        "--rate",
        "100",
        "-n",
        "10",
        "-H",
        "x-api-key: key-q",
    ];
    args.extend_from_slice(&CLASSES);
    // /Q/k is on a stage the key's plan covers; the route needs the key.
    let (code, report) = load_report(&args).await;
    assert_eq!(code, 0);
    assert_eq!(class(&report, "ok"), 7);
    assert_eq!(class(&report, "quota"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_canary_split_is_random_per_request_and_exact_at_0_and_100() {
    let running = start(7).await;
    for (stage, low, high) in [("C10", 0.094, 0.106), ("C0", 0.0, 0.0), ("C100", 1.0, 1.0)] {
        let url = running.url(&format!("/{stage}/hello"));
        let mut args = vec![
            "load",
            url.as_str(),
            "--rate",
            "max",
            "-c",
            "16",
            "-n",
            "20000",
        ];
        args.extend_from_slice(&CLASSES);
        let (code, report) = load_report(&args).await;
        assert_eq!(code, 0);
        let canary = class(&report, "canary") as f64;
        let share = canary / (canary + class(&report, "ok") as f64);
        say(&format!(
            "{stage}: canary share {share:.4} over 20,000 requests"
        ));
        assert!((low..=high).contains(&share), "{stage}: share {share}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_to_exit_0_within_a_minute() {
    // Over HTTPS (#14): the same chapters as the plain `demo`, with
    // the simulator's generated certificate trusted by --cacert on every
    // command and in every scenario step. (The plain demo is the README's
    // main command; the scenario tests run the same steps over HTTP.)
    let dir = temp_dir();
    let out = dir.path().to_str().unwrap();
    let started = Instant::now();
    assert_eq!(run(&["demo", "--tls", "--out", out]).await, 0);
    assert!(started.elapsed().as_secs() < 60);
    let split = read_json(&dir.path().join("1-canary-split.json"));
    assert_valid_report(&split);
    let target = split["run"]["target"].as_str().unwrap();
    assert!(target.starts_with("https://127.0.0.1:"), "{target}");
    assert_eq!(split["errors"]["tls"], 0);
    let canary = split["classes"]["canary"]["share"].as_f64().unwrap();
    assert!((0.08..0.12).contains(&canary), "{canary}");
    let gate = read_json(&dir.path().join("demo.json"));
    assert_eq!(gate["verdict"], "pass", "{}", gate["reason"]);
    // Declared → observed → verdict: BETA's intended 5% fails, its own
    // stage declaration (25%, printed as get-stage JSON) passes, named.
    let wrong = read_json(&dir.path().join("1-misconfigured-split.json"));
    assert_eq!(wrong["verdict"], "fail", "{}", wrong["reason"]);
    let declared = read_json(&dir.path().join("1-declared-split.json"));
    assert_eq!(declared["verdict"], "pass", "{}", declared["reason"]);
    assert!(
        declared["checks"]
            .to_string()
            .contains("beta-stage.json canarySettings.percentTraffic"),
        "{}",
        declared["checks"]
    );
    the_demo_metrics_are_the_reports(&dir.path().join("demo.prom"), &gate);
}

/// The samples of a Prometheus text file: (name, labels, value).
fn prometheus_samples(text: &str) -> Vec<(String, String, f64)> {
    let sample = regex::Regex::new(r"^([a-z_]+)\{(.*)\} (\S+)$").unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let found = sample
                .captures(line)
                .unwrap_or_else(|| panic!("not a sample: {line}"));
            let value = match &found[3] {
                "+Inf" => f64::INFINITY,
                number => number.parse().unwrap(),
            };
            (found[1].to_string(), found[2].to_string(), value)
        })
        .collect()
}

/// `--prometheus`: promtool accepts the demo's file, and each class's
/// latency histogram has the JSON report's count, and the sum its exact
/// histogram gives; the verdict and the checks' state sets agree with it.
fn the_demo_metrics_are_the_reports(path: &std::path::Path, gate: &serde_json::Value) {
    let text = std::fs::read_to_string(path).unwrap();
    match debian_binary("prometheus", &["/usr/bin/promtool"]) {
        Ok(promtool) => {
            let checked = std::process::Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(std::fs::File::open(path).unwrap())
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&checked.stderr).to_string()
                + &String::from_utf8_lossy(&checked.stdout);
            assert!(
                checked.status.success() && said.trim().is_empty(),
                "promtool: {said}"
            );
        }
        Err(why) => say(&format!(
            "SKIPPED promtool check metrics on demo.prom: {why}"
        )),
    }
    let samples = prometheus_samples(&text);
    let value = |name: &str, labels: &str| {
        let found: Vec<f64> = samples
            .iter()
            .filter(|(n, l, _)| n == name && l.ends_with(labels) && !l.contains("step="))
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(found.len(), 1, "{name}{{…{labels}}} in {text}");
        found[0]
    };
    let mut histograms = 0;
    for (class, section) in gate["classes"].as_object().unwrap() {
        let count = section["count"].as_u64().unwrap();
        if count == 0 {
            continue;
        }
        histograms += 1;
        let latency = section["histograms"]["latency_us"].as_str().unwrap();
        let histogram = gateprobe::record::histogram_from_base64(latency).unwrap();
        let sum_us: f64 = histogram
            .iter_recorded()
            .map(|v| {
                histogram.median_equivalent(v.value_iterated_to()) as f64
                    * v.count_at_value() as f64
            })
            .sum();
        let of = format!("class=\"{class}\"");
        assert_eq!(
            value("gateprobe_latency_seconds_count", &of),
            count as f64,
            "{class}"
        );
        assert_eq!(
            value("gateprobe_latency_seconds_sum", &of),
            sum_us / 1e6,
            "{class}"
        );
        let inf = format!("class=\"{class}\",le=\"+Inf\"");
        assert_eq!(
            value("gateprobe_latency_seconds_bucket", &inf),
            count as f64
        );
        let mut previous = 0.0;
        for (_, labels, cumulative) in samples.iter().filter(|(n, l, _)| {
            n == "gateprobe_latency_seconds_bucket" && l.contains(&of) && !l.contains("step=")
        }) {
            assert!(*cumulative >= previous, "{labels}: buckets must not fall");
            previous = *cumulative;
        }
        for (status, n) in section["statuses"].as_object().unwrap() {
            let labels = format!("class=\"{class}\",status=\"{status}\"");
            assert_eq!(
                value("gateprobe_responses_total", &labels),
                n.as_f64().unwrap()
            );
        }
    }
    assert!(histograms >= 2, "{text}");
    let verdict = gate["verdict"].as_str().unwrap();
    assert_eq!(
        value("gateprobe_run_verdict", &format!("verdict=\"{verdict}\"")),
        1.0
    );
    let steps = gate["steps"].as_array().unwrap();
    for step in steps {
        for check in step["report"]["checks"].as_array().unwrap() {
            let labels = format!(
                "step=\"{}\",check=\"{}\",kind=\"{}\",verdict=\"{}\"",
                step["name"].as_str().unwrap(),
                check["name"].as_str().unwrap(),
                check["kind"].as_str().unwrap(),
                check["verdict"].as_str().unwrap()
            );
            let on = samples
                .iter()
                .filter(|(n, l, v)| {
                    n == "gateprobe_check_verdict" && l.ends_with(&labels) && *v == 1.0
                })
                .count();
            assert_eq!(on, 1, "{labels}");
        }
    }
    // No secret reaches the metrics: the demo's API key.
    assert!(!text.contains("demo-key-gold"), "a key in the metrics");
}

#[test]
fn config_errors_exit_2_naming_the_field() {
    let dir = temp_dir();
    let cases = [
        (
            r#"{"deployments": {}, "stages": {}, "colour": 1}"#,
            "colour",
        ),
        (
            "{\"deployments\": {},\n\"stages\": {\"P\": {\"deployment\": 5}}}",
            "stages.P.deployment",
        ),
        (
            r#"{"deployments": {"a": {"routes": []}}, "stages": {"P": {"deployment": "a", "canary": {"percent_traffic": 120, "deployment": "a"}}}}"#,
            "percent_traffic",
        ),
        (
            r#"{"deployments": {"a": {"routes": []}}, "stages": {"P": {"deployment": "a", "throttle": {"rate": -1, "burst": 1}}}}"#,
            "stages.P.throttle.rate",
        ),
    ];
    for (index, (text, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{index}.json"));
        std::fs::write(&path, text).unwrap();
        let output = assert_cmd::Command::cargo_bin("gateprobe")
            .unwrap()
            .args(["sim", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(field), "expected '{field}' in {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[tokio::test]
async fn canary_choice_is_unbiased_across_seeds() {
    // 20 seeds × 20,000 requests: the pooled share of a 10% canary must sit
    // within 3 standard errors of 10% (SE = √(0.1·0.9/400,000) ≈ 0.00047).
    let config = config::parse("test config", CONFIG).unwrap();
    let (mut canary, mut total) = (0u64, 0u64);
    for seed in 0..20 {
        let simulator = sim::Simulator::new(config.clone(), Some(seed));
        for _ in 0..20_000 {
            let answer = simulator
                .handle(
                    &http::Method::GET,
                    "/C10/hello",
                    &http::HeaderMap::new(),
                    b"",
                )
                .await;
            assert_eq!(answer.status, 200);
            canary += u64::from(answer.body.is_empty());
            total += 1;
        }
    }
    let share = canary as f64 / total as f64;
    say(&format!("canary share over 20 seeds × 20,000: {share:.5}"));
    assert!((share - 0.10).abs() < 3.0 * 0.00047, "pooled share {share}");
}

#[test]
fn the_readme_config_example_parses() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/simulator.md")).unwrap();
    let after = &readme[readme
        .find("**Config**")
        .expect("docs/simulator.md documents the config")..];
    let start = after.find("```json\n").unwrap() + "```json\n".len();
    let end = start + after[start..].find("```").unwrap();
    config::parse("docs/simulator.md example", &after[start..end]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_injected_and_canary_errors_carry_the_canary_mark() {
    let config = r#"{
      "deployments": {
        "stable": { "routes": [ { "method": "GET", "path": "/x",
            "integration": { "type": "json", "headers": { "x-deployment": "${stageVariables.who}" }, "body": { "ok": true } } } ] },
        "canary": { "latency_ms": { "fixed": 30, "jitter": 10 }, "error_rate": 0.2,
          "routes": [ { "method": "GET", "path": "/x",
            "integration": { "type": "json", "headers": { "x-deployment": "${stageVariables.who}" }, "body": { "ok": true } } } ] }
      },
      "stages": { "P": { "deployment": "stable", "variables": { "who": "stable" },
        "canary": { "percent_traffic": 50, "deployment": "canary", "stage_variable_overrides": { "who": "canary" } } } }
    }"#;
    let running = sim::start(
        config::parse("t", config).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Some(5),
    )
    .await
    .unwrap();
    let url = running.url("/P/x");
    let args = [
        "load",
        url.as_str(),
        "--rate",
        "400",
        "-n",
        "2000",
        "--http2",
        "--classify",
        "canary_error=header:x-deployment=canary&status:5xx",
        "--classify",
        "canary=header:x-deployment=canary",
        "--classify",
        "stable=header:x-deployment=stable",
    ];
    let (code, report) = load_report(&args).await;
    assert_eq!(code, 0);
    let (errors, healthy, stable) = (
        class(&report, "canary_error"),
        class(&report, "canary"),
        class(&report, "stable"),
    );
    assert_eq!(
        errors + healthy + stable,
        2000,
        "every answer says who served it (over HTTP/2)"
    );
    let error_share = errors as f64 / (errors + healthy) as f64;
    say(&format!(
        "canary error share {error_share:.3} (configured 0.2); stable errors none"
    ));
    assert!((0.15..0.25).contains(&error_share), "{error_share}");
    let canary_p50 = report["classes"]["canary"]["service_time_ms"]["p50"]
        .as_f64()
        .unwrap();
    let stable_p50 = report["classes"]["stable"]["service_time_ms"]["p50"]
        .as_f64()
        .unwrap();
    assert!(
        (30.0..45.0).contains(&canary_p50),
        "canary p50 {canary_p50} ms: 30 + U(0, 10)"
    );
    assert!(stable_p50 < 10.0, "stable p50 {stable_p50} ms");
}
