//! `gateprobe run` and the reports: every file in scenarios/ against the
//! simulator, input errors, a broken threshold named in every format, JUnit
//! read back, Markdown and text snapshots, the re-rendered HTML, the HTML in
//! headless Chromium, and no secret in any format.
use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use gateprobe::sim::{self, config};
use serde_json::Value;

const GOLD_KEY: &str = "demo-key-gold";
const BASIC_KEY: &str = "demo-key-basic";

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

async fn simulator() -> sim::Running {
    let config = config::parse("default", config::DEFAULT_CONFIG).unwrap();
    sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(3))
        .await
        .unwrap()
}

/// Runs `gateprobe run` as a process (terminal output included).
fn run_scenario(path: &Path, target: &str, dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let output = Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
        .arg("run")
        .arg(path)
        .args(["--target", target])
        .args(["--set", &format!("GATEPROBE_API_KEY={GOLD_KEY}")])
        .args(["--set", &format!("PARTNER_BASIC_KEY={BASIC_KEY}")])
        .arg("--json")
        .arg(dir.join("r.json"))
        .arg("--junit")
        .arg(dir.join("r.xml"))
        .arg("--markdown")
        .arg(dir.join("r.md"))
        .arg("--html")
        .arg(dir.join("r.html"))
        .args(extra)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes_against_the_simulator_and_leaks_no_secret() {
    let running = simulator().await;
    let target = running.url("");
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        // demo.json is the demo's CI-gate chapter: the demo test
        // (sim::the_demo_runs_to_exit_0_within_a_minute) runs it to a pass,
        // and the saved demo report's checks recompute in saved.rs. Running
        // it here again cost CI 20 s.
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name != "sim-default.json" && name != "demo.json")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let schema: Value = serde_json::from_str(&read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/scenario.schema.json"),
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let scenario: Value = serde_json::from_str(&read(path.clone())).unwrap();
        assert!(
            validator.is_valid(&scenario),
            "{name} does not match schema/scenario.schema.json"
        );
        let dir = temp_dir();
        let (code, stdout, stderr) = run_scenario(&path, &target, dir.path(), &["--quiet"]);
        let report = read_json(&dir.path().join("r.json"));
        say(&format!("{name}: exit {code}: {}", report["reason"]));
        assert_eq!(code, 0, "{name}: {}\n{stdout}\n{stderr}", report["reason"]);
        assert_valid_report(&report);
        assert_eq!(report["command"], "run");
        for format in ["r.json", "r.xml", "r.md", "r.html"] {
            let text = read(dir.path().join(format));
            for secret in [GOLD_KEY, BASIC_KEY] {
                assert!(!text.contains(secret), "{name}: {format} shows an API key");
            }
        }
        assert!(!stdout.contains(GOLD_KEY) && !stderr.contains(GOLD_KEY));
        // The saved report's fixed-horizon checks recompute to the same.
        let output = Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
            .arg("report")
            .arg(dir.path().join("r.json"))
            .arg("--recompute")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{name}: --recompute: {said}");
        let fixed = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|step| step["report"]["checks"].as_array().unwrap())
            .filter(|c| {
                c["kind"] == "threshold"
                    || c["kind"] == "split.unclassified"
                    || (c["kind"] == "throttle" && c.get("interval").is_some())
            })
            .count();
        say(&format!("{name}: {}", said.trim()));
        assert!(
            said.contains(&format!("recomputed {fixed} fixed-horizon check")),
            "{name}: {fixed} expected: {said}"
        );
    }
}

fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.json");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_errors_exit_2_naming_the_place() {
    let running = simulator().await;
    let target = running.url("");
    let dir = temp_dir();
    for (text, expected) in [
        (
            "{\"target\": \"http://x\",\n \"steps\": [ { \"load\": { \"path\": \"/PROD/hello\",\n   \"rte\": 10 } } ] }",
            vec!["scenario.json:3:", "unknown field `rte`", "steps[0].load"],
        ),
        (
            "{\"target\": \"http://x\", \"stepz\": []}",
            vec!["scenario.json:1:", "unknown field `stepz`"],
        ),
        (
            r#"{"target": "http://x", "classify": ["canary=body:empty", "stable=*"],
                "steps": [ { "load": { "path": "/PROD/hello", "thresholds": ["share[canry] > 5%"] } } ] }"#,
            vec!["threshold 'share[canry] > 5%'", "no class 'canry'"],
        ),
        (
            r#"{"target": "http://x", "steps": [ { "load": { "path": "/", "thresholds": ["p98_ms < 5"] } } ] }"#,
            vec!["no metric 'p98_ms'"],
        ),
        (
            r#"{"target": "http://x", "steps": [ { "canary": { "path": "/", "expect": ["canary=10%"] } } ] }"#,
            vec!["steps[0] (1-canary)", "no class 'canary'"],
        ),
        (
            r#"{"target": "http://x", "steps": [ { "load": { "path": "/", "headers": { "x-api-key": "${NOPE_NOT_SET}" } } } ] }"#,
            vec!["${NOPE_NOT_SET} is not set"],
        ),
        (
            r#"{"target": "http://x", "steps": [ { "load": { "path": "/" }, "pause": "1s" } ] }"#,
            vec!["exactly one of load, canary, throttle or pause"],
        ),
    ] {
        let path = write_scenario(dir.path(), text);
        let (code, _, stderr) = run_scenario(&path, &target, dir.path(), &["--quiet"]);
        assert_eq!(code, 2, "{text}: {stderr}");
        for piece in expected {
            assert!(stderr.contains(piece), "{text}: '{piece}' not in {stderr}");
        }
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(!dir.path().join("r.json").exists(), "nothing ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_threshold_fails_and_is_named_in_every_format() {
    let running = simulator().await;
    let target = running.url("");
    let dir = temp_dir();
    let path = write_scenario(
        dir.path(),
        r#"{"target": "http://x", "classify": ["canary=body:empty", "stable=json:/version"],
            "steps": [ { "name": "split", "load": { "path": "/PROD/hello", "rate": 200, "requests": 200,
                         "thresholds": ["share[canary] > 50%", "p99_ms < 1000"] } } ] }"#,
    );
    let (code, stdout, _) = run_scenario(&path, &target, dir.path(), &[]);
    assert_eq!(code, 1, "{stdout}");
    let broken = "share[canary] > 50%";
    assert!(
        stdout.contains(broken) && stdout.contains("FAIL"),
        "{stdout}"
    );
    let report = read_json(&dir.path().join("r.json"));
    assert_valid_report(&report);
    assert_eq!(report["verdict"], "fail");
    assert!(report["reason"].as_str().unwrap().contains(broken));
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == format!("split: {broken}"))
        .expect("the threshold is a check");
    assert_eq!(check["verdict"], "fail");
    assert!(read(dir.path().join("r.md")).contains(broken));
    // JUnit, read back by a parser: one failing test case named by the threshold.
    let junit = quick_junit::Report::deserialize_from_str(&read(dir.path().join("r.xml"))).unwrap();
    assert_eq!(junit.failures, 1, "{junit:?}");
    let suite = &junit.test_suites[0];
    let failing: Vec<_> = suite
        .test_cases
        .iter()
        .filter(|case| !matches!(case.status, quick_junit::TestCaseStatus::Success { .. }))
        .collect();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0].name.as_str(), broken);
    // The saved JSON re-renders to the same HTML (same charts).
    let again = dir.path().join("again.html");
    let status = Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
        .arg("report")
        .arg(dir.path().join("r.json"))
        .arg("--html")
        .arg(&again)
        .arg("--quiet")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "the saved report's exit code");
    let (first, second) = (read(dir.path().join("r.html")), read(again));
    assert!(first.matches("<svg").count() >= 2, "charts drawn");
    assert_eq!(first, second, "report re-renders the same HTML");
}

/// A fixed report (committed) rendered as text and Markdown, compared with
/// committed snapshots. `UPDATE_SNAPSHOTS=1` rewrites them.
#[test]
fn text_and_markdown_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let report: gateprobe::report::Report =
        serde_json::from_str(&read(root.join("throttle-report.json"))).unwrap();
    for (file, rendered) in [
        (
            "throttle-report.txt",
            gateprobe::output::text::render(&report),
        ),
        (
            "throttle-report.md",
            gateprobe::output::markdown::render(&report),
        ),
    ] {
        let path = root.join(file);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        }
        assert_eq!(
            rendered,
            read(path),
            "{file} changed (UPDATE_SNAPSHOTS=1 to accept)"
        );
    }
}

