//! Saved reports are input: `gateprobe report` on a mangled one (truncated,
//! wrong types, huge or negative numbers, missing sections) says what is
//! wrong and exits 2, or renders what is there; it never panics.
use std::path::Path;

use gateprobe::report::Report;
use serde_json::Value;

/// Every way a value can be wrong, applied to every field (and to the first
/// element of every list).
fn replacements() -> Vec<Value> {
    vec![
        Value::from("x"),
        Value::from(-1),
        Value::from(1e308),
        Value::from(u64::MAX),
        Value::Null,
        Value::Array(vec![]),
        Value::Object(Default::default()),
    ]
}

/// JSON pointers to every object member and every list's first element.
fn pointers(value: &Value, at: String, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                into.push(path.clone());
                pointers(child, path, into);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let path = format!("{at}/0");
            into.push(path.clone());
            pointers(&items[0], path, into);
        }
        _ => {}
    }
}

/// Reads, checks and renders a saved report in every format, as
/// `gateprobe report` does: Ok, or an input error (exit 2). A panic fails.
fn rerender(name: &str, text: &str) -> Result<(), String> {
    let outcome = std::panic::catch_unwind(|| -> Result<(), String> {
        let report = match gateprobe::report::read_saved(name, text) {
            Ok(report) => report,
            Err(err) => {
                let err = anyhow::Error::new(err);
                assert_eq!(gateprobe::exit_code_for_error(&err), 2, "{err:#}");
                return Err(format!("{err:#}"));
            }
        };
        for format in gateprobe::output::FORMATS {
            format
                .render(&report)
                .map_err(|err| format!("{}: {err:#}", format.flag()))?;
        }
        gateprobe::output::text::render(&report);
        Ok(())
    });
    match outcome {
        Ok(result) => result,
        Err(_) => panic!("{name}: rendering panicked"),
    }
}

/// Every saved report kind: a `run` scenario, and as their own reports its
/// canary and load steps, a throttle probe, and merged canary and load
/// shards. (name, report).
fn every_kind() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let read = |file: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap()
    };
    let scenario = read("scenario-report.json");
    let step = |index: usize| scenario["steps"][index]["report"].clone();
    let kinds = vec![
        ("run (scenario-report.json)".to_string(), scenario.clone()),
        ("canary (its step 0)".to_string(), step(0)),
        ("load (its step 2)".to_string(), step(2)),
        (
            "throttle (throttle-report.json)".to_string(),
            read("throttle-report.json"),
        ),
        (
            "merged canary".to_string(),
            read("merged-canary-report.json"),
        ),
        ("merged load".to_string(), read("merged-load-report.json")),
    ];
    for (name, report) in &kinds {
        let command = report["command"].as_str().unwrap();
        let merged = report["shard"]["merged"]
            .as_array()
            .is_some_and(|m| m.len() > 1);
        assert!(
            name.starts_with(command) || (name.starts_with("merged") && merged),
            "{name}: a {command} report"
        );
    }
    kinds
}

/// Numeric fields whose value is the check's own (an observed difference,
/// a band, a lower bound below zero) and may be any number.
const FREE: &str = r"^(/steps/\d+/report)?(/checks/\d+/(observed|expected)(/.*)?|/checks/\d+/interval/low|.*/latency_blocks/\d+/\d+/sum_ln_ms)$";

/// Fields a count or a sum ties to another: one more is inconsistent.
const TIED: &str = r"^(/steps/\d+/report)?(/run/(requests_due|requests_sent|requests_completed|responses|dropped|aborted|duration_s|achieved_rate_per_s)|/classes/[^/]+/(count|share|statuses/\d+|(latency_ms|service_time_ms)/[a-z0-9]+)|/errors/[^/]+|/series/(sent|dropped)/\d+|/series/completed/[^/]+/\d+|/throttle/requests_used|/throttle/series/(offered|admitted|throttled)/\d+|/shard/merged/\d+)$";

/// Leaves holding a number, as (JSON pointer, value).
fn numbers(value: &Value, at: String, into: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                numbers(child, path, into);
            }
        }
        Value::Array(items) if !items.is_empty() => numbers(&items[0], format!("{at}/0"), into),
        Value::Number(_) => into.push((at, value.clone())),
        _ => {}
    }
}

