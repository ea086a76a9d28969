//! What would decide an undecided check: each format prints it after
//! "to decide:", the same words everywhere. An analysis that knows (the
//! canary share's estimate of the responses needed, the split's
//! `--no-keepalive`) sets [`Check::remedy`]; otherwise it follows from
//! what the check planned and used and how the run ended.
use super::{Check, Report, Verdict};

/// The remedy of one check of `report`, if it is undecided.
pub fn remedy(check: &Check, report: &Report) -> Option<String> {
    if !matches!(check.verdict, Verdict::Inconclusive | Verdict::Error) {
        return None;
    }
    if let Some(known) = &check.remedy {
        return Some(known.clone());
    }
    if report.run.ended == "interrupted" {
        return Some(format!(
            "the whole run: it was interrupted after {:.1} s, before its plan's end",
            report.run.duration_s
        ));
    }
    Some(match (check.used, check.planned) {
        (Some(used), Some(planned)) if used >= planned => format!(
            "more responses than this plan's {planned}: a larger --max-requests"
        ),
        (Some(used), Some(planned)) => format!(
            "a longer run: it ended after {used} of the {planned} responses its plan allows (a longer --duration or --max-duration)"
        ),
        _ => "a longer run or a larger --max-requests".to_string(),
    })
}

/// The run's remedy: its deciding check's, when the run is undecided (its
/// own checks first, then its steps').
pub fn run_remedy(report: &Report) -> Option<String> {
    if report.verdict != Verdict::Inconclusive {
        return None;
    }
    let (owner, deciding) = std::iter::once(report)
        .chain(report.steps.iter().map(|step| &step.report))
        .flat_map(|owner| owner.checks.iter().map(move |check| (owner, check)))
        .find(|(_, check)| matches!(check.verdict, Verdict::Inconclusive | Verdict::Error))?;
    remedy(deciding, owner).map(|remedy| format!("{}: {remedy}", deciding.name))
}

impl Report {
    /// Writes every undecided check's remedy into the report (and its
    /// steps'), so that the JSON carries what the other formats print.
    pub fn fill_remedies(&mut self) {
        let remedies: Vec<Option<String>> = self
            .checks
            .iter()
            .map(|check| remedy(check, self))
            .collect();
        for (check, remedy) in self.checks.iter_mut().zip(remedies) {
            check.remedy = remedy;
        }
        for step in &mut self.steps {
            step.report.fill_remedies();
        }
    }
}