/// Chromium from Debian, installed when missing and run as root.
fn chromium() -> Result<PathBuf, String> {
    common::debian_binary(
        "chromium",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_in_headless_chromium() {
    let browser = match chromium() {
        Ok(path) => path,
        Err(why) => {
            say(&format!("SKIPPED headless Chromium test: {why}"));
            return;
        }
    };
    // A report saved by an earlier version (per-second series, no
    // timeline: report_pages.rs checks today's), drawn by `gateprobe report`: the HTML of a saved report
    // is the live one byte for byte (saved.rs), and running a scenario here
    // only to draw it cost CI seconds.
    let dir = temp_dir();
    let saved = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/scenario-report.json");
    let html = dir.path().join("r.html");
    let drawn = Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
        .arg("report")
        .arg(&saved)
        .arg("--quiet")
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(html.exists(), "{}", String::from_utf8_lossy(&drawn.stderr));
    let shot = dir.path().join("shot.png");
    let output = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=900,2400",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(shot.exists(), "no screenshot: {log}");
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("CONSOLE") || line.contains("Uncaught"))
        .collect();
    assert!(
        console_errors.is_empty(),
        "the page logged: {console_errors:?}"
    );
    // A blank page compresses to a few KB; three charts and tables do not.
    let bytes = std::fs::metadata(&shot).unwrap().len();
    say(&format!("HTML report screenshot: {bytes} bytes"));
    assert!(bytes > 40_000, "the screenshot looks blank ({bytes} bytes)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_filled_from_the_environment_is_secret_everywhere() {
    let running = simulator().await;
    let target = running.url("");
    let dir = temp_dir();
    let secret = "tok-5f2b9c1e-very-secret";
    let path = write_scenario(
        dir.path(),
        r#"{"target": "http://x", "headers": { "x-partner-token": "Bearer ${PARTNER_TOKEN}" },
            "steps": [ { "load": { "path": "/PROD/hello", "rate": 100, "requests": 20 } } ] }"#,
    );
    let summary = dir.path().join("summary.md");
    let output = Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
        .arg("run")
        .arg(&path)
        .args(["--target", &target])
        .env("PARTNER_TOKEN", secret)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .arg("--json")
        .arg(dir.path().join("r.json"))
        .arg("--junit")
        .arg(dir.path().join("r.xml"))
        .arg("--markdown")
        .arg(dir.path().join("r.md"))
        .arg("--html")
        .arg(dir.path().join("r.html"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!printed.contains(secret), "the terminal shows the secret");
    for file in ["r.json", "r.xml", "r.md", "r.html", "summary.md"] {
        let text = read(dir.path().join(file));
        assert!(!text.contains(secret), "{file} shows the secret");
    }
    let report = read_json(&dir.path().join("r.json"));
    assert_eq!(
        report["steps"][0]["report"]["run"]["headers"]["x-partner-token"],
        "<redacted>"
    );
    assert!(
        read(summary).contains("gateprobe run"),
        "the Markdown went to $GITHUB_STEP_SUMMARY too"
    );
}

/// A step's options are its command's flags, read from the clap definition
/// (`scenario::step_keys`); the schema lists exactly those, so a new flag
/// missing from the schema (or a schema entry no command takes) fails here.
#[test]
fn step_options_are_the_commands_flags_and_the_schema_lists_them() {
    let schema: Value = serde_json::from_str(&read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/scenario.schema.json"),
    ))
    .unwrap();
    let steps = &schema["properties"]["steps"]["items"]["properties"];
    for kind in ["load", "canary", "throttle"] {
        let derived: std::collections::BTreeSet<&str> = gateprobe::app::scenario::step_keys(kind)
            .iter()
            .copied()
            .collect();
        let listed: std::collections::BTreeSet<&str> = steps[kind]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("the schema has {kind} step options"))
            .keys()
            .map(String::as_str)
            .collect();
        let only_flags: Vec<_> = derived.difference(&listed).collect();
        let only_schema: Vec<_> = listed.difference(&derived).collect();
        assert!(
            only_flags.is_empty() && only_schema.is_empty(),
            "{kind}: flags the schema lacks {only_flags:?}; schema keys no flag makes {only_schema:?}"
        );
    }
    // A flag is an option with the same meaning: `expect_rate` is `--expect-rate`.
    assert!(gateprobe::app::scenario::step_keys("throttle").contains(&"expect_rate"));
    assert!(!gateprobe::app::scenario::step_keys("throttle").contains(&"rate"));
}
