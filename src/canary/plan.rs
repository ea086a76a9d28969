//! What `canary` decided before sending: the variants, the split's tests,
//! the health spec and the bounds (built from the flags by `cli::canary`).

use crate::canary::drops::DropDesign;
use crate::canary::health::{HealthSpec, LatencyMargin};
use crate::canary::latency::LatencyDesign;
use crate::canary::split::{ShareTest, Split};
use crate::plan::LoadPlan;

/// A class the split is about.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub class: u16,
    pub share: f64,
    /// Index of its share test in the split, if tested.
    pub test: Option<usize>,
    /// Where the expected share was declared (`--aws-stage`), if not on the command line.
    pub source: Option<String>,
}

/// Everything `canary` decided before sending.
pub struct CanaryPlan {
    pub load: LoadPlan,
    pub variants: Vec<Variant>,
    pub baseline: Option<usize>,
    pub split: Split,
    pub alpha: f64,
    pub power: f64,
    /// Most responses outside every variant before the checks are inconclusive.
    pub max_unclassified: f64,
    pub health: Option<HealthSpec>,
    /// Responses the checks plan for at the start (re-planned during the run).
    pub planned_requests: u64,
    /// The run's hard bound on requests.
    pub max_requests: u64,
    /// The fixed-horizon (TOST) size at the same α and power, for comparison.
    pub tost_size: u64,
    /// Mean classified responses to a split decision at the expected shares
    /// (seeded simulation of this procedure).
    pub expected_sequential: f64,
    /// The latency check's design (with a health check), planned to the
    /// run's budget.
    pub latency: Option<LatencyDesign>,
    /// The width of its bins of due time (µs).
    pub latency_bin_us: u64,
    /// Per compared variant, the drop test (with a health check).
    pub drops: Vec<(usize, DropDesign)>,
    /// The offered rate, when it is fixed (open model).
    pub rate_per_s: Option<f64>,
    pub notes: Vec<String>,
}

impl CanaryPlan {
    /// The drop test of `variant`, if it has one.
    pub fn drop_design(&self, variant: usize) -> Option<&DropDesign> {
        self.drops
            .iter()
            .find(|(index, _)| *index == variant)
            .map(|(_, design)| design)
    }

    /// The error check's plan and what it decides within the run's
    /// budget at the assumed baseline rate.
    fn errors_plan(&self, spec: &HealthSpec, baseline: usize) -> String {
        let points = |value: f64| format!("{:+.2}pp", value * 100.0);
        let budget = self.split.horizon();
        let smallest = self
            .variants
            .iter()
            .enumerate()
            .filter(|(index, variant)| *index != baseline && variant.share > 0.0)
            .map(|(_, variant)| variant.share)
            .fold(1.0, f64::min);
        let shares = (smallest, self.variants[baseline].share);
        let zone = match spec.error_zone(spec.assumed_error_rate, shares, budget) {
            (Some(pass), Some(fail)) => format!(
                "within {budget} requests it passes increases up to {} and fails from {} with power {}",
                points(pass),
                points(fail),
                self.power
            ),
            _ => format!("{budget} requests decide no increase with power {}", self.power),
        };
        format!(
            "errors vs {}: +{} at most · {} confidence sequences (valid at any stop) · {zone}, at a baseline error rate of {} (assumed until seen) · plans {} requests to pass equal rates and fail twice the margin (re-planned from the rate seen)",
            self.variants[baseline].name,
            crate::units::trim_float(spec.max_error_increase * 100.0) + "pp",
            level(1.0 - self.alpha),
            percent(spec.assumed_error_rate),
            self.error_requests(spec, spec.assumed_error_rate),
        )
    }

    /// The drop tests' plan, for people.
    fn drops_plan(&self, baseline: usize) -> Vec<String> {
        self.drops
            .iter()
            .map(|(variant, design)| {
                let name = &self.variants[*variant].name;
                let detects = design.detectable.map_or(
                    "cannot detect even a variant dropping everything".to_string(),
                    |rate| format!("detects {name} dropping {} more of its requests than {} with power {}", percent(rate), self.variants[baseline].name, design.power),
                );
                format!(
                    "drops {name} vs {}: requests no variant answers are attributed by the deficit they leave in {name}'s share of the answered ({} expected) · exact one-sided group-sequential bound, α {} · {detects} within {} of their responses · assumes {} is the gateway's real split",
                    self.variants[baseline].name,
                    percent(design.share),
                    design.alpha,
                    design.budget(),
                    percent(self.variants[*variant].share),
                )
            })
            .collect()
    }

    /// The latency check's plan and zone, for people, at the assumed spread.
    fn latency_plan(&self, spec: &HealthSpec, baseline: usize, design: &LatencyDesign) -> String {
        let margin = spec.max_latency_increase;
        let smallest = self
            .variants
            .iter()
            .enumerate()
            .filter(|(index, variant)| *index != baseline && variant.share > 0.0)
            .map(|(_, variant)| variant.share)
            .fold(1.0, f64::min);
        let base_share = self.variants[baseline].share.max(1e-3);
        let (spread, spread_text) = match margin {
            LatencyMargin::Relative(_) => (
                crate::canary::latency::ASSUMED_LOG_SPREAD,
                format!(
                    "a log-latency spread of {}",
                    crate::canary::latency::ASSUMED_LOG_SPREAD
                ),
            ),
            LatencyMargin::Absolute { ms } => (
                2.0 * ms,
                format!(
                    "a latency spread of {}ms (twice the margin)",
                    crate::units::trim_float(2.0 * ms)
                ),
            ),
        };
        let unit = spread * (1.0 / smallest.max(1e-3) + 1.0 / base_share).sqrt();
        let zone = design.zone(unit);
        let limit = margin.on_block_scale();
        format!(
            "latency vs {}: {} at most · compared within {} ms bins of due time, batch-means variance · group-sequential, Hwang–Shih–DeCani(−4) over {} looks, α {} per side · passes increases up to {} and fails increases from {} with power {} within {} responses, for {spread_text} (assumed until measured; the report states the zone measured)",
            self.variants[baseline].name,
            margin.describe(),
            crate::units::trim_float(self.latency_bin_us as f64 / 1000.0),
            design.looks.len(),
            self.alpha,
            margin.show(limit - zone),
            margin.show(limit + zone),
            self.power,
            design.budget(),
        )
    }
}

