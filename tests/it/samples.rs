//! `--samples FILE`: one CSV row per request, whose latencies are the
//! report's; a scenario's steps and a probe's phases append to one file;
//! `merge --samples-from` concatenates shards' files. (Memory and cost per
//! request: bench/run.sh section 7.)
use std::path::Path;

use crate::common::{run, say, serve_canary_split, temp_dir};

/// The rows of a samples file (after its header), each split on commas.
fn read_rows(path: &Path) -> (String, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let rows = lines
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_one_row_and_the_rows_are_the_report() {
    let (address, _) = serve_canary_split().await;
    let url = format!("http://{address}/");
    let dir = temp_dir();
    let csv = dir.path().join("s.csv");
    let json = dir.path().join("r.json");
    let (csv_s, json_s) = (csv.display().to_string(), json.display().to_string());
    let code = run(&[
        "load",
        &url,
        "--rate",
        "1500",
        "-n",
        "3000",
        "--classify",
        "canary=body:empty",
        "--quiet",
        "--samples",
        &csv_s,
        "--json",
        &json_s,
    ])
    .await;
    assert_eq!(code, 0);
    let report = crate::common::read_json(&json);
    let (header, rows) = read_rows(&csv);
    assert_eq!(header, gateprobe::engine::samples::HEADER);
    let due = report["run"]["requests_due"].as_u64().unwrap();
    assert_eq!(rows.len() as u64, due, "one row per request that came due");
    let mut indexes: Vec<u64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len() as u64, due, "each request once");
    // Per class: the rows' latency quantiles are the report's exact
    // histogram's, within its precision (3 significant digits).
    for (class, section) in report["classes"].as_object().unwrap() {
        let mut latencies: Vec<u64> = rows
            .iter()
            .filter(|r| r[6] == *class && r[8] == "completed")
            .map(|r| r[4].parse().unwrap())
            .collect();
        assert_eq!(
            latencies.len() as u64,
            section["count"].as_u64().unwrap(),
            "{class}"
        );
        if latencies.is_empty() {
            continue;
        }
        latencies.sort_unstable();
        let histogram = gateprobe::record::histogram_from_base64(
            section["histograms"]["latency_us"].as_str().unwrap(),
        )
        .unwrap();
        for quantile in [0.5, 0.9, 0.99, 1.0] {
            let rank =
                ((quantile * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            let exact = latencies[rank - 1];
            let recorded = histogram.value_at_quantile(quantile);
            let low = histogram.lowest_equivalent(recorded);
            assert!(
                (low..=recorded).contains(&exact.max(1)),
                "{class} p{quantile}: rows {exact} µs, recorder {low}–{recorded} µs"
            );
        }
        say(&format!(
            "{class}: {} rows, p50 {} µs",
            latencies.len(),
            latencies[latencies.len() / 2]
        ));
    }
    // Send lag and due times are there, and every row has its shard.
    assert!(rows
        .iter()
        .all(|r| r[0] == "0/1" && !r[2].is_empty() && r.len() == 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_samples_concatenate_in_merge_and_steps_share_one_file() {
    let (address, _) = serve_canary_split().await;
    let url = format!("http://{address}/");
    let dir = temp_dir();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let mut reports = Vec::new();
    for index in 0..2 {
        let shard = format!("{index}/2");
        let (csv, json) = (
            path(&format!("s{index}.csv")),
            path(&format!("s{index}.json")),
        );
        let code = run(&[
            "load",
            &url,
            "--rate",
            "400",
            "-n",
            "400",
            "--shard",
            &shard,
            "--quiet",
            "--samples",
            &csv,
            "--json",
            &json,
        ])
        .await;
        assert_eq!(code, 0);
        reports.push(json);
    }
    let (merged_csv, merged_json) = (path("m.csv"), path("m.json"));
    let code = run(&[
        "merge",
        &reports[0],
        &reports[1],
        "--quiet",
        "--json",
        &merged_json,
        "--samples",
        &merged_csv,
        "--samples-from",
        &path("s0.csv"),
        "--samples-from",
        &path("s1.csv"),
    ])
    .await;
    assert_eq!(code, 0);
    let (header, rows) = read_rows(Path::new(&merged_csv));
    assert_eq!(header, gateprobe::engine::samples::HEADER);
    let merged = crate::common::read_json(Path::new(&merged_json));
    assert_eq!(
        rows.len() as u64,
        merged["run"]["requests_due"].as_u64().unwrap()
    );
    for shard in ["0/2", "1/2"] {
        assert!(
            rows.iter().filter(|r| r[0] == shard).count() >= 190,
            "{shard}"
        );
    }
    // Without --samples-from, and to standard output: refused, exit 2.
    assert_eq!(
        run(&["merge", &reports[0], "--samples", &merged_csv]).await,
        2
    );
    assert_eq!(run(&["load", &url, "-n", "5", "--samples", "-"]).await, 2);
    assert_eq!(
        run(&[
            "merge",
            &reports[0],
            "--samples",
            &merged_csv,
            "--samples-from",
            &reports[0]
        ])
        .await,
        2
    );
    // A scenario's steps append to one file, under one header.
    let scenario = dir.path().join("two.json");
    std::fs::write(
        &scenario,
        r#"{"target": "http://127.0.0.1:9", "steps": [
             {"name": "a", "load": {"path": "/", "rate": 200, "requests": 100}},
             {"name": "b", "load": {"path": "/", "rate": 200, "requests": 150}}]}"#,
    )
    .unwrap();
    let csv = path("steps.csv");
    let base = format!("http://{address}");
    let code = run(&[
        "run",
        scenario.to_str().unwrap(),
        "--target",
        &base,
        "--quiet",
        "--samples",
        &csv,
    ])
    .await;
    assert_eq!(code, 0);
    let (_, rows) = read_rows(Path::new(&csv));
    assert_eq!(rows.len(), 250, "both steps' requests");
}
