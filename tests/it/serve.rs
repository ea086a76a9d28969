//! `gateprobe serve` driven by fakes of the two rollout controllers, each
//! replaying what its source does (fluxcd/flagger
//! `pkg/controller/webhook.go`, argoproj/argo-rollouts
//! `metricproviders/webmetric`), against the simulator. Every request goes
//! to 127.0.0.1.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use gateprobe::app::serve::{self, Config};
use gateprobe::sim::{self, config};
use serde_json::{json, Value};

use crate::common::{say, temp_dir};

const TOKEN: &str = "s3cret-token-for-tests-only";

/// A stable deployment, a healthy canary and one failing 5% of requests.
const SIM: &str = r#"{
  "deployments": {
    "stable": { "routes": [ { "method": "GET", "path": "/x",
        "integration": { "type": "json", "headers": { "x-deployment": "${stageVariables.who}" }, "body": { "ok": true } } } ] },
    "canary": { "routes": [ { "method": "GET", "path": "/x",
        "integration": { "type": "json", "headers": { "x-deployment": "${stageVariables.who}" }, "body": { "ok": true } } } ] },
    "sick": { "error_rate": 0.05, "routes": [ { "method": "GET", "path": "/x",
        "integration": { "type": "json", "headers": { "x-deployment": "${stageVariables.who}" }, "body": { "ok": true } } } ] }
  },
  "stages": {
    "GOOD": { "deployment": "stable", "variables": { "who": "stable" },
      "canary": { "percent_traffic": 10, "deployment": "canary", "stage_variable_overrides": { "who": "canary" } } },
    "SICK": { "deployment": "stable", "variables": { "who": "stable" },
      "canary": { "percent_traffic": 10, "deployment": "sick", "stage_variable_overrides": { "who": "canary" } } }
  }
}"#;

/// The profile: a canary check whose stage, expected share and request
/// cap the caller may set, within bounds.
fn profile(target: &str) -> String {
    json!({
        "target": target,
        "classify": ["canary=header:x-deployment=canary", "stable=header:x-deployment=stable"],
        "settable": {
            "STAGE": { "type": "word", "default": "GOOD" },
            "SHARE": { "type": "percent", "min": 1, "max": 50, "default": "10%" },
            "MAX": { "type": "number", "min": 100, "max": 40000, "default": "40000" }
        },
        "steps": [ { "name": "canary", "canary": {
            "path": "/${STAGE}/x", "rate": 2500, "expect": ["canary=${SHARE}"],
            "baseline": "stable", "max_requests": "${MAX}" } } ]
    })
    .to_string()
}

/// One HTTP/1.1 exchange over a fresh connection, as a controller makes it.
fn http(
    address: SocketAddr,
    request: (&str, &str),
    headers: &[(&str, &str)],
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let (method, path) = request;
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(format!("{head}{body}").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("timeout or reset: {e}"))?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}

/// Flagger's webhook client: 10 s timeout, go-retryablehttp's retries
/// (connection errors, 429, 5xx but 501), and its status rule: above
/// 202 is a failure.
struct Flagger {
    address: SocketAddr,
    namespace: String,
    checksum: String,
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, PartialEq)]
enum Rollout {
    Promoted,
    RolledBack,
    Held,
}

impl Flagger {
    fn call(&self, hook: &str) -> (bool, u16, String) {
        let payload =
            json!({ "name": "podinfo", "namespace": self.namespace, "phase": "Progressing",
            "checksum": self.checksum, "metadata": self.metadata })
            .to_string();
        let path = format!("/v1/flagger/{hook}");
        let mut last = (0, String::new());
        for attempt in 0..3 {
            let sent = http(
                self.address,
                ("POST", &path),
                &[],
                &payload,
                Duration::from_secs(10),
            );
            match sent {
                Ok((status, body)) if status == 429 || (status >= 500 && status != 501) => {
                    last = (status, body)
                }
                Ok((status, body)) => return (status <= 202, status, body),
                Err(why) => last = (0, why),
            }
            std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
        }
        (false, last.0, last.1)
    }