/// The share test's plan, for people: the design, its size and what it
/// costs against the fixed-sample test for the same decisions.
fn share_plan(name: &str, test: &ShareTest) -> String {
    let e = &test.expectation;
    let design = test.design();
    let (low, high) = e.band();
    let mut line = format!(
        "share {name}: expect {} ± {}pp (band {}–{}) · group-sequential TOST on exact binomial bounds, Hwang–Shih–DeCani(−4) α-spending over {} looks, α {} per side · ends by {} responses",
        percent(e.share),
        crate::units::trim_float((e.tolerance * 1e6).round() / 1e4),
        percent(low),
        percent(high),
        design.looks.len(),
        crate::units::trim_float(test.alpha()),
        design.budget(),
    );
    if design.fixed > 0 {
        line.push_str(&format!(
            " ({:.2}× the {} a fixed-sample test needs for the same zone); at {} it stops after ≈ {:.0} on average ({:.2}×)",
            design.budget() as f64 / design.fixed as f64,
            design.fixed,
            percent(e.share),
            design.at_share.expected_n,
            design.at_share.expected_n / design.fixed as f64
        ));
    }
    line
}

/// What the share test can decide within its budget: its zone.
fn share_zone(name: &str, test: &ShareTest) -> String {
    let design = test.design();
    let power = test.power();
    let points = |distance: f64| format!("{:.2}pp", distance * 100.0);
    match (design.zone.pass, design.zone.fail) {
        (Some(pass), Some(fail)) => format!(
            "share {name}: decides shares at least {} inside or outside the band's edges with power {power} within {} responses (pass ≥ {} inside, fail ≥ {} outside); inconclusive only within that zone of an edge, or if the run ends first",
            points(pass.max(fail)),
            design.budget(),
            points(pass),
            points(fail),
        ),
        _ => {
            let needed = super::design::budget_for_zone(
                &test.expectation,
                test.alpha(),
                power,
                test.expectation.tolerance * 0.75,
            );
            format!(
                "share {name}: {} responses are too few to decide with power {power}: a share exactly as expected passes with probability {:.2}; about {needed} decide shares a quarter of the tolerance from an edge (--max-requests {needed})",
                design.budget(),
                design.at_share.pass
            )
        }
    }
}

/// Connections opened before the clock starts, so that a split that sticks
/// to connections shows (at 10% per connection, P(none of 64 is the
/// canary's) = 0.9^64 = 0.1%).
pub const WARM_CONNECTIONS: usize = 64;

pub use crate::units::percent;

/// A confidence level for people: 98%, 99.8%, 99.93%.
pub fn level(confidence: f64) -> String {
    percent(confidence)
}

/// Builds the plan from the flags: one clear message per mistake.
/// The finest band a share is checked to (0.1pp): below it the fixed-horizon
/// size passes ten million responses, beyond any run this tool bounds.
pub const MIN_TOLERANCE: f64 = 0.001;

impl CanaryPlan {
    /// Responses (classified and not) the error check plans for at a
    /// baseline error rate: for the smallest compared variant.
    pub fn error_requests(&self, spec: &HealthSpec, rate: f64) -> u64 {
        let Some(baseline) = self.baseline else {
            return 0;
        };
        let baseline_share = self.variants[baseline].share;
        self.variants
            .iter()
            .enumerate()
            .filter(|(index, variant)| *index != baseline && variant.share > 0.0)
            .map(|(_, variant)| spec.error_plan(rate, variant.share, baseline_share))
            .max()
            .unwrap_or(0)
    }

    /// What the run will do and why, printed before it starts.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for variant in &self.variants {
            let Some(test) = variant.test else { continue };
            let test = &self.split.tests[test];
            let mut line = share_plan(&variant.name, test);
            if let Some(source) = &variant.source {
                line.push_str(&format!(" · expected share declared by {source}"));
            }
            if let Some(after) = test.dead_after() {
                line.push_str(&format!(" · a dead {} fails after {after}", variant.name));
            }
            lines.push(line);
            lines.push(share_zone(&variant.name, test));
        }
        if let (Some(spec), Some(baseline)) = (&self.health, self.baseline) {
            lines.push(self.errors_plan(spec, baseline));
            if let Some(design) = &self.latency {
                lines.push(self.latency_plan(spec, baseline, design));
            }
            lines.extend(self.drops_plan(baseline));
        } else {
            lines.push(
                "health: not checked (no baseline to compare with, or --no-health)".to_string(),
            );
        }
        lines.push(format!(
            "α {} · power {} · plans {} requests, never more than {}; stops as soon as every check is decided · responses no variant claims count against the canary (at most {})",
            self.alpha,
            self.power,
            self.planned_requests,
            self.max_requests,
            percent(self.max_unclassified)
        ));
        lines.extend(self.notes.iter().map(|note| format!("note: {note}")));
        lines
    }
}
