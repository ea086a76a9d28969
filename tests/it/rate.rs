//! Rate accuracy and the nginx acceptance run. Kept in one test so that the
//! timing-sensitive runs do not share the two cores with each other.
use crate::common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_rates_are_exact() {
    five_thousand_rps_for_ten_seconds().await;
    two_thousand_rps_against_nginx().await;
}

async fn five_thousand_rps_for_ten_seconds() {
    let (address, counts) = serve_ok().await;
    let url = format!("http://{address}/");
    let (code, report) = load_report(&["load", &url, "--rate", "5000", "--duration", "10s"]).await;
    assert_eq!(code, 0);
    assert_valid_report(&report);
    assert_books_balance(&report);
    let run = &report["run"];
    let achieved = run["achieved_rate_per_s"].as_f64().unwrap();
    say(&format!(
        "5000 rps × 10 s: achieved {achieved:.1}/s, dropped {}",
        run["dropped"]
    ));
    assert!(
        (achieved / 5000.0 - 1.0).abs() <= 0.005,
        "achieved {achieved}"
    );
    assert_eq!(run["requests_due"].as_u64().unwrap(), 50_000);
    // No burst: a second's sends exceed the rate only by requests that a
    // stall of the machine (CI's VMs stall) carried over from the second
    // before, and a request moves by its own send lag, so at most
    // rate × the largest send lag. A burst the engine made would exceed it.
    let max_lag_s = report["schedule_lag_ms"]["max"].as_f64().unwrap() / 1000.0;
    let allowed = 5000.0 * (1.02 + max_lag_s);
    let sent = report["series"]["sent"].as_array().unwrap();
    for (second, count) in sent.iter().take(10).enumerate() {
        let count = count.as_u64().unwrap() as f64;
        assert!(
            count <= allowed,
            "second {second} sent {count}: more than {allowed:.0} (the largest send lag {:.1} ms)",
            max_lag_s * 1000.0
        );
    }
    assert_eq!(
        counts.get(&counts.total),
        run["requests_sent"].as_u64().unwrap()
    );
}

async fn two_thousand_rps_against_nginx() {
    let nginx = match start_nginx("", "location / { return 200 '{\"version\":\"1\"}'; }") {
        Ok(nginx) => nginx,
        Err(reason) => {
            say(&format!("SKIPPED nginx acceptance run: {reason}"));
            return;
        }
    };
    let url = format!("http://127.0.0.1:{}/hello", nginx.port);
    let (code, report) = load_report(&["load", &url, "--rate", "2000", "--duration", "5s"]).await;
    assert_eq!(code, 0);
    assert_valid_report(&report);
    assert_books_balance(&report);
    let achieved = report["run"]["achieved_rate_per_s"].as_f64().unwrap();
    say(&format!("nginx 2000 rps × 5 s: achieved {achieved:.1}/s"));
    assert!(
        (achieved / 2000.0 - 1.0).abs() <= 0.01,
        "achieved {achieved}"
    );
    assert_eq!(report["run"]["requests_due"].as_u64().unwrap(), 10_000);
    assert_eq!(report["classes"]["ok"]["count"].as_u64().unwrap(), 10_000);
}
