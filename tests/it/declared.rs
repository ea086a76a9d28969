//! Declared settings as expectations: `get-stage` / `get-usage-plan` JSON
//! (AWS's documented examples, tests/fixtures/aws) drive the canary share
//! and the throttle gate, and the report names where each came from.
use std::path::{Path, PathBuf};

use crate::common::*;
use gateprobe::sim::{self, config};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/aws")
        .join(name)
}

/// `canary URL --aws-stage FILE` with the simulator's canary marks (an
/// empty Mock body; the stable JSON carries a version).
async fn canary_against(url: &str, stage: &Path) -> (u8, serde_json::Value) {
    load_report(&[
        "canary",
        url,
        "--rate",
        "2000",
        "--aws-stage",
        stage.to_str().unwrap(),
        "--classify",
        "canary=body:empty",
        "--classify",
        "stable=json:/version",
    ])
    .await
}

#[test]
fn aws_documented_examples_parse_and_resolve_per_method() {
    use gateprobe::cli::aws;
    let stage = fixture("get-stage.json");
    let declared = aws::declared_throttle(Some(&stage), None, "/dev/resource", "GET")
        .unwrap()
        .unwrap();
    assert_eq!((declared.rate, declared.burst), (500.0, Some(1000.0)));
    assert!(
        declared
            .source
            .contains("methodSettings[\"~1resource/GET\"]"),
        "{}",
        declared.source
    );
    let fallback = aws::declared_throttle(Some(&stage), None, "/dev/other", "POST")
        .unwrap()
        .unwrap();
    assert!(
        fallback.source.contains("methodSettings[\"*/*\"]"),
        "{}",
        fallback.source
    );
    let plan = fixture("get-usage-plan.json");
    let both = aws::declared_throttle(Some(&stage), Some(&plan), "/Prod/pets", "GET")
        .unwrap()
        .unwrap();
    assert_eq!(
        (both.rate, both.burst),
        (10.0, Some(2.0)),
        "the tighter layer governs"
    );
    assert!(
        both.source.contains("get-usage-plan.json throttle"),
        "{}",
        both.source
    );
    let (share, source) = aws::canary_share(&fixture("get-stage-canary.json")).unwrap();
    assert_eq!(share, 0.10);
    assert!(
        source.ends_with("get-stage-canary.json canarySettings.percentTraffic"),
        "{source}"
    );
    // No canary declared; an unknown field: input errors naming the file.
    let err = aws::canary_share(&stage).unwrap_err().0;
    assert!(err.contains("no canarySettings.percentTraffic"), "{err}");
    let dir = temp_dir();
    let typo = dir.path().join("typo.json");
    std::fs::write(
        &typo,
        r#"{"stageName": "dev", "canarySetings": {"percentTraffic": 10}}"#,
    )
    .unwrap();
    let err = aws::canary_share(&typo).unwrap_err().0;
    assert!(
        err.contains("typo.json") && err.contains("canarySetings"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_declaring_10_percent_fails_against_25_naming_its_source() {
    let running = sim::start(
        config::parse("default", config::DEFAULT_CONFIG).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Some(5),
    )
    .await
    .unwrap();
    let url = running.url("/BETA/hello");
    let stage = fixture("get-stage-canary.json");
    let (code, report) = canary_against(&url, &stage).await;
    assert_eq!(code, 1, "{}", report["reason"]);
    let share = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "share canary")
        .unwrap();
    let reason = share["reason"].as_str().unwrap();
    assert!(reason.contains("expected 10%"), "{reason}");
    assert!(
        reason.contains("get-stage-canary.json canarySettings.percentTraffic"),
        "{reason}"
    );
    // The same stage file and --expect canary=… conflict.
    let code = run(&[
        "canary",
        &url,
        "-n",
        "1",
        "--aws-stage",
        stage.to_str().unwrap(),
        "--expect",
        "canary=25%",
        "--classify",
        "canary=body:empty",
    ])
    .await;
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_method_throttle_gates_the_probe() {
    let _serial = crate::throttle::SERIAL.lock().await;
    let running = sim::start(
        config::parse(
            "declared",
            r#"{ "deployments": { "v1": { "routes": [
                   { "method": "GET", "path": "/x", "integration": { "type": "json", "body": { "ok": true } } } ] } },
                 "stages": { "B50": { "deployment": "v1", "method_throttles": { "GET /x": { "rate": 50, "burst": 10 } } } } }"#,
        )
        .unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Some(1),
    )
    .await
    .unwrap();
    let dir = temp_dir();
    let write = |name: &str, rate: u32, burst: u32| {
        let path = dir.path().join(name);
        let stage = serde_json::json!({
            "stageName": "B50", "deploymentId": "abc123",
            "methodSettings": { "~1x/GET": { "throttlingRateLimit": rate, "throttlingBurstLimit": burst,
                                             "metricsEnabled": false, "loggingLevel": "OFF" } }
        });
        std::fs::write(&path, stage.to_string()).unwrap();
        path.display().to_string()
    };
    let wrong = write("wrong.json", 150, 10);
    let url = running.url("/B50/x");
    // A declared 50/10 passes as --expect-rate 50 --expect-burst 10 does
    // (throttle::expectations_gate_with_exit_codes); this run checks that the
    // declaration is read, applied and named, on the failing side.
    let (code, report) = crate::throttle::probe(&url, &["--aws-stage", &wrong]).await;
    assert_eq!(code, 1, "{}", report["reason"]);
    let text = report["checks"].to_string();
    assert!(
        text.contains("wrong.json methodSettings[\\\"~1x/GET\\\"]"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_prints_its_stage_and_a_canary_run_checks_against_it() {
    let config = config::parse("default", config::DEFAULT_CONFIG).unwrap();
    let (printed, left_out) = config::aws::stage(&config, "BETA").unwrap();
    assert!(left_out.is_empty(), "{left_out:?}");
    let (plan, _) = config::aws::usage_plan(&config, "partner-gold").unwrap();
    let dir = temp_dir();
    let (stage_file, plan_file) = (dir.path().join("beta.json"), dir.path().join("gold.json"));
    std::fs::write(&stage_file, printed.to_string()).unwrap();
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    // What it prints is what --aws-stage / --aws-usage-plan read.
    gateprobe::cli::aws::usage_plan(&plan_file).unwrap();
    let running = sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(8))
        .await
        .unwrap();
    let url = running.url("/BETA/hello");
    let (code, report) = canary_against(&url, &stage_file).await;
    assert_eq!(code, 0, "declared 25%, served 25%: {}", report["reason"]);
    // And through the binary, as a user would.
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
        .args(["sim", "--print-aws-stage", "BETA"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["canarySettings"]["percentTraffic"], 25.0);
}
