//! An analysis added from outside the tree: docs/development.md's worked
//! example ("Adding an analysis"), compiled and run. `LateSends` is the
//! whole analysis; the list is `ALL` plus it; every driver (a live run's
//! checks, `--recompute`, `merge`, the text and Markdown reports) takes it
//! from the list and names it nowhere.
use clap::Parser;
use gateprobe::check::{Check, Verdict};
use gateprobe::engine::RunInfo;
use gateprobe::plan::LoadPlan;
use gateprobe::record::Recorder;
use gateprobe::report::analysis::{self, Analysis, Live, Observed, Planned, Rechecked, ALL};
use gateprobe::report::merge::{check_shards, merge_one, Input};
use gateprobe::report::Report;
use serde_json::json;

// docs:begin late-sends
/// Whether the generator kept its schedule: an open-model run that sent
/// more than 1% of its requests over 10 ms late did not offer the load it
/// planned, so its verdict cannot be a pass.
struct LateSends;

const MAX_LATE_SHARE: f64 = 0.01;

/// The one rule, live and on saved or merged data alike.
fn late_check(recorder: &Recorder) -> Check {
    let share = recorder.late as f64 / recorder.sent.max(1) as f64;
    let verdict = if share <= MAX_LATE_SHARE {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    };
    Check::new(
        "late sends",
        "generator.late",
        verdict,
        json!({ "late": recorder.late, "sent": recorder.sent }),
        json!({ "max_share": MAX_LATE_SHARE }),
        format!(
            "{} of {} requests left over 10 ms behind schedule{}",
            recorder.late,
            recorder.sent,
            if verdict == Verdict::Pass {
                ""
            } else {
                ": the generator was short of CPU; give it more, or lower the rate"
            }
        ),
    )
}

impl Analysis for LateSends {
    fn name(&self) -> &'static str {
        "late sends"
    }

    fn owns(&self, kind: &str) -> bool {
        kind == "generator.late"
    }

    fn decide(&self, live: &mut Live<'_, '_>, report: &mut Report) {
        report.add_checks(vec![late_check(live.recorder)]);
    }

    fn recheck(&self, _: &Report, recorder: &Recorder, _: &RunInfo, _: &Check) -> Rechecked {
        Ok(Ok(late_check(recorder)))
    }

    fn text(&self, report: &Report, out: &mut String) {
        if let Some(check) = report.checks.iter().find(|c| self.owns(&c.kind)) {
            out.push_str(&format!("  schedule  {}\n", check.reason));
        }
    }
}

/// The analyses in this build, and the one added.
const LIST: &[&dyn Analysis] = &[ALL[0], ALL[1], ALL[2], &LateSends];
// docs:end late-sends

fn saved_load_report() -> Report {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/merged-load-report.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    gateprobe::report::read_saved(path, &text).unwrap()
}

/// A load plan, as `gateprobe load` makes it (nothing is sent).
fn load_plan() -> LoadPlan {
    let cli = gateprobe::cli::Cli::try_parse_from([
        "gateprobe",
        "load",
        "http://127.0.0.1:9/",
        "--rate",
        "100",
        "--duration",
        "1s",
    ])
    .unwrap();
    match cli.command {
        gateprobe::cli::Command::Load(args) => gateprobe::cli::load::load_plan(&args).unwrap(),
        _ => unreachable!(),
    }
}

#[test]
fn an_analysis_in_the_list_runs_in_every_driver() {
    let saved = saved_load_report();
    let (mut recorder, info) = gateprobe::report::recorded(&saved).unwrap();
    let plan = load_plan();
    fn live<'a>(plan: &'a LoadPlan, recorder: &'a Recorder, info: &'a RunInfo) -> Live<'a, 'a> {
        Live {
            planned: Planned::Load {
                plan,
                thresholds: &[],
            },
            observed: Observed::Nothing,
            recorder,
            info,
        }
    }

    // A live run's checks: the added analysis decides, and its check counts.
    let on_time = analysis::analyse(LIST, live(&plan, &recorder, &info));
    let check = on_time.checks.last().expect("the added check");
    assert_eq!(
        (check.kind.as_str(), check.verdict),
        ("generator.late", Verdict::Pass)
    );
    assert_eq!(on_time.verdict, Verdict::Pass, "{}", on_time.reason);
    recorder.late = recorder.sent / 10;
    let behind = analysis::analyse(LIST, live(&plan, &recorder, &info));
    assert_eq!(behind.verdict, Verdict::Inconclusive, "{}", behind.reason);
    assert!(
        behind.reason.starts_with("late sends: "),
        "{}",
        behind.reason
    );
    // Without it in the list, nothing knows of it.
    assert!(analysis::analyse(ALL, live(&plan, &recorder, &info))
        .checks
        .iter()
        .all(|c| c.kind != "generator.late"));

    // `report --recompute`: rebuilt from the saved data, equal to the saved check.
    let saved_again: Report =
        serde_json::from_str(&serde_json::to_string(&behind).unwrap()).unwrap();
    let found = gateprobe::report::recompute(LIST, &saved_again).unwrap();
    assert_eq!(found.differs, None);
    assert_eq!(found.same, 1, "{found:?}");
    // A build without it keeps the check as saved, and says why.
    let kept = gateprobe::report::recompute(ALL, &saved_again).unwrap();
    assert_eq!((kept.same, kept.kept.values().sum::<usize>()), (0, 1));

    // `gateprobe merge`: rechecked on the merged data by the same rule.
    let inputs = [Input {
        shown: "behind.json",
        report: &saved_again,
    }];
    let coverage = check_shards(&inputs, false).unwrap();
    let merged = merge_one(LIST, &inputs, &coverage).unwrap();
    let again = merged
        .checks
        .iter()
        .find(|c| c.kind == "generator.late")
        .unwrap();
    assert_eq!(again.verdict, Verdict::Inconclusive);
    assert_eq!(merged.verdict, Verdict::Inconclusive, "{}", merged.reason);
    // A build without it refuses to merge what it cannot recompute.
    let refused = merge_one(ALL, &inputs, &coverage).unwrap_err();
    assert!(
        refused.0.contains("no analysis of this build makes"),
        "{}",
        refused.0
    );

    // The text report: its own line, from the list.
    let text = gateprobe::output::text::render_with(LIST, &behind);
    assert!(text.contains("  schedule  "), "{text}");
    assert!(!gateprobe::output::text::render(&behind).contains("  schedule  "));
}

/// docs/development.md shows this file's analysis as it is here.
#[test]
fn the_development_docs_show_this_analysis() {
    let root = env!("CARGO_MANIFEST_DIR");
    let source = std::fs::read_to_string(format!("{root}/tests/it/analysis.rs")).unwrap();
    let begin = "// docs:begin late-sends\n";
    let code = &source[source.find(begin).unwrap() + begin.len()..];
    let code = &code[..code.find("// docs:end late-sends").unwrap()];
    let docs = std::fs::read_to_string(format!("{root}/docs/development.md")).unwrap();
    let section = &docs[docs.find("## Adding an analysis").expect("the section")..];
    let block = &section[section.find("```rust\n").expect("its code block") + 8..];
    let block = &block[..block.find("```").unwrap()];
    assert_eq!(
        block, code,
        "docs/development.md's 'Adding an analysis' block differs from tests/it/analysis.rs"
    );
}