    /// Flagger's analysis loop: pre-rollout once; then each interval the
    /// rollback hook (a pass rolls back), the rollout hooks (failures
    /// count to the threshold), and the promotion gate.
    fn rollout(&self, intervals: usize) -> Rollout {
        if !self.call("pre-rollout").0 {
            return Rollout::RolledBack;
        }
        let mut failed = 0;
        for _ in 0..intervals {
            if self.call("rollback").0 {
                return Rollout::RolledBack;
            }
            let (ok, status, why) = self.call("rollout");
            if !ok {
                say(&format!("rollout hook failed: {status} {why}"));
                failed += 1;
                if failed >= 2 {
                    return Rollout::RolledBack;
                }
            }
            if self.call("confirm-promotion").0 {
                self.call("post-rollout");
                return Rollout::Promoted;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Rollout::Held
    }
}

#[derive(Debug, PartialEq)]
enum Phase {
    Successful,
    Failed,
    Inconclusive,
    Error,
}

/// An AnalysisTemplate's metric as Argo reads it: its conditions (expr
/// over `result`), how many measurements and how many may be inconclusive.
struct Metric {
    success: String,
    failure: String,
    count: usize,
    inconclusive_limit: usize,
}

/// The metric of the template `name` in deploy/kubernetes/serve/argo-rollout.yaml.
fn metric(name: &str) -> Metric {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/serve/argo-rollout.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let template = text
        .split("\n---\n")
        .find(|doc| doc.contains(&format!("  name: {name}\n")))
        .unwrap_or_else(|| panic!("template {name}"));
    let field = |key: &str| {
        template
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
            .map(str::to_string)
    };
    Metric {
        success: field("successCondition").unwrap(),
        failure: field("failureCondition").unwrap(),
        count: field("count").map_or(1, |c| c.parse().unwrap()),
        inconclusive_limit: field("inconclusiveLimit").map_or(0, |c| c.parse().unwrap()),
    }
}

/// The expr forms the templates use: `result.a == "x"`, joined by `&&`
/// and `||` (`&&` binding tighter), as Argo's expr evaluates them.
fn holds(condition: &str, result: &Value) -> bool {
    condition.split("||").any(|all| {
        all.split("&&").all(|comparison| {
            let (path, literal) = comparison.split_once("==").expect("a comparison");
            let mut value = result;
            for part in path
                .trim()
                .strip_prefix("result.")
                .expect("result.")
                .split('.')
            {
                value = &value[part];
            }
            value.as_str() == Some(literal.trim().trim_matches('"'))
        })
    })
}

/// Argo's Web provider: a synchronous call bounded by timeoutSeconds
/// (10); a non-2xx answer or a transport error is Error; then the
/// metric's conditions on the JSON, Inconclusive when neither holds. A
/// metric with a count measures again, until a condition holds or more
/// measurements were inconclusive than its limit allows.
fn argo(address: SocketAddr, key: &str, body: &Value, metric: &Metric) -> (Phase, Value) {
    let path = format!("/v1/argo/runs/{key}");
    let auth = format!("Bearer {TOKEN}");
    let mut result = json!(null);
    for measurement in 1..=metric.count {
        let sent = http(
            address,
            ("PUT", &path),
            &[("Authorization", &auth)],
            &body.to_string(),
            Duration::from_secs(10),
        );
        let Ok((200..=299, text)) = sent else {
            return (Phase::Error, json!(format!("{sent:?}")));
        };
        result = serde_json::from_str(&text).unwrap();
        if holds(&metric.failure, &result) {
            return (Phase::Failed, result);
        }
        if holds(&metric.success, &result) {
            return (Phase::Successful, result);
        }
        if measurement > metric.inconclusive_limit {
            break;
        }
    }
    (Phase::Inconclusive, result)
}

async fn server(target: &str, state: &Path, max_runs: usize) -> serve::Running {
    let profiles = state.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("canary.json"), profile(target)).unwrap();
    let config = Config {
        profiles: serve::read_profiles(&profiles).unwrap(),
        state_dir: Some(state.join("state")),
        max_runs,
        token: Some(TOKEN.to_string()),
        allow_namespaces: vec!["test".to_string()],
    };
    serve::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Variables a fake controller sets.
type Vars = [(&'static str, &'static str)];

fn flagger(address: SocketAddr, checksum: &str, vars: &Vars) -> Flagger {
    let mut metadata: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    metadata.insert("profile".into(), "canary".into());
    metadata.insert("token".into(), TOKEN.into());
    Flagger {
        address,
        namespace: "test".to_string(),
        checksum: checksum.to_string(),
        metadata,
    }
}

/// The blocking fakes run beside the server's runtime.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagger_promotes_a_good_canary_rolls_back_bad_ones_and_holds_undecided() {
    let sim = sim::start(
        config::parse("serve", SIM).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Some(3),
    )
    .await
    .unwrap();
    let dir = temp_dir();
    let running = server(&sim.url(""), dir.path(), 2).await;
    let address = running.address;
    let cases: [(&str, &Vars, Rollout); 5] = [
        ("good1", &[], Rollout::Promoted),
        (
            "strict1",
            &[("MAX", "100"), ("inconclusive", "fail")],
            Rollout::RolledBack,
        ),
        ("share1", &[("SHARE", "40%")], Rollout::RolledBack),
        ("sick1", &[("STAGE", "SICK")], Rollout::RolledBack),
        ("few1", &[("MAX", "100")], Rollout::Held),
    ];
    for (checksum, vars, expected) in cases {
        let fake = flagger(address, checksum, vars);
        let outcome = blocking(move || fake.rollout(40)).await;
        let run = running
            .server
            .runs()
            .get(&format!("test.podinfo.{checksum}"))
            .unwrap();
        say(&format!(
            "flagger {checksum} {vars:?}: {outcome:?}: {} {}",
            run.verdict.as_deref().unwrap_or("-"),
            run.reason
        ));
        assert_eq!(outcome, expected, "{checksum}: {}", run.reason);
    }
    // The same checksum again (a retry, a re-call) joins the run it started.
    let fake = flagger(address, "good1", &[]);
    let (ok, status, _) = blocking(move || fake.call("rollout")).await;
    assert!(ok && status == 200);
    assert_eq!(running.server.runs().counts().values().sum::<u64>(), 5);
    // The event that ends a rollout answers 202.
    let fake = flagger(address, "good1", &[]);
    assert_eq!(blocking(move || fake.call("event")).await.1, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_marks_success_failure_and_inconclusive_and_a_restart_answers_the_same() {
    let sim = sim::start(
        config::parse("serve", SIM).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Some(4),
    )
    .await
    .unwrap();
    let dir = temp_dir();
    let running = server(&sim.url(""), dir.path(), 2).await;
    let address = running.address;
    let cases = [
        ("good-abc123", json!({}), Phase::Successful),
        ("share-abc123", json!({ "SHARE": "40%" }), Phase::Failed),
        ("sick-abc123", json!({ "STAGE": "SICK" }), Phase::Failed),
        ("few-abc123", json!({ "MAX": 100 }), Phase::Inconclusive),
    ];
    for (key, vars, expected) in cases {
        let body = json!({ "profile": "canary", "vars": vars, "wait": "8s" });
        let single = metric("gateprobe-canary");
        let (phase, result) = blocking(move || argo(address, key, &body, &single)).await;
        say(&format!("argo {key}: {phase:?}: {}", result["reason"]));
        assert_eq!(phase, expected, "{key}: {result}");
        assert_eq!(result["report"], format!("/v1/runs/{key}/report.html"));
    }
    // The polling template: short waits, measured until the run is done.
    let body = json!({ "profile": "canary", "wait": "1s" });
    let polling = metric("gateprobe-canary-polling");
    assert!(polling.count > 1 && polling.inconclusive_limit > 0);
    let (phase, result) = blocking(move || argo(address, "poll-abc123", &body, &polling)).await;
    assert_eq!(phase, Phase::Successful, "{result}");
    // The report, in every format.
    for extension in ["json", "html", "md", "xml", "txt"] {
        let path = format!("/v1/runs/good-abc123/report.{extension}");
        let auth = format!("Bearer {TOKEN}");
        let (status, body) = blocking(move || {
            http(
                address,
                ("GET", &path),
                &[("Authorization", &auth)],
                "",
                Duration::from_secs(5),
            )
            .unwrap()
        })
        .await;
        assert_eq!(status, 200, "report.{extension}: {body}");
        assert!(!body.contains(TOKEN));
    }
    // DELETE forgets a run (a later call starts it again).
    let auth = format!("Bearer {TOKEN}");
    let (deleted, gone) = blocking(move || {
        let path = "/v1/runs/poll-abc123";
        let header = [("Authorization", auth.as_str())];
        let deleted = http(
            address,
            ("DELETE", path),
            &header,
            "",
            Duration::from_secs(5),
        )
        .unwrap();
        let gone = http(address, ("GET", path), &header, "", Duration::from_secs(5)).unwrap();
        (deleted.0, gone.0)
    })
    .await;
    assert_eq!((deleted, gone), (200, 404));
    // A restarted server answers the finished runs from --state-dir.
    running.stop().await;
    let again = server(&sim.url(""), dir.path(), 2).await;
    let address = again.address;
    let body = json!({ "profile": "canary", "vars": { "SHARE": "40%" }, "wait": "1s" });
    let single = metric("gateprobe-canary");
    let (phase, result) = blocking(move || argo(address, "share-abc123", &body, &single)).await;
    assert_eq!(phase, Phase::Failed, "{result}");
    let (status, metrics) = blocking(move || {
        http(
            address,
            ("GET", "/metrics"),
            &[],
            "",
            Duration::from_secs(5),
        )
        .unwrap()
    })
    .await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("gateprobe_serve_runs{state=\"done\",verdict=\"fail\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_their_reason_and_send_nothing() {
    let (target, counts) = crate::common::serve_ok().await;
    let dir = temp_dir();
    let running = server(&format!("http://{target}"), dir.path(), 1).await;
    let address = running.address;
    let put = |key: &str, body: Value, token: &str| {
        let (key, token) = (key.to_string(), token.to_string());
        move || {
            let auth = format!("Bearer {token}");
            http(
                address,
                ("PUT", &format!("/v1/argo/runs/{key}")),
                &[("Authorization", &auth)],
                &body.to_string(),
                Duration::from_secs(5),
            )
            .unwrap()
        }
    };
    let refused = [
        (
            put(
                "a",
                json!({ "profile": "canary", "vars": { "RATE": "9000" } }),
                TOKEN,
            ),
            422,
            "not settable",
        ),
        (
            put(
                "a",
                json!({ "profile": "canary", "vars": { "SHARE": "lots" } }),
                TOKEN,
            ),
            422,
            "expected a percent",
        ),
        (
            put(
                "a",
                json!({ "profile": "canary", "vars": { "SHARE": "90%" } }),
                TOKEN,
            ),
            422,
            "from 1 to 50",
        ),
        (
            put("a", json!({ "profile": "nope" }), TOKEN),
            404,
            "no profile 'nope'",
        ),
        (
            put("a", json!({ "profile": "canary" }), "wrong-token"),
            401,
            "token",
        ),
        (
            put("a/../b", json!({ "profile": "canary" }), TOKEN),
            404,
            "no route",
        ),
    ];
    for (call, status, says) in refused {
        let (got, body) = blocking(call).await;
        say(&format!("refused {got}: {}", body.trim()));
        assert_eq!(got, status, "{body}");
        assert!(body.contains(says), "{body}");
        assert!(!body.contains(TOKEN));
    }
    // Flagger: a URL in the metadata, a namespace not allowed, no token.
    let mut fake = flagger(address, "x1", &[("STAGE", "http://evil.example/")]);
    let (_, status, body) = blocking(move || fake.call("rollout")).await;
    assert_eq!(status, 422, "{body}");
    fake = flagger(address, "x1", &[]);
    fake.metadata.insert("token".into(), "nope".into());
    assert_eq!(blocking(move || fake.call("rollout")).await.1, 401);
    fake = flagger(address, "x1", &[]);
    fake.namespace = "other".to_string();
    let (_, status, body) = blocking(move || fake.call("rollout")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-namespace"), "{body}");
    // Nothing was sent so far.
    assert_eq!(counts.get(&counts.total), 0);
    // More runs than --max-runs (1): 429 with Retry-After.
    let long = json!({ "profile": "canary", "vars": { "MAX": 40000 } });
    assert_eq!(blocking(put("one", long.clone(), TOKEN)).await.0, 200);
    let (status, body) = blocking(put("two", long, TOKEN)).await;
    assert_eq!(status, 429, "{body}");
    running.stop().await;
}

/// SIGTERM stops the server's runs cleanly: each is recorded as
/// interrupted, with its partial report, and the server exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_records_running_runs_as_interrupted() {
    let sim = sim::start(
        config::parse("serve", SIM).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Some(5),
    )
    .await
    .unwrap();
    let dir = temp_dir();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let soak = json!({ "target": sim.url(""),
        "steps": [ { "name": "soak", "load": { "path": "/GOOD/x", "rate": 50, "duration": "60s" } } ] });
    std::fs::write(profiles.join("soak.json"), soak.to_string()).unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let port = crate::common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
        .args(["serve", "--listen", &listen, "--profiles"])
        .arg(&profiles)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--token-file")
        .arg(dir.path().join("token"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let address: SocketAddr = listen.parse().unwrap();
    let up = blocking(move || {
        (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            http(
                address,
                ("GET", "/healthz"),
                &[],
                "",
                Duration::from_secs(1),
            )
            .is_ok_and(|(s, _)| s == 200)
        })
    })
    .await;
    assert!(up, "the server did not come up");
    // A call that outlives Argo's 10 s timeout is an Error there; its
    // retry joins the same run (one run, the same start).
    let body = json!({ "profile": "soak", "wait": "12s" });
    let single = metric("gateprobe-canary");
    let (phase, result) = blocking(move || argo(address, "soak-1", &body, &single)).await;
    assert_eq!(phase, Phase::Error, "timed out: {result}");
    let first = blocking(move || {
        let auth = format!("Bearer {TOKEN}");
        let get = http(
            address,
            ("GET", "/v1/runs/soak-1"),
            &[("Authorization", &auth)],
            "",
            Duration::from_secs(5),
        );
        serde_json::from_str::<Value>(&get.unwrap().1).unwrap()
    })
    .await;
    let body_again = json!({ "profile": "soak" });
    let single = metric("gateprobe-canary");
    let (phase, result) = blocking(move || argo(address, "soak-1", &body_again, &single)).await;
    assert_eq!(phase, Phase::Inconclusive, "running: {result}");
    assert_eq!(result["state"], "running");
    assert_eq!(
        result["started_unix_ms"], first["started_unix_ms"],
        "the retry joined the run"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped = Instant::now();
    let status = blocking(move || {
        let status = child.wait().unwrap();
        let mut said = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut said)
            .unwrap();
        (status, said)
    })
    .await;
    say(&format!(
        "serve after SIGTERM: {:?} in {:?}: {}",
        status.0.code(),
        stopped.elapsed(),
        status.1.trim()
    ));
    assert_eq!(status.0.code(), Some(0), "{}", status.1);
    assert!(!status.1.contains(TOKEN));
    let saved: Value = crate::common::read_json(&dir.path().join("state/soak-1.json"));
    assert_eq!(saved["interrupted"], true, "{saved}");
    assert_eq!(saved["verdict"], "inconclusive", "{saved}");
    assert!(dir.path().join("state/soak-1.report.json").exists());
}
