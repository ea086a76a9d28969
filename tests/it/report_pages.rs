//! The HTML report, checked as a reader meets it. Saved reports of the
//! runs people look at (a 3 s canary, an undecided canary, a 60 s load run,
//! a throttle probe of each limiter kind, a 4-shard merge, the demo's
//! scenario) are committed in tests/fixtures/reports/, made by
//! `cargo test --release -- --ignored record_report_pages` against the
//! simulator; `gateprobe report` draws each one here. The structure is
//! checked in the HTML itself (one colour per class, a text alternative
//! for every chart, ≥ 30 points or all of them, no drop at a partial last
//! bin, the remedy in every format), and the layout in headless Chromium
//! at 1280 and 390 px (no horizontal overflow, charts drawn and not empty).
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

use crate::common::{self, run, say, temp_dir};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports")
}

/// Every committed report, by file stem.
fn reports() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().to_string(), p))
        .collect();
    found.sort();
    found
}

/// `gateprobe report SAVED --FLAG FILE` for each of `flags`; the files' texts.
fn render(saved: &Path, flags: &[(&str, &str)]) -> Vec<String> {
    let dir = temp_dir();
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("gateprobe"));
    command.arg("report").arg(saved).arg("--quiet");
    let mut paths = Vec::new();
    for (flag, name) in flags {
        let path = dir.path().join(name);
        command.arg(flag).arg(&path);
        paths.push(path);
    }
    let out = command.output().unwrap();
    paths
        .iter()
        .map(|path| {
            std::fs::read_to_string(path).unwrap_or_else(|_| {
                panic!(
                    "{}: {}",
                    saved.display(),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        })
        .collect()
}

/// The figures of a page: (title, svg, caption, data rows, data header).
struct Drawn {
    title: String,
    svg: String,
    caption: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn figures(html: &str) -> Vec<Drawn> {
    let figure = Regex::new(r"(?s)<figure><h4>(.*?)</h4>(.*?)</figure>").unwrap();
    let cell = Regex::new(r"<t[dh][^>]*>(.*?)</t[dh]>").unwrap();
    figure
        .captures_iter(html)
        .map(|found| {
            let body = &found[2];
            let svg = body.split("<figcaption>").next().unwrap().to_string();
            let caption = body
                .split("<figcaption>")
                .nth(1)
                .and_then(|c| c.split("<details>").next())
                .unwrap_or("")
                .to_string();
            let table = body.split("<table>").nth(1).unwrap_or("");
            let mut rows: Vec<Vec<String>> = table
                .split("</tr>")
                .filter(|row| row.contains("<t"))
                .map(|row| cell.captures_iter(row).map(|c| c[1].to_string()).collect())
                .collect();
            let header = if rows.is_empty() {
                Vec::new()
            } else {
                rows.remove(0)
            };
            Drawn {
                title: found[1].to_string(),
                svg,
                caption,
                header,
                rows,
            }
        })
        .collect()
}

#[test]
fn every_report_page_has_its_structure() {
    let swatch =
        Regex::new(r#"<span class="swatch" style="background:(#[0-9A-Fa-f]{6})"></span>([^<]+)<"#)
            .unwrap();
    let reports = reports();
    assert!(reports.len() >= 9, "{} fixtures", reports.len());
    for (name, saved) in &reports {
        let html = &render(saved, &[("--html", "r.html")])[0];
        let report: serde_json::Value = common::read_json(saved);
        // No network: nothing is fetched from anywhere.
        for fetch in ["<script", "<link", "src=\"http", "url(http", "@import"] {
            assert!(!html.contains(fetch), "{name}: {fetch}");
        }
        // One colour per class in every table; distinct within a report.
        let mut colours: Vec<(String, String)> = Vec::new();
        for found in swatch.captures_iter(html) {
            let (colour, class) = (found[1].to_string(), found[2].to_string());
            match colours.iter().find(|(known, _)| *known == class) {
                Some((_, had)) => assert_eq!(had, &colour, "{name}: class {class} changes colour"),
                None => colours.push((class, colour)),
            }
        }
        let steps: Vec<&serde_json::Value> = match report["steps"].as_array() {
            Some(steps) if !steps.is_empty() => steps.iter().map(|s| &s["report"]).collect(),
            _ => vec![&report],
        };
        for one in &steps {
            let classes: Vec<&String> = one["classes"].as_object().unwrap().keys().collect();
            let mut used: Vec<&String> = classes
                .iter()
                .filter_map(|c| {
                    colours
                        .iter()
                        .find(|(k, _)| k == *c)
                        .map(|(_, colour)| colour)
                })
                .collect();
            let shown = used.len();
            used.sort();
            used.dedup();
            assert_eq!(
                used.len(),
                shown,
                "{name}: two classes of one report share a colour"
            );
        }
        let drawn = figures(html);
        assert!(!drawn.is_empty(), "{name}: no chart");
        let seconds = report["run"]["duration_s"].as_f64().unwrap();
        for figure in &drawn {
            let what = format!("{name}: '{}'", figure.title);
            assert!(
                figure.svg.contains("role=\"img\" aria-label="),
                "{what}: no accessible name"
            );
            assert!(figure.caption.len() > 20, "{what}: no text alternative");
            assert!(!figure.rows.is_empty(), "{what}: no data table");
            assert!(
                figure.svg.contains("<polyline")
                    || figure.svg.contains("<circle")
                    || figure.svg.contains("<polygon"),
                "{what}: nothing drawn"
            );
            let over_time = figure.header.first().is_some_and(|x| x == "seconds");
            // The queue's wait is a per-second median: a short series.
            let per_second = figure.title.contains("(median per second)");
            if over_time && !per_second && seconds >= 2.5 {
                assert!(
                    figure.rows.len() >= 30,
                    "{what}: {} points",
                    figure.rows.len()
                );
            }
            if figure.header.first().is_some_and(|x| x == "percentile") {
                assert!(
                    figure.rows.len() >= 30,
                    "{what}: {} points",
                    figure.rows.len()
                );
            }
        }
        // A partial last bin is drawn to its width: at a steady rate the
        // last point of the sent rate is no drop.
        if name.starts_with("load-") {
            let traffic = drawn
                .iter()
                .find(|f| f.title.starts_with("Requests per second"))
                .unwrap();
            let column = traffic.header.iter().position(|h| h == "sent").unwrap();
            let mut rates: Vec<f64> = traffic
                .rows
                .iter()
                .filter_map(|row| row.get(column)?.parse().ok())
                .collect();
            let last = *rates.last().unwrap();
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            say(&format!(
                "{name}: sent rate median {median}, last point {last}"
            ));
            assert!(
                last >= 0.85 * median,
                "{name}: the last bin reads as a drop: {last} against {median}"
            );
        }
    }
}

/// The remedy an undecided report names, the same in the text, Markdown,
/// HTML, JUnit and JSON reports.
#[test]
fn inconclusive_reports_name_the_remedy_in_every_format() {
    let saved = fixtures().join("canary-undecided.json");
    let report = common::read_json(&saved);
    assert_eq!(report["verdict"], "inconclusive", "{}", report["reason"]);
    let texts = render(
        &saved,
        &[
            ("--json", "r.json"),
            ("--markdown", "r.md"),
            ("--html", "r.html"),
            ("--junit", "r.xml"),
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&texts[0]).unwrap();
    let undecided: Vec<&serde_json::Value> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "inconclusive")
        .collect();
    assert!(!undecided.is_empty());
    let text = Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
        .arg("report")
        .arg(&saved)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    for check in undecided {
        let remedy = check["remedy"]
            .as_str()
            .unwrap_or_else(|| panic!("no remedy: {check}"));
        assert!(
            remedy.contains("--max-requests")
                || remedy.contains("--no-keepalive")
                || remedy.contains("run"),
            "{remedy}"
        );
        say(&format!("remedy: {remedy}"));
        let wanted = format!("to decide: {remedy}");
        for (format, said) in [
            ("text", &text),
            ("markdown", &texts[1]),
            ("html", &texts[2]),
            ("junit", &texts[3]),
        ] {
            assert!(
                unescape(said).contains(&wanted),
                "{format} lacks '{wanted}':\n{said}"
            );
        }
    }
}

/// Markup's escapes undone (HTML's and XML's).
fn unescape(text: &str) -> String {
    text.replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Chromium, from Debian (installed when missing, as root).
fn chromium() -> Result<PathBuf, String> {
    common::debian_binary(
        "chromium",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    )
}

/// Measures a page in headless Chromium at `width`: how far it overflows
/// the window, and each chart's drawn width and element count.
fn measure(browser: &Path, html: &str, width: u32, dir: &Path) -> serde_json::Value {
    const PROBE: &str = "<script>(function(){var d=document.documentElement;\
var charts=[].map.call(document.querySelectorAll('svg.chart'),function(s){var r=s.getBoundingClientRect();\
return {w:Math.round(r.width),h:Math.round(r.height),marks:s.querySelectorAll('polyline,polygon,circle,path').length};});\
document.title='MEASURED'+JSON.stringify({overflow:d.scrollWidth-window.innerWidth,window:window.innerWidth,charts:charts});})();</script>";
    let page = dir.join(format!("page-{width}.html"));
    std::fs::write(&page, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={width},1000"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let found = Regex::new(r"<title>MEASURED(.*?)</title>").unwrap();
    let json = found
        .captures(&dom)
        .unwrap_or_else(|| panic!("no measurement: {}", String::from_utf8_lossy(&out.stderr)))[1]
        .replace("&quot;", "\"");
    serde_json::from_str(&json).unwrap()
}

fn screenshot(browser: &Path, html: &Path, width: u32, to: &Path) {
    let _ = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={width},2600"))
        .arg(format!("--screenshot={}", to.display()))
        .arg(format!("file://{}", html.display()))
        .output();
}

#[test]
fn report_pages_fit_1280_and_390_pixels_in_chromium() {
    let browser = match chromium() {
        Ok(path) => path,
        Err(why) => {
            say(&format!(
                "SKIPPED report_pages_fit_1280_and_390_pixels_in_chromium: {why}"
            ));
            return;
        }
    };
    let dir = temp_dir();
    for (name, saved) in reports() {
        let html = &render(&saved, &[("--html", "r.html")])[0];
        for width in [1280, 390] {
            let measured = measure(&browser, html, width, dir.path());
            let what = format!("{name} at {width} px: {measured}");
            assert!(
                measured["overflow"].as_i64().unwrap() <= 0,
                "overflows: {what}"
            );
            let charts = measured["charts"].as_array().unwrap();
            assert!(!charts.is_empty(), "no chart: {what}");
            for chart in charts {
                assert!(
                    chart["w"].as_i64().unwrap() >= 300,
                    "a chart too narrow to read: {what}"
                );
                assert!(
                    chart["marks"].as_i64().unwrap() >= 3,
                    "an empty chart: {what}"
                );
            }
        }
        // The demo's page is shot at both widths (and, to update
        // docs/screenshots/, a throttle probe's too).
        let shown = ["demo", "throttle-queue"];
        if name == "demo"
            || (std::env::var_os("UPDATE_SCREENSHOT").is_some() && shown.contains(&name.as_str()))
        {
            let page = dir.path().join(format!("{name}.html"));
            std::fs::write(&page, html).unwrap();
            for width in [1280, 390] {
                let shot = dir.path().join(format!("{name}-{width}.png"));
                screenshot(&browser, &page, width, &shot);
                let bytes = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
                assert!(
                    bytes > 40_000,
                    "{name} at {width} px: the screenshot looks blank ({bytes} bytes)"
                );
                if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
                    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
                    std::fs::create_dir_all(&docs).unwrap();
                    std::fs::copy(&shot, docs.join(format!("{name}-{width}.png"))).unwrap();
                }
            }
        }
    }
}

/// Records the committed reports against the simulator (minutes; run by
/// hand when the report's contents change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute and a half: records tests/fixtures/reports/"]
async fn record_report_pages() {
    let out = fixtures();
    std::fs::create_dir_all(&out).unwrap();
    // The demo's gateway (its canary on PROD, its token bucket on GET
    // /PROD/throttled) and the throttle tests' limiters of the other kinds.
    let start = |name: &str, text: &str| {
        let config = gateprobe::sim::config::parse(name, text).unwrap();
        gateprobe::sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(3))
    };
    let demo = start("default", gateprobe::sim::config::DEFAULT_CONFIG)
        .await
        .unwrap();
    let kinds = start("kinds", crate::throttle::KINDS).await.unwrap();
    let base = format!("http://{}", demo.address);
    let limiters = format!("http://{}", kinds.address);
    let json = |name: &str| out.join(format!("{name}.json")).display().to_string();
    let hello = format!("{base}/PROD/hello");
    let classes = [
        "--classify",
        "canary=body:empty",
        "--classify",
        "stable=json:/version",
    ];
    let mut canary = vec![
        "canary",
        &hello,
        "--rate",
        "1000",
        "--duration",
        "3s",
        "--expect",
        "canary=10%",
    ];
    canary.extend(classes);
    let path = json("canary-3s");
    let mut args = canary.clone();
    args.extend(["--quiet", "--json", &path]);
    run(&args).await;
    let path = json("canary-undecided");
    let mut args = vec![
        "canary",
        &hello,
        "--rate",
        "500",
        "--max-requests",
        "200",
        "--expect",
        "canary=10%",
    ];
    args.extend(classes);
    args.extend(["--quiet", "--json", &path]);
    run(&args).await;
    let path = json("load-60s");
    run(&[
        "load",
        &hello,
        "--rate",
        "200",
        "--duration",
        "60s",
        "--quiet",
        "--json",
        &path,
    ])
    .await;
    let limiter = |stage: &str| format!("{limiters}/{stage}/x");
    for (url, kind, extra) in [
        (format!("{base}/PROD/throttled"), "token_bucket", vec![]),
        (limiter("QUEUE"), "queue", vec![]),
        (limiter("FIXED"), "fixed_window", vec![]),
        (limiter("SLIDE"), "sliding_window", vec![]),
        (
            limiter("LAMBDA"),
            "concurrency",
            vec!["--classify", "throttled=status:500"],
        ),
    ] {
        let path = json(&format!("throttle-{kind}"));
        let mut args = vec!["throttle", url.as_str()];
        args.extend(extra);
        args.extend(["--quiet", "--json", &path]);
        run(&args).await;
    }
    let dir = temp_dir();
    let mut shards = Vec::new();
    for index in 0..4 {
        let path = dir
            .path()
            .join(format!("shard-{index}.json"))
            .display()
            .to_string();
        let shard = format!("{index}/4");
        let mut args = canary.clone();
        args.extend(["--shard", &shard, "--quiet", "--json", &path]);
        run(&args).await;
        shards.push(path);
    }
    let path = json("merged-4");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["--quiet", "--json", &path]);
    run(&args).await;
    // The demo's scenario report.
    let folder = temp_dir();
    let shown = folder.path().display().to_string();
    assert_eq!(run(&["demo", "--out", &shown]).await, 0);
    std::fs::copy(folder.path().join("demo.json"), out.join("demo.json")).unwrap();
}
