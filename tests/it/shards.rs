//! Shards (#15): N processes each send their stripe of one planned run on
//! one clock (`--shard I/N --start-at`), and `gateprobe merge` adds their
//! reports up to the run's: every global request once, the series summed,
//! the rate the plan's. Bad merges name what differs and exit 2.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::Value;

use crate::common::{self, read_json};

fn gateprobe(args: &[String]) -> Command {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("gateprobe"));
    command.args(args).stdin(Stdio::null());
    command
}

fn output(args: &[String]) -> Output {
    gateprobe(args).output().expect("gateprobe runs")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A server that records the `seq` of every request (`/?seq=N`).
pub async fn serve_recording() -> (std::net::SocketAddr, Arc<Mutex<Vec<u64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let (address, _) = common::serve(Arc::new(move |request, _| {
        let seq = request
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("seq="))
            .and_then(|n| n.parse().ok());
        if let Some(seq) = seq {
            kept.lock().unwrap().push(seq);
        }
        Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")))
    }))
    .await;
    (address, seen)
}

/// Runs `count` shard processes of one plan side by side, each writing
/// `shard-I.json` in `dir`; returns their paths.
fn run_shards(dir: &Path, plan: &[String], count: u64, env_index: bool) -> Vec<PathBuf> {
    let start = humantime::format_rfc3339_millis(
        std::time::SystemTime::now() + std::time::Duration::from_millis(1500),
    )
    .to_string();
    let children: Vec<(PathBuf, std::process::Child)> = (0..count)
        .map(|index| {
            let path = dir.join(format!("shard-{index}.json"));
            let mut args = plan.to_vec();
            args.extend(strings(&["--start-at", &start, "--quiet", "--json"]));
            args.push(path.display().to_string());
            let mut command = gateprobe(&args);
            if env_index {
                command
                    .args(["--shard-from-env", &count.to_string()])
                    .env("JOB_COMPLETION_INDEX", index.to_string());
            } else {
                command.args(["--shard", &format!("{index}/{count}")]);
            }
            let child = command.stderr(Stdio::null()).spawn().expect("shard starts");
            (path, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(path, mut child)| {
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(0), "{} exits 0", path.display());
            path
        })
        .collect()
}

fn merge(paths: &[PathBuf], extra: &[&str]) -> Output {
    let mut args = vec!["merge".to_string()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    args.extend(strings(extra));
    output(&args)
}

/// A report's checks, one line each, for a failing assertion's message.
fn check_lines(report: &Value) -> String {
    let lines: Vec<String> = report["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .map(|c| format!("{} {}: {}", c["verdict"], c["name"], c["reason"]))
                .collect()
        })
        .unwrap_or_default();
    format!("{}\n{}", report["reason"], lines.join("\n"))
}

fn series(report: &Value, name: &str) -> Vec<u64> {
    report["series"][name]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn add(into: &mut Vec<u64>, other: &[u64]) {
    if into.len() < other.len() {
        into.resize(other.len(), 0);
    }
    for (mine, theirs) in into.iter_mut().zip(other) {
        *mine += theirs;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_merge_to_the_planned_run() {
    let (address, seen) = serve_recording().await;
    let dir = common::temp_dir();
    let url = format!("http://{address}/?seq={{{{seq}}}}");
    let plan = strings(&[
        "load",
        &url,
        "--rate",
        "300",
        "--duration",
        "2s",
        "--max-in-flight",
        "64",
    ]);
    let planned = 600u64;
    let paths = tokio::task::block_in_place(|| run_shards(dir.path(), &plan, 4, false));

    // Every global index exactly once, across the four processes.
    let mut indices = seen.lock().unwrap().clone();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..planned).collect::<Vec<_>>(),
        "each global request once"
    );

    let shards: Vec<Value> = paths.iter().map(|p| read_json(p)).collect();
    for (index, shard) in shards.iter().enumerate() {
        assert_eq!(shard["shard"]["index"], index as u64);
        assert_eq!(shard["shard"]["count"], 4);
        assert_eq!(
            shard["run"]["requests_due"],
            planned / 4,
            "{index}: its stripe"
        );
        let late = shard["shard"]["start_late_ms"].as_f64().unwrap();
        assert!(late < 500.0, "shard {index} started {late} ms late");
    }
    let merged_path = dir.path().join("merged.json");
    let merged_out = merge(
        &paths,
        &["--json", merged_path.to_str().unwrap(), "--quiet"],
    );
    assert_eq!(merged_out.status.code(), Some(0), "{merged_out:?}");
    let merged = read_json(&merged_path);
    common::assert_valid_report(&merged);
    common::assert_books_balance(&merged);
    assert_eq!(merged["run"]["requests_due"], planned);
    assert_eq!(merged["run"]["requests_sent"], planned);
    assert_eq!(merged["shard"]["merged"], serde_json::json!([0, 1, 2, 3]));
    let target = merged["run"]["target_rate_per_s"].as_f64().unwrap();
    let achieved = merged["run"]["achieved_rate_per_s"].as_f64().unwrap();
    assert!((target - 300.0).abs() < 1e-6, "target {target}");
    assert!(
        (achieved / target - 1.0).abs() <= 0.01,
        "achieved {achieved} vs {target}"
    );
    // Per-second series: the sum of the shards' (one clock: --start-at).
    for name in ["sent", "dropped"] {
        let mut sum = Vec::new();
        for shard in &shards {
            add(&mut sum, &series(shard, name));
        }
        assert_eq!(series(&merged, name), sum, "series.{name}");
    }
    // Latency histograms merge exactly: the merged max is the shards' max.
    let max = |r: &Value| {
        r["classes"]["ok"]["latency_ms"]["max"]
            .as_f64()
            .unwrap_or(0.0)
    };
    let shard_max = shards.iter().map(max).fold(0.0, f64::max);
    assert!(
        (max(&merged) - shard_max).abs() < 1e-9,
        "{} vs {shard_max}",
        max(&merged)
    );

    // Merging one shard is the identity for what it measured and decided.
    let one = dir.path().join("one.json");
    let out = merge(
        &paths[1..2],
        &[
            "--json",
            one.to_str().unwrap(),
            "--quiet",
            "--allow-partial",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "one of four: partial, so no pass"
    );
    let one = read_json(&one);
    for field in ["classes", "errors", "series"] {
        assert_eq!(one[field], shards[1][field], "{field}");
    }
    assert_eq!(
        one["run"]["requests_sent"],
        shards[1]["run"]["requests_sent"]
    );
    assert_eq!(one["shard"]["missing"], serde_json::json!([0, 2, 3]));

    // Bad merges: one line naming what differs, exit 2.
    let bad = |paths: &[PathBuf], wanted: &str| {
        let out = merge(paths, &["--quiet"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(wanted), "{stderr} lacks {wanted}");
    };
    bad(
        &[paths[0].clone(), paths[1].clone(), paths[2].clone()],
        "missing 3/4",
    );
    bad(
        &[
            paths[0].clone(),
            paths[1].clone(),
            paths[1].clone(),
            paths[3].clone(),
        ],
        "shard 1/4 is given twice",
    );
    // Another plan: another rate.
    let other_dir = common::temp_dir();
    let mut other_plan = plan.clone();
    other_plan[3] = "200".to_string();
    let shard_3 = |plan: &[String], name: &str| {
        let mut args = plan.to_vec();
        args.extend(strings(&["--shard", "3/4", "--quiet", "--json"]));
        let path = other_dir.path().join(name);
        args.push(path.display().to_string());
        assert_eq!(
            tokio::task::block_in_place(|| output(&args)).status.code(),
            Some(0)
        );
        path
    };
    let other = shard_3(&other_plan, "other.json");
    bad(
        &[paths[0].clone(), paths[1].clone(), paths[2].clone(), other],
        "load differs",
    );
    // Another target.
    let (elsewhere, _) = serve_recording().await;
    let mut moved_plan = plan.clone();
    moved_plan[1] = format!("http://{elsewhere}/?seq={{{{seq}}}}");
    let moved = shard_3(&moved_plan, "moved.json");
    bad(
        &[paths[0].clone(), paths[1].clone(), paths[2].clone(), moved],
        "target differs",
    );
    // A merged report merges on: ((0,1) + 2) + 3 = the whole.
    let left = dir.path().join("left.json");
    assert_eq!(
        merge(
            &paths[..2],
            &[
                "--allow-partial",
                "--quiet",
                "--json",
                left.to_str().unwrap()
            ]
        )
        .status
        .code(),
        Some(3)
    );
    let whole = dir.path().join("whole.json");
    let out = merge(
        &[left, paths[2].clone(), paths[3].clone()],
        &["--quiet", "--json", whole.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let whole = read_json(&whole);
    for field in ["classes", "errors", "series"] {
        assert_eq!(whole[field], merged[field], "associative: {field}");
    }
}

/// The Job's container command, run locally: the index comes from
/// $JOB_COMPLETION_INDEX as a Kubernetes Indexed Job sets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_from_the_job_index_cover_the_run() {
    let (address, seen) = serve_recording().await;
    let dir = common::temp_dir();
    let url = format!("http://{address}/?seq={{{{seq}}}}");
    let plan = strings(&["load", &url, "--rate", "200", "--duration", "1s"]);
    let paths = tokio::task::block_in_place(|| run_shards(dir.path(), &plan, 3, true));
    let mut indices = seen.lock().unwrap().clone();
    indices.sort_unstable();
    assert_eq!(indices, (0..200).collect::<Vec<_>>());
    let out = merge(&paths, &["--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Without the variable, --shard-from-env is a usage error naming it.
    let out = output(&strings(&[
        "load",
        &url,
        "--shard-from-env",
        "3",
        "--requests",
        "1",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JOB_COMPLETION_INDEX"));
}

/// `--shard-weights 2,1,1`: shard 0 sends half the run, the others a
/// quarter each, every global index once, each following the whole run's
/// seconds at its share; shards given other weights are not one run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_shards_split_the_run_by_their_weights() {
    let (address, seen) = serve_recording().await;
    let dir = common::temp_dir();
    let url = format!("http://{address}/?seq={{{{seq}}}}");
    let plan = |weights: &str| {
        strings(&[
            "load",
            &url,
            "--rate",
            "400",
            "--duration",
            "2s",
            "--shard-weights",
            weights,
        ])
    };
    let paths = tokio::task::block_in_place(|| run_shards(dir.path(), &plan("2,1,1"), 3, false));
    let mut indices = seen.lock().unwrap().clone();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..800).collect::<Vec<_>>(),
        "each global request once"
    );
    let shards: Vec<Value> = paths.iter().map(|p| read_json(p)).collect();
    for (shard, due) in shards.iter().zip([400u64, 200, 200]) {
        assert_eq!(shard["run"]["requests_due"], due);
        assert_eq!(shard["shard"]["weights"], serde_json::json!([2, 1, 1]));
        let target = shard["run"]["target_rate_per_s"].as_f64().unwrap();
        assert!((target - due as f64 / 2.0).abs() < 1e-6, "target {target}");
    }
    let out = merge(&paths, &["--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Shard 1 of a run with other weights is not shard 1 of this one.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let others = tokio::task::block_in_place(|| run_shards(&other, &plan("1,1,2"), 3, false));
    let out = merge(
        &[paths[0].clone(), others[1].clone(), paths[2].clone()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("weights differ"), "{stderr}");
    // Weights without a shard, or not one per shard: usage errors.
    for extra in [
        &["--shard-weights", "2,1"][..],
        &["--shard", "0/3", "--shard-weights", "2,1"],
    ] {
        let mut args = strings(&["load", &url, "--requests", "1"]);
        args.extend(strings(extra));
        let out = output(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--shard-weights"));
    }
}

#[test]
fn a_throttle_probe_refuses_to_shard() {
    let out = output(&strings(&[
        "throttle",
        "http://127.0.0.1:9/",
        "--shard",
        "0/2",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be sharded"), "{stderr}");
    for bad in ["2/2", "x/3", "1/0", "1"] {
        let out = output(&strings(&["load", "http://127.0.0.1:9/", "--shard", bad]));
        assert_eq!(out.status.code(), Some(2), "--shard {bad}");
    }
    let out = output(&strings(&[
        "load",
        "http://127.0.0.1:9/",
        "--start-at",
        "tomorrow",
    ]));
    assert_eq!(out.status.code(), Some(2));
}

/// Canary shards and one run of the same plan against the same seeded
/// simulator agree: a correct split passes, a mistyped expectation fails, a
/// canary with errors fails its health check. Shards never stop early: the
/// merge decides once on all of them, at the plan's fixed size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_shards_merge_to_the_single_runs_verdict() {
    let running = crate::canary::simulator(23).await;
    let dir = common::temp_dir();
    // Fixed sizes a CI run affords: the pass case holds the ten one-second
    // blocks the latency check needs; the error case fails on errors at a
    // 2pp margin (its latency, on five seconds, stays undecided).
    let cases: [(&str, &[&str], i32); 3] = [
        ("C10", &["--expect", "canary=10%", "--requests", "26000"], 0),
        ("C10", &["--expect", "canary=25%", "--no-health"], 1),
        (
            "ERRORS",
            &[
                "--expect",
                "canary=10%",
                "--max-error-increase",
                "2pp",
                "--requests",
                "12000",
            ],
            1,
        ),
    ];
    for (case, (stage, extra, wanted)) in cases.iter().enumerate() {
        let mut plan = strings(&[
            "canary",
            &running.url(&format!("/{stage}/x")),
            "--rate",
            "2400",
        ]);
        plan.extend(strings(&crate::canary::CLASSES));
        plan.extend(strings(extra));
        let case_dir = dir.path().join(case.to_string());
        std::fs::create_dir(&case_dir).unwrap();
        // The single run goes first, alone: side by side with the shards,
        // 4,800 rps on CI's two cores cost a transport error now and then,
        // which (counted as a canary error) leaves the error check undecided.
        let single_path = case_dir.join("single.json");
        let single = tokio::task::block_in_place(|| {
            gateprobe(
                &[
                    &plan[..],
                    &strings(&["--quiet", "--json", single_path.to_str().unwrap()]),
                ]
                .concat(),
            )
            .stderr(Stdio::null())
            .status()
            .unwrap()
        });
        let paths = tokio::task::block_in_place(|| run_shards(&case_dir, &plan, 4, false));
        assert_eq!(
            single.code(),
            Some(*wanted),
            "{stage} {extra:?}: one run:\n{}",
            check_lines(&read_json(&single_path))
        );
        let merged_path = case_dir.join("merged.json");
        let out = merge(
            &paths,
            &["--quiet", "--json", merged_path.to_str().unwrap()],
        );
        let merged = read_json(&merged_path);
        common::assert_valid_report(&merged);
        assert_eq!(
            out.status.code(),
            Some(*wanted),
            "{stage} {extra:?} merged:\n{}",
            check_lines(&merged)
        );
        // The union is the plan: every shard sent its stripe of it.
        let planned = merged["canary"]["max_requests"].as_u64().unwrap();
        assert_eq!(merged["run"]["requests_due"].as_u64().unwrap(), planned);
        let shards: Vec<Value> = paths.iter().map(|p| read_json(p)).collect();
        let classified: u64 = shards
            .iter()
            .map(|s| s["canary"]["classified"].as_u64().unwrap())
            .sum();
        assert_eq!(merged["canary"]["classified"], classified);
        let share = merged["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "share canary")
            .unwrap();
        assert!(
            share["reason"].as_str().unwrap().contains("fixed size"),
            "{share}"
        );
        // Decided at a fixed size, so `report --recompute` decides every
        // check of the merged canary again from the report alone…
        let recompute = |path: &Path| {
            Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
                .arg("report")
                .arg(path)
                .arg("--recompute")
                .output()
                .unwrap()
        };
        let again = recompute(&merged_path);
        let said = String::from_utf8_lossy(&again.stderr);
        assert_eq!(again.status.code(), Some(*wanted), "{said}");
        let checks = merged["checks"].as_array().unwrap().len();
        assert!(
            said.contains(&format!("recomputed {checks} fixed-horizon check")),
            "{said}"
        );
        // …and finds counts edited under them (half the canary's moved to
        // the stable deployment: the same total, another share).
        let mut edited = merged.clone();
        let canary = edited["classes"]["canary"]["count"].as_u64().unwrap();
        let stable = edited["classes"]["stable"]["count"].as_u64().unwrap();
        edited["classes"]["canary"]["count"] = Value::from(canary - canary / 2);
        edited["classes"]["stable"]["count"] = Value::from(stable + canary / 2);
        let edited_path = case_dir.join("edited.json");
        std::fs::write(&edited_path, edited.to_string()).unwrap();
        let caught = recompute(&edited_path);
        let said = String::from_utf8_lossy(&caught.stderr);
        assert_eq!(caught.status.code(), Some(2), "{said}");
        // The counts no longer agree with the statuses and histograms
        // beside them (found on reading), or with a recomputed check.
        assert!(
            said.contains("recomputes to") || said.contains("field 'classes.canary"),
            "{said}"
        );
        common::say(&format!(
            "canary shards {stage} {extra:?}: {}",
            merged["reason"]
        ));
    }
}

/// `run --shard` shards every load step and `--start-at` aligns the first;
/// merge adds the steps up one by one and decides their thresholds again.
/// A throttle step in a sharded scenario refuses, naming the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_scenario_merges_step_by_step() {
    let (address, seen) = serve_recording().await;
    let dir = common::temp_dir();
    let scenario = dir.path().join("s.json");
    std::fs::write(
        &scenario,
        format!(
            r#"{{ "target": "http://{address}",
  "steps": [
    {{ "name": "warm", "load": {{ "path": "/?seq={{{{seq}}}}", "rate": 200, "duration": "1s" }} }},
    {{ "name": "gate", "load": {{ "path": "/?seq={{{{seq}}}}", "rate": 300, "duration": "1s",
                           "thresholds": ["error_rate < 1%", "p99_ms < 500"] }} }}
  ] }}"#
        ),
    )
    .unwrap();
    let plan = strings(&["run", scenario.to_str().unwrap()]);
    let paths = tokio::task::block_in_place(|| run_shards(dir.path(), &plan, 2, false));
    // Each step's indices are its own: 0..200 and 0..300, each once.
    let mut indices = seen.lock().unwrap().clone();
    indices.sort_unstable();
    let mut wanted: Vec<u64> = (0..200).chain(0..300).collect();
    wanted.sort_unstable();
    assert_eq!(indices, wanted);
    let merged_path = dir.path().join("merged.json");
    let out = merge(
        &paths,
        &["--quiet", "--json", merged_path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let merged = read_json(&merged_path);
    common::assert_valid_report(&merged);
    let steps = merged["steps"].as_array().unwrap();
    assert_eq!(steps[0]["report"]["run"]["requests_sent"], 200);
    assert_eq!(steps[1]["report"]["run"]["requests_sent"], 300);
    assert_eq!(merged["run"]["requests_sent"], 500);
    let thresholds: Vec<&Value> = merged["checks"].as_array().unwrap().iter().collect();
    assert_eq!(thresholds.len(), 2, "{thresholds:?}");
    assert!(
        thresholds.iter().all(|c| c["verdict"] == "pass"),
        "{thresholds:?}"
    );

    let throttling = dir.path().join("t.json");
    std::fs::write(
        &throttling,
        format!(r#"{{ "target": "http://{address}", "steps": [ {{ "name": "probe", "throttle": {{ "path": "/" }} }} ] }}"#),
    )
    .unwrap();
    let out = output(&strings(&[
        "run",
        throttling.to_str().unwrap(),
        "--shard",
        "0/2",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("probe") && stderr.contains("cannot be sharded"),
        "{stderr}"
    );
}

/// Merging one whole run (shard 0/1, on a --start-at clock) gives back its
/// measurements and its analyses byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_one_whole_run_is_the_identity() {
    let (address, _) = serve_recording().await;
    let dir = common::temp_dir();
    let scenario = dir.path().join("s.json");
    std::fs::write(
        &scenario,
        format!(
            r#"{{ "target": "http://{address}", "steps": [ {{ "name": "gate", "load": {{ "path": "/", "rate": 200, "duration": "1s",
               "thresholds": ["error_rate < 1%", "p99_ms < 500", "share[ok] > 50%"] }} }} ] }}"#
        ),
    )
    .unwrap();
    let one = dir.path().join("one.json");
    let args = strings(&[
        "run",
        scenario.to_str().unwrap(),
        "--start-at",
        "+0s",
        "--quiet",
        "--json",
    ]);
    let ran = tokio::task::block_in_place(|| {
        output(&[&args[..], &strings(&[one.to_str().unwrap()])].concat())
    });
    assert_eq!(ran.status.code(), Some(0), "{ran:?}");
    let merged = dir.path().join("merged.json");
    let out = merge(
        std::slice::from_ref(&one),
        &["--quiet", "--json", merged.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let (one, merged) = (read_json(&one), read_json(&merged));
    let step = |r: &Value| r["steps"][0]["report"].clone();
    for field in ["checks", "classes", "errors", "series", "schedule_lag_ms"] {
        assert_eq!(
            serde_json::to_string(&step(&merged)[field]).unwrap(),
            serde_json::to_string(&step(&one)[field]).unwrap(),
            "{field}"
        );
    }
    assert_eq!(merged["checks"], one["checks"]);
    assert_eq!(merged["verdict"], one["verdict"]);
}

/// The N-local-processes recipe in docs/shards.md, run as written (the rate and the
/// duration made small): four shards from one shell loop with
/// `--start-at +5s` resolve one start to the millisecond and merge to the
/// planned run, every request once. Beside it, the same loop with the last
/// shard started 2 s after the others: the merge accepts it, lines the
/// series up, and says how much later it began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_starts_from_one_shell_loop_merge() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/shards.md"))
            .unwrap();
    let after = &readme[readme
        .find("<!-- shards-recipe")
        .expect("the recipe is marked")..];
    let block = &after[after.find("```sh\n").unwrap() + 6..];
    let block = &block[..block.find("```").unwrap()];
    assert!(block.contains("--start-at +5s"), "{block}");
    let recipe = block.replace("--rate 20000 --duration 60s", "--rate 400 --requests 800");
    let late = recipe.replace(
        "for i in 0 1 2 3; do",
        "for i in 0 1 2 3; do\n  [ $i = 3 ] && sleep 2",
    );
    let bin = assert_cmd::cargo::cargo_bin("gateprobe");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut runs = Vec::new();
    for script in [recipe, late] {
        let (address, seen) = serve_recording().await;
        let dir = common::temp_dir();
        let child = Command::new("sh")
            .args(["-c", &script])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("URL", format!("http://{address}/?seq={{{{seq}}}}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        runs.push((dir, seen, child));
    }
    for (which, (dir, seen, child)) in runs.into_iter().enumerate() {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "recipe {which}: {stderr}");
        let shards: Vec<Value> = (0..4)
            .map(|i| read_json(&dir.path().join(format!("shard-{i}.json"))))
            .collect();
        let starts: Vec<&str> = shards
            .iter()
            .map(|s| s["shard"]["start_at"].as_str().unwrap())
            .collect();
        let mut indices = seen.lock().unwrap().clone();
        indices.sort_unstable();
        assert_eq!(
            indices,
            (0..800).collect::<Vec<u64>>(),
            "recipe {which}: every request once"
        );
        // The merge wrote run.md; merge again to JSON to read it.
        let paths: Vec<PathBuf> = (0..4)
            .map(|i| dir.path().join(format!("shard-{i}.json")))
            .collect();
        let merged_path = dir.path().join("merged.json");
        let merged = merge(&paths, &["--json", merged_path.to_str().unwrap()]);
        assert_eq!(
            merged.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&merged.stderr)
        );
        let report = read_json(&merged_path);
        assert_eq!(report["run"]["requests_sent"], 800);
        let after_ms = &report["shard"]["began_after_ms"];
        if which == 0 {
            // Started together, the shards resolve one start, or (when the
            // loop straddled a second boundary, a chance of its spread over
            // 1 s) two starts one whole second apart, which the merge
            // lines up and names.
            let mut distinct = starts.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert!(
                distinct.len() <= 2,
                "one start, or two across a second: {starts:?}"
            );
            if distinct.len() == 1 {
                assert!(after_ms.is_null(), "{after_ms}");
            } else {
                common::say(&format!("the loop straddled a second boundary: {starts:?}"));
                let offsets: Vec<f64> = after_ms
                    .as_object()
                    .expect("the later shards are named")
                    .values()
                    .filter_map(Value::as_f64)
                    .collect();
                assert!(
                    offsets.iter().all(|ms| (ms - 1000.0).abs() < 50.0),
                    "one second apart: {after_ms}"
                );
            }
            assert_eq!(series(&report, "sent").iter().sum::<u64>(), 800);
        } else {
            let late = after_ms["3/4"].as_f64().unwrap_or(0.0);
            common::say(&format!(
                "late shard began {late} ms after the others: {}",
                report["reason"]
            ));
            assert!((2000.0..=3000.0).contains(&late), "{after_ms}");
            assert!(
                report["reason"]
                    .as_str()
                    .unwrap()
                    .contains("shard 3/4 began"),
                "{}",
                report["reason"]
            );
        }
    }
}
