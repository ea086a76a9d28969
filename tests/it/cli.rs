//! The binary as a user meets it: bad input is one line and exit 2, and no
//! secret reaches any output.
use crate::common;

use assert_cmd::Command;

fn gateprobe() -> Command {
    Command::cargo_bin("gateprobe").expect("binary built")
}

#[test]
fn help_and_version_exit_0() {
    gateprobe().arg("--help").assert().success();
    gateprobe().arg("--version").assert().success();
    gateprobe().args(["load", "--help"]).assert().success();
}

/// Completion scripts and man pages come from the clap definitions: each
/// shell's script names every command, the man page every flag of load.
#[test]
fn completions_and_man_pages_are_generated() {
    for (shell, marker) in [
        ("bash", "_gateprobe()"),
        ("zsh", "#compdef gateprobe"),
        ("fish", "complete -c gateprobe"),
    ] {
        let output = gateprobe().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {marker} missing");
        for command in ["load", "canary", "throttle", "run", "merge", "sim", "demo"] {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
    }
    gateprobe()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("tcsh"));
    let page = gateprobe().arg("man").output().unwrap();
    assert!(page.status.success());
    let page = String::from_utf8(page.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH gateprobe"),
        "{page:.200}"
    );
    let dir = common::temp_dir();
    let pages = dir.path().join("man1");
    gateprobe()
        .args(["man", "--dir"])
        .arg(&pages)
        .assert()
        .success();
    let load = std::fs::read_to_string(pages.join("gateprobe-load.1")).unwrap();
    assert!(
        load.contains("\\-\\-rate") || load.contains("rate"),
        "{load:.300}"
    );
    assert!(pages.join("gateprobe-throttle.1").exists());
}