#[test]
fn mangled_reports_are_input_errors_never_panics() {
    let free = regex::Regex::new(FREE).unwrap();
    let tied = regex::Regex::new(TIED).unwrap();
    let (mut rejected, mut rendered, mut inconsistent) = (0, 0, 0);
    let mut shown = std::collections::BTreeSet::new();
    for (file, original) in every_kind() {
        let text = original.to_string();
        let _: Report = serde_json::from_str(&text).expect("the fixture is a report");
        rerender(&file, &text).expect("the fixture renders");
        let saved = gateprobe::report::read_saved(&file, &text).unwrap();
        assert_eq!(
            saved.verdict.exit_code() as u64,
            original["exit_code"].as_u64().unwrap(),
            "{file}: renders with its saved exit code"
        );
        // Truncated anywhere.
        for cut in (0..text.len()).step_by(text.len() / 97 + 1) {
            let Err(why) = rerender(&format!("{file} cut at {cut}"), &text[..cut]) else {
                panic!("{file} cut at byte {cut} was accepted");
            };
            assert!(why.contains(&file), "the message names the input: {why}");
            rejected += 1;
        }
        // Every field removed, or given a value of another type.
        let mut paths = Vec::new();
        pointers(&original, String::new(), &mut paths);
        for path in &paths {
            let mut removed = original.clone();
            let (parent, key) = path.rsplit_once('/').unwrap();
            match removed.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    items.remove(0);
                }
                _ => unreachable!(),
            }
            let mut variants = vec![removed];
            for replacement in replacements() {
                let mut changed = original.clone();
                *changed.pointer_mut(path).unwrap() = replacement;
                variants.push(changed);
            }
            for variant in variants {
                match rerender(&format!("{file} {path}"), &variant.to_string()) {
                    Ok(()) => rendered += 1,
                    Err(_) => rejected += 1,
                }
            }
        }
        // Every number made negative, huge, or one more: a negative or
        // huge one is never what a run could record (but where the value
        // is a check's own), and one more breaks the sum a tied field is in.
        let mut leaves = Vec::new();
        numbers(&original, String::new(), &mut leaves);
        let scenario = file.starts_with("run");
        for (path, value) in leaves {
            if scenario && path.starts_with("/steps/") {
                continue; // each step is a kind of its own above
            }
            let more = match value.as_u64() {
                Some(n) => Value::from(n + 1),
                None => Value::from(value.as_f64().unwrap() * 2.0 + 1.0),
            };
            for (how, mangled) in [
                ("-1", Value::from(-1)),
                ("1e308", Value::from(1e308)),
                ("+1", more),
            ] {
                let mut changed = original.clone();
                *changed.pointer_mut(&path).unwrap() = mangled;
                let outcome = rerender(&file, &changed.to_string());
                let must = if how == "+1" {
                    tied.is_match(&path)
                } else {
                    !free.is_match(&path)
                };
                match outcome {
                    Err(why) => {
                        assert!(
                            why.contains(&file) && why.contains("field '"),
                            "{file} {path} {how}: the message names the input and a field: {why}"
                        );
                        if shown.insert(why.split(": ").nth(1).unwrap_or("").to_string())
                            && shown.len() <= 12
                        {
                            eprintln!("{path} {how}: {why}");
                        }
                        inconsistent += 1;
                    }
                    Ok(()) => {
                        assert!(
                            !must,
                            "{file} {path} {how} was accepted: it cannot agree with the rest"
                        );
                        rendered += 1;
                    }
                }
            }
        }
    }
    eprintln!(
        "mangled reports of 6 kinds: {rejected} unreadable and {inconsistent} inconsistent ones exit 2, {rendered} rendered"
    );
    assert!(rejected > 100 && rendered > 100 && inconsistent > 500);
}

/// `gateprobe report --recompute`: a saved report's fixed-horizon checks
/// (thresholds, throttle gates decided on an estimate, the canary's
/// unclassified share) come out the same from its recorded data — a whole
/// scenario (canary, throttle and threshold steps) and a `throttle` command's
/// report; an edit to any of them (the observed value, or the data it was
/// computed from) is found.
#[test]
fn recompute_reproduces_the_fixed_horizon_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let read = |file: &str| std::fs::read_to_string(root.join(file)).unwrap();
    let recompute = |value: &Value| {
        let report: Report = serde_json::from_value(value.clone()).unwrap();
        gateprobe::report::recompute(gateprobe::report::analysis::ALL, &report).unwrap()
    };
    let scenario: Value = serde_json::from_str(&read("scenario-report.json")).unwrap();
    let found = recompute(&scenario);
    assert!(found.differs.is_none(), "{found:?}");
    // 2 canary steps' unclassified checks, 2 throttle gates, 1 threshold.
    assert_eq!(found.same, 5, "{found:?}");
    let kept: Vec<&str> = found.kept.keys().copied().collect();
    assert!(
        kept.iter().any(|why| why.starts_with("sequential")),
        "{kept:?}"
    );
    let throttle: Value = serde_json::from_str(&read("throttle-report.json")).unwrap();
    let found = recompute(&throttle);
    assert!(found.differs.is_none() && found.same == 2, "{found:?}");

    let step_with = |report: &mut Value, kind: &str| -> usize {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .position(|step| {
                step["report"]["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["kind"] == kind)
            })
            .unwrap_or_else(|| panic!("a step with a {kind} check"))
    };
    type Edit = fn(&mut Value);
    let edits: [(&str, &str, Edit); 5] = [
        ("threshold", "its observed value", |r| {
            let check = r["checks"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|c| c["kind"] == "threshold")
                .unwrap();
            check["observed"] = Value::from(0.123);
        }),
        ("threshold", "the class counts it read", |r| {
            let classes = r["classes"].as_object_mut().unwrap();
            if let Some(class) = classes.values_mut().next() {
                class["count"] = Value::from(class["count"].as_u64().unwrap() * 2 + 1);
            }
        }),
        ("throttle", "the saved estimate", |r| {
            r["throttle"]["rate_per_s"]["ci_low"] = Value::from(1.0);
        }),
        ("throttle", "the expectation", |r| {
            r["throttle"]["expect_burst"] = Value::from(100.0);
        }),
        ("split.unclassified", "the unclassified count", |r| {
            r["canary"]["unclassified"] = Value::from(1_000_000);
        }),
    ];
    for (kind, what, edit) in edits {
        let mut edited = scenario.clone();
        let step = step_with(&mut edited, kind);
        edit(&mut edited["steps"][step]["report"]);
        let found = recompute(&edited);
        let differs = found
            .differs
            .unwrap_or_else(|| panic!("an edit to a {kind} check's {what} is not found"));
        assert!(differs.contains("recomputes to"), "{differs}");
    }
}
