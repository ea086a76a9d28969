//! `--junit`: one test case per check, the check's reason as the failure
//! message, so that a CI test tab lists every gate and why it closed.
//! Written with quick-junit. A report with no checks is one test case: the
//! run's own verdict.
use std::time::Duration;

use anyhow::Result;
use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

use super::Format;
use crate::report::{Report, Verdict};

pub struct Junit;

fn case(name: &str, classname: &str, verdict: Verdict, reason: &str) -> TestCase {
    let status = match verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::Fail => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(reason).set_type("fail");
            status
        }
        Verdict::Inconclusive | Verdict::Error => {
            // Not a pass: the gate could not decide (or measure).
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(reason).set_type(verdict.as_str());
            status
        }
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(classname);
    if verdict == Verdict::Pass {
        case.set_system_out(reason);
    }
    case
}

/// The test suite of one report (a scenario's step, or a whole command).
pub fn suite(report: &Report, name: &str) -> TestSuite {
    let classname = format!("gateprobe.{}", report.command);
    let mut suite = TestSuite::new(name);
    // A saved report is input: a negative, NaN or overflowing time must not panic.
    suite.set_time(Duration::try_from_secs_f64(report.run.wall_s.max(0.0)).unwrap_or_default());
    if let Some(late) = report.run.late_text() {
        suite.add_property(("late", report.run.late.to_string().as_str()));
        suite.set_system_err(late);
    }
    if report.checks.is_empty() {
        suite.add_test_case(case("verdict", &classname, report.verdict, &report.reason));
    }
    for check in &report.checks {
        let reason = match crate::report::remedy(check, report) {
            Some(remedy) => format!("{} — to decide: {remedy}", check.reason),
            None => check.reason.clone(),
        };
        suite.add_test_case(case(&check.name, &classname, check.verdict, &reason));
    }
    suite
}

impl Format for Junit {
    fn flag(&self) -> &'static str {
        "--junit"
    }

    fn help(&self) -> &'static str {
        "Write a JUnit XML report (one test case per check) to FILE"
    }

    fn extension(&self) -> &'static str {
        "xml"
    }

    fn media_type(&self) -> &'static str {
        "application/xml"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>> {
        let mut junit = JunitReport::new("gateprobe");
        if report.steps.is_empty() {
            junit.add_test_suite(suite(report, &format!("gateprobe {}", report.command)));
        } else {
            for step in &report.steps {
                junit.add_test_suite(suite(&step.report, &format!("step {}", step.name)));
            }
        }
        Ok(junit.to_string()?.into_bytes())
    }
}