#[test]
fn secrets_never_reach_any_output() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = received.clone();
    let address = runtime.block_on(async move {
        let handler: common::Handler = std::sync::Arc::new(move |request, _| {
            let key = request
                .headers()
                .get("x-api-key")
                .map(|v| v.to_str().unwrap().to_string());
            seen.lock().unwrap().push(key.unwrap_or_default());
            hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")))
        });
        common::serve(handler).await.0
    });
    let dir = common::temp_dir();
    let report = dir.path().join("r.json");
    let secrets = [
        "SECRET-API-KEY-123",
        "SECRET-BEARER-456",
        "SECRET-PASS-789",
        "SECRET-QUERY-000",
    ];
    let url = format!(
        "http://user:{}@{address}/x?api_key={}&plain=1",
        secrets[2], secrets[3]
    );
    let output = gateprobe()
        .args(["load", &url, "--rate", "100", "-n", "20", "--json"])
        .arg(&report)
        .args(["-H", &format!("x-api-key: {}", secrets[0])])
        .args(["-H", &format!("Authorization: Bearer {}", secrets[1])])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        received.lock().unwrap().iter().all(|key| key == secrets[0]),
        "the key was sent"
    );
    let mut everything = String::from_utf8_lossy(&output.stdout).to_string();
    everything.push_str(&String::from_utf8_lossy(&output.stderr));
    let report_text = std::fs::read_to_string(&report).unwrap();
    everything.push_str(&report_text);
    // Also the JSON on stdout, and a malformed secret header's error line.
    let piped = gateprobe()
        .args(["load", &url, "--rate", "100", "-n", "5", "--json", "-"])
        .args(["-H", &format!("x-api-key: {}", secrets[0])])
        .output()
        .unwrap();
    everything.push_str(&String::from_utf8_lossy(&piped.stdout));
    everything.push_str(&String::from_utf8_lossy(&piped.stderr));
    let malformed = gateprobe()
        .args(["load", &url, "-H", &format!("x-api-key {}", secrets[0])])
        .output()
        .unwrap();
    assert_eq!(malformed.status.code(), Some(2));
    everything.push_str(&String::from_utf8_lossy(&malformed.stderr));
    // SigV4 credentials and rotated API keys, in every format and on the
    // terminal; a malformed key's error line.
    let more = [
        "SECRET-AWS-SECRET-KEY-abc",
        "SECRET-AWS-SESSION-TOKEN-def",
        "SECRET-ROTATED-KEY-ONE",
        "SECRET-ROTATED-KEY-TWO",
    ];
    let (markdown, html, junit) = (
        dir.path().join("r.md"),
        dir.path().join("r.html"),
        dir.path().join("r.xml"),
    );
    let signed = gateprobe()
        .args([
            "load",
            &format!("http://{address}/y"),
            "--rate",
            "100",
            "-n",
            "10",
        ])
        .args([
            "--aws-sigv4",
            "us-east-1",
            "--api-keys",
            &format!("one={}", more[2]),
        ])
        .args(["--api-keys", more[3], "--json", "-", "--markdown"])
        .arg(&markdown)
        .arg("--html")
        .arg(&html)
        .arg("--junit")
        .arg(&junit)
        .env("AWS_ACCESS_KEY_ID", "AKIDSECRETSTEST")
        .env("AWS_SECRET_ACCESS_KEY", more[0])
        .env("AWS_SESSION_TOKEN", more[1])
        .output()
        .unwrap();
    assert_eq!(
        signed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    everything.push_str(&String::from_utf8_lossy(&signed.stdout));
    everything.push_str(&String::from_utf8_lossy(&signed.stderr));
    for file in [&markdown, &html, &junit] {
        everything.push_str(&std::fs::read_to_string(file).unwrap());
    }
    let bad_key = gateprobe()
        .args(["load", &url, "--api-keys", &format!("{}\u{7f}", more[2])])
        .output()
        .unwrap();
    assert_eq!(bad_key.status.code(), Some(2));
    everything.push_str(&String::from_utf8_lossy(&bad_key.stderr));
    for secret in secrets.iter().chain(&more) {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
    assert!(
        report_text.contains("<redacted>"),
        "secret headers are listed, redacted"
    );
    drop(runtime);
}

#[test]
fn ctrl_c_writes_the_partial_report_and_exits_3() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let address = runtime.block_on(async { common::serve_canary_split().await.0 });
    let url = format!("http://{address}/");
    let load = ["load", &url, "--rate", "200", "--duration", "30s"];
    let canary = [
        "canary",
        &url,
        "--rate",
        "200",
        "--expect",
        "canary=10%",
        "--classify",
        "canary=body:empty",
        "--classify",
        "stable=json:/version",
    ];
    for args in [&load[..], &canary[..]] {
        let dir = common::temp_dir();
        let report = dir.path().join("r.json");
        let binary = assert_cmd::cargo::cargo_bin("gateprobe");
        let mut child = std::process::Command::new(binary)
            .args(args)
            .args(["--quiet", "--json"])
            .arg(&report)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let sent = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(3),
            "{}: interrupted runs are inconclusive",
            args[0]
        );
        let report = common::read_json(&report);
        common::assert_valid_report(&report);
        common::assert_books_balance(&report);
        assert_eq!(report["run"]["ended"], "interrupted");
        let due = report["run"]["requests_due"].as_u64().unwrap();
        assert!(
            (200..=400).contains(&due),
            "{}: about 1.5 s of 200 rps came due: {due}",
            args[0]
        );
    }
    // The throttle probe, interrupted in its search: a partial report too.
    let dir = common::temp_dir();
    let report = dir.path().join("r.json");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
        .args(["throttle", &url, "--idle", "0", "--quiet", "--json"])
        .arg(&report)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert_eq!(
        child.wait().unwrap().code(),
        Some(3),
        "throttle: interrupted"
    );
    let report = common::read_json(&report);
    common::assert_valid_report(&report);
    assert_eq!(report["run"]["ended"], "interrupted");
    assert!(report["reason"].as_str().unwrap().contains("interrupted"));
    assert!(report["throttle"]["requests_used"].as_u64().unwrap() > 10);
    drop(runtime);
}
