//! What the canary verdicts mean, measured: seeded simulations of the exact
//! code `gateprobe canary` runs (the split's confidence sequences through
//! `Split::simulate`; the whole observer — split, health, re-planning,
//! dependence — through `canary::simulate::run`), in virtual time.
//!
//! CI runs a subset (fewer runs, the acceptance's main cases); the full
//! tables, ≥ 10,000 runs per case, print as Markdown with
//!
//!     cargo test --release -- --ignored canary_tables --nocapture
//!
//! Every claim is asserted with a Monte Carlo allowance of three standard
//! errors of the claimed rate over the runs made.
use clap::Parser;
use gateprobe::canary::health::Standing;
use gateprobe::canary::simulate::{self, Truth};
use gateprobe::canary::split::Outcome;
use gateprobe::canary::CanaryPlan;
use gateprobe::cli::canary::canary_plan;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common;

const ALPHA: f64 = 0.01;
const POWER: f64 = 0.95;

fn plan(extra: &[&str]) -> CanaryPlan {
    plan_at("1000", extra)
}

fn plan_at(rate: &str, extra: &[&str]) -> CanaryPlan {
    let mut argv = vec![
        "gateprobe",
        "canary",
        "http://127.0.0.1:9/",
        "--classify",
        "canary=body:empty",
        "--classify",
        "stable=*",
        "--rate",
        rate,
    ];
    argv.extend_from_slice(extra);
    let cli = gateprobe::cli::Cli::parse_from(argv);
    let gateprobe::cli::Command::Canary(args) = cli.command else {
        unreachable!()
    };
    canary_plan(&args).expect("a valid plan")
}

/// Outcome counts over runs, and requests used.
#[derive(Debug, Default, Clone)]
struct Tally {
    runs: u64,
    pass: u64,
    fail: u64,
    requests: Vec<u64>,
}

impl Tally {
    fn rate(&self, count: u64) -> f64 {
        count as f64 / self.runs as f64
    }
    fn pass_rate(&self) -> f64 {
        self.rate(self.pass)
    }
    fn fail_rate(&self) -> f64 {
        self.rate(self.fail)
    }
    fn mean(&self) -> f64 {
        self.requests.iter().sum::<u64>() as f64 / self.runs as f64
    }
    fn quantile(&self, q: f64) -> u64 {
        let mut sorted = self.requests.clone();
        sorted.sort_unstable();
        sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
    }
    fn merge(mut self, other: Tally) -> Tally {
        self.runs += other.runs;
        self.pass += other.pass;
        self.fail += other.fail;
        self.requests.extend(other.requests);
        self
    }
}

/// Runs `one(rng) -> (passed, failed, requests)` `runs` times on two threads.
fn tally(runs: u64, seed: u64, one: impl Fn(&mut StdRng) -> (bool, bool, u64) + Sync) -> Tally {
    let threads = 2;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let one = &one;
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(seed * 1000 + thread);
                    let mut tally = Tally::default();
                    for _ in 0..runs / threads + u64::from(thread < runs % threads) {
                        let (passed, failed, requests) = one(&mut rng);
                        tally.runs += 1;
                        tally.pass += u64::from(passed);
                        tally.fail += u64::from(failed);
                        tally.requests.push(requests);
                    }
                    tally
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold(Tally::default(), Tally::merge)
    })
}

/// The split alone, at a true share.
fn split_tally(plan: &CanaryPlan, truth: f64, runs: u64, seed: u64) -> Tally {
    tally(runs, seed, |rng| {
        let (outcome, used) = plan.split.simulate(&[truth], rng);
        (outcome == Outcome::Pass, outcome == Outcome::Fail, used)
    })
}

/// `rate` is at most `claim`, allowing three standard errors of the claim.
fn at_most(rate: f64, claim: f64, runs: u64) -> bool {
    rate <= claim + 3.0 * (claim * (1.0 - claim) / runs as f64).sqrt()
}

/// `rate` is at least `claim`, allowing three standard errors.
fn at_least(rate: f64, claim: f64, runs: u64) -> bool {
    rate >= claim - 3.0 * (claim * (1.0 - claim) / runs as f64).sqrt()
}

/// The split's power curve at one expectation and budget: true shares
/// from p0 − 2δ to p0 + 2δ in δ/4 steps, each edge ± the plan's zone, ±
/// `extra` (e.g. 0.8pp) and just inside each edge; `steps = false` keeps
/// the edges and zones alone (CI). Beside the seeded simulation of the
/// exact code: the design's exact pass and fail chances (its lattice walk,
/// without the gross sequence) and a fixed-sample test's at the budget.
/// Asserts every claim: a share on an edge or outside passes ≤ α, inside
/// fails ≤ α; at least the zone inside passes ≥ power, at least the zone
/// outside fails ≥ power; the maximum is ≤ 1.2× and the mean at p0 ≤ 0.8×
/// the fixed test for the zone.
fn split_curve(
    expect: (&str, &str),
    budget: u64,
    extra: f64,
    runs: u64,
    steps: bool,
    seed: u64,
    out: &mut String,
) {
    let plan = plan(&[
        "--expect",
        &format!("canary={}", expect.0),
        "--tolerance",
        expect.1,
        "--no-health",
        "--max-requests",
        &budget.to_string(),
    ]);
    let test = &plan.split.tests[0];
    let design = test.design();
    let (p0, delta) = (test.expectation.share, test.expectation.tolerance);
    let (low, high) = test.expectation.band();
    let zone = design.zone.width().expect("the budget decides");
    let fixed = design.fixed as f64;
    let ratio = design.budget() as f64 / fixed;
    let mean_ratio = design.at_share.expected_n / fixed;
    out.push_str(&format!(
        "\n**{} ± {}, budget {budget}, α {ALPHA}, power {POWER}**: zone {:.2}pp · {} looks · max {} = {ratio:.3}× the fixed test's {} for that zone · mean at p0 {:.0} = {mean_ratio:.3}× ({runs} runs a share)\n\n| true share | from the edge | pass | fail | inconclusive | mean / max responses | exact pass / fail | fixed test at {budget}: pass / fail | claim |\n|---|---|---|---|---|---|---|---|---|\n",
        expect.0, expect.1, zone * 100.0, design.looks.len(), design.budget(), design.fixed,
        design.at_share.expected_n,
    ));
    assert!(ratio <= 1.2, "{expect:?}: max {ratio}× fixed");
    assert!(
        mean_ratio <= 0.8,
        "{expect:?}: mean at p0 {mean_ratio}× fixed"
    );
    let fixed_test = gateprobe::canary::design::ShareDesign::one_look(
        &test.expectation,
        test.alpha(),
        POWER,
        budget,
    );
    let mut shares: Vec<f64> = Vec::new();
    if steps {
        shares.extend((-8..=8).map(|k| p0 + k as f64 * delta / 4.0));
    }
    for edge in [low, high] {
        for offset in [-zone, -extra, -1e-9, 0.0, 1e-9, extra, zone] {
            shares.push(edge + offset);
        }
    }
    shares.push(p0);
    shares.retain(|share| (0.0..=1.0).contains(share));
    shares.sort_by(f64::total_cmp);
    shares.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
    for (index, &truth) in shares.iter().enumerate() {
        let result = split_tally(&plan, truth, runs, seed * 100 + index as u64);
        // Signed distance to the nearer edge, inside positive.
        let inside = (truth - low).min(high - truth);
        let exact = design.operating(truth);
        let at_fixed = fixed_test.operating(truth);
        let mut claims = Vec::new();
        if inside <= 0.0 {
            claims.push("pass ≤ α");
            assert!(
                at_most(result.pass_rate(), ALPHA, runs),
                "{expect:?}: a true {truth} (on an edge or outside) passes {}",
                result.pass_rate()
            );
        } else {
            claims.push("fail ≤ α");
            assert!(
                at_most(result.fail_rate(), ALPHA, runs),
                "{expect:?}: a true {truth} (inside) fails {}",
                result.fail_rate()
            );
        }
        if inside >= zone - 1e-12 {
            claims.push("pass ≥ power");
            assert!(
                at_least(result.pass_rate(), POWER, runs),
                "{expect:?}: a true {truth}, {inside} inside, passes {}",
                result.pass_rate()
            );
        }
        if inside <= -zone + 1e-12 {
            claims.push("fail ≥ power");
            assert!(
                at_least(result.fail_rate(), POWER, runs),
                "{expect:?}: a true {truth}, {} outside, fails {}",
                -inside,
                result.fail_rate()
            );
        }
        // The simulation agrees with the exact walk (the gross sequence
        // only adds fails).
        let noise = 4.0 * (0.25 / runs as f64).sqrt();
        assert!(
            (result.pass_rate() - exact.pass).abs() <= noise,
            "{expect:?} {truth}: simulated pass {} vs exact {}",
            result.pass_rate(),
            exact.pass
        );
        out.push_str(&format!(
            "| {} | {:+.2}pp | {:.4} | {:.4} | {:.4} | {:.0} / {} | {:.4} / {:.4} | {:.4} / {:.4} | {} |\n",
            gateprobe::canary::percent(truth),
            inside * 100.0,
            result.pass_rate(),
            result.fail_rate(),
            1.0 - result.pass_rate() - result.fail_rate(),
            result.mean(),
            result.quantile(1.0),
            exact.pass,
            exact.fail,
            at_fixed.pass,
            at_fixed.fail,
            claims.join(", ")
        ));
        assert!(result.quantile(1.0) <= design.budget());
    }
}

/// The acceptance's three expectations at a 50,000 budget.
const SPLIT_CASES: [(&str, &str); 3] = [("20%", "3pp"), ("10%", "2pp"), ("5%", "1pp")];

/// Gross misconfigurations fail fast; 100% expected is one-sided.
fn gross_table(runs: u64, out: &mut String) {
    out.push_str("\n| misconfiguration | fails | requests to fail (median / 99th pct / max) |\n|---|---|---|\n");
    for (expected, truth, within) in [("10%", 0.0, 100), ("5%", 0.25, 200), ("10%", 1.0, 50)] {
        let plan = plan(&["--expect", &format!("canary={expected}"), "--no-health"]);
        let result = split_tally(&plan, truth, runs, 77);
        out.push_str(&format!(
            "| {} with {expected} expected | {:.4} | {} / {} / {} |\n",
            gateprobe::canary::percent(truth),
            result.fail_rate(),
            result.quantile(0.5),
            result.quantile(0.99),
            result.quantile(1.0)
        ));
        assert_eq!(result.fail, result.runs, "{truth} with {expected}");
        assert!(
            result.quantile(0.99) <= within,
            "{truth} with {expected}: 99th percentile {}",
            result.quantile(0.99)
        );
    }
    let plan = plan(&[
        "--expect",
        "canary=100%",
        "--tolerance",
        "1pp",
        "--no-health",
    ]);
    for (truth, claim) in [(0.999, "fail ≤ α"), (0.98, "fail ≥ 0.95")] {
        let result = split_tally(&plan, truth, runs, 88);
        out.push_str(&format!(
            "| {} with 100% ± 1pp expected | {:.4} | {} median ({claim}) |\n",
            gateprobe::canary::percent(truth),
            result.fail_rate(),
            result.quantile(0.5)
        ));
        if truth > 0.99 {
            assert!(
                at_most(result.fail_rate(), ALPHA, runs),
                "{truth}: {}",
                result.fail_rate()
            );
        } else {
            assert!(
                at_least(result.fail_rate(), POWER, runs),
                "{truth}: {}",
                result.fail_rate()
            );
        }
    }
}

/// The health checks, through the whole observer.
fn health_tally(plan: &CanaryPlan, truth: &Truth, runs: u64, seed: u64) -> (Tally, Tally) {
    let errors = std::sync::Mutex::new(Tally::default());
    let latency = tally(runs, seed, |rng| {
        let concluded = simulate::run(plan, truth, rng);
        let mut e = errors.lock().unwrap();
        e.runs += 1;
        e.pass += u64::from(concluded.errors == Standing::Pass);
        e.fail += u64::from(concluded.errors == Standing::Fail);
        e.requests.push(concluded.requests);
        (
            concluded.latency == Standing::Pass,
            concluded.latency == Standing::Fail,
            concluded.requests,
        )
    });
    (errors.into_inner().unwrap(), latency)
}

fn health_table(runs: u64, rates: &[f64], out: &mut String) {
    let plan = plan(&["--expect", "canary=10%"]);
    out.push_str("\n**Errors** (10% canary, margin +1pp, α 0.01, power 0.95; the baseline rate is assumed 1% until seen)\n\n| baseline error rate | canary | pass | fail | requests (median) |\n|---|---|---|---|---|\n");
    for &rate in rates {
        for (what, canary_rate) in [
            ("equal", rate),
            ("better", rate / 2.0),
            ("+2pp (2× margin)", rate + 0.02),
        ] {
            let mut truth = Truth::as_planned(&plan);
            truth.error_rates = vec![canary_rate, rate];
            let (errors, _) = health_tally(&plan, &truth, runs, (rate * 1e5) as u64 + 3);
            let line = format!(
                "| {} | {what} | {:.4} | {:.4} | {} |\n",
                gateprobe::canary::percent(rate),
                errors.pass_rate(),
                errors.fail_rate(),
                errors.quantile(0.5)
            );
            if std::env::var_os("GATEPROBE_RUNS").is_some() {
                // The full table takes long: each row as it comes.
                print!("{line}");
            }
            out.push_str(&line);
            if what == "+2pp (2× margin)" {
                assert!(
                    at_least(errors.fail_rate(), POWER, runs),
                    "{rate} {what}: {}",
                    errors.fail_rate()
                );
            } else {
                assert!(
                    at_most(errors.fail_rate(), ALPHA, runs),
                    "{rate} {what}: {}",
                    errors.fail_rate()
                );
                if what == "equal" {
                    assert!(
                        at_least(errors.pass_rate(), POWER, runs),
                        "{rate} {what}: {}",
                        errors.pass_rate()
                    );
                }
            }
        }
    }
}

/// The latency check under real dependence: a 7% canary at 500 rps with
/// a budget of 20,000 requests and a +20% margin, its latencies replayed
/// from nginx on loopback (idle and busy machine, `traces.rs`) or drawn
/// log-normal with AR(1) noise. Equal: pass ≥ power, fail ≤ α; exactly at
/// the margin: pass ≤ α and fail ≤ α; 40% slower: fail ≥ power.
fn latency_table(runs: u64, quick: bool, out: &mut String) {
    let plan = plan_at("500", &["--expect", "canary=7%", "--max-requests", "20000"]);
    out.push_str("\n**Latency** (7% canary, 500 rps, budget 20,000 requests, margin +20% of the geometric mean, α 0.01, power 0.95)\n\n| latencies | canary | pass | fail | responses to a decision (median / 95th pct) | claim |\n|---|---|---|---|---|---|\n");
    let traces: Vec<(&str, Option<Trace>, f64)> = vec![
        ("log-normal σ 0.3, independent", None, 0.0),
        ("log-normal σ 0.3, AR(1) ρ 0.9", None, 0.9),
        (
            "nginx on loopback, idle machine",
            Some(trace_ms("nginx-500rps-idle.txt.gz")),
            0.0,
        ),
        (
            "nginx on loopback, busy machine",
            Some(trace_ms("nginx-500rps-busy.txt.gz")),
            0.0,
        ),
    ];
    let mut broken = Vec::new();
    for (what, trace, rho) in traces {
        for (canary, ratio) in [("equal", 1.0), ("+20% (the margin)", 1.2), ("+40%", 1.4)] {
            // CI: the recorded traces, and the margin on the busy one.
            if quick && (trace.is_none() || (ratio == 1.2 && !what.contains("busy"))) {
                continue;
            }
            let mut truth = Truth::as_planned(&plan);
            truth.latency_ms = vec![10.0 * ratio, 10.0];
            truth.autocorrelation = rho;
            truth.latency_trace = trace.clone();
            let seed = (ratio * 100.0) as u64 + (rho * 10.0) as u64 + what.len() as u64;
            let (_, latency) = health_tally(&plan, &truth, runs, seed);
            let claim = match canary {
                "equal" => "pass ≥ 0.95, fail ≤ α",
                "+40%" => "fail ≥ 0.95",
                _ => "pass ≤ α, fail ≤ α",
            };
            out.push_str(&format!(
                "| {what} | {canary} | {:.4} | {:.4} | {} / {} | {claim} |\n",
                latency.pass_rate(),
                latency.fail_rate(),
                latency.quantile(0.5),
                latency.quantile(0.95),
            ));
            let holds = match canary {
                "equal" => {
                    at_least(latency.pass_rate(), POWER, runs)
                        && at_most(latency.fail_rate(), ALPHA, runs)
                }
                "+40%" => at_least(latency.fail_rate(), POWER, runs),
                _ => {
                    at_most(latency.pass_rate(), ALPHA, runs)
                        && at_most(latency.fail_rate(), ALPHA, runs)
                }
            };
            if !holds {
                broken.push(format!("{what}, canary {canary}: {claim} does not hold"));
            }
        }
    }
    assert!(broken.is_empty(), "{out}\n{}", broken.join("\n"));
}

/// Requests no variant answers, attributed by the deficit: a 10% canary
/// and a budget of 60,000 requests, each variant dropping its own share
/// of requests. A canary dropping 6% more than stable fails ≥ power;
/// equal drop rates fail ≤ α.
fn drops_table(runs: u64, quick: bool, out: &mut String) {
    use gateprobe::canary::drops::Finding;
    let plan = plan(&["--expect", "canary=10%", "--max-requests", "60000"]);
    let design = plan.drop_design(0).expect("a drop test");
    out.push_str(&format!(
        "\n**Drops** (10% canary, budget 60,000 requests, α 0.01; the plan detects a canary dropping {} more than stable with power 0.95)\n\n| canary drops | stable drops | drops found (fail) | deficit too large | requests (median) | claim |\n|---|---|---|---|---|---|\n",
        gateprobe::canary::percent(design.detectable.unwrap_or(1.0))
    ));
    let cases: &[(f64, f64)] = if quick {
        &[(0.06, 0.0), (0.01, 0.01)]
    } else {
        &[
            (0.06, 0.0),
            (0.03, 0.0),
            (0.1, 0.0),
            (0.0, 0.0),
            (0.01, 0.01),
            (0.05, 0.05),
            (0.0, 0.02),
        ]
    };
    let mut broken = Vec::new();
    for &(canary, stable) in cases {
        let mut truth = Truth::as_planned(&plan);
        truth.shares = vec![0.1 * (1.0 - canary), 0.9 * (1.0 - stable)];
        let found = std::sync::atomic::AtomicU64::new(0);
        let result = tally(runs, (canary * 1000.0 + stable * 100.0) as u64 + 9, |rng| {
            let concluded = simulate::run(&plan, &truth, rng);
            if concluded.drops == Some(Finding::NotDrops) {
                found.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (
                false,
                concluded.drops == Some(Finding::Drops),
                concluded.requests,
            )
        });
        let too_large = found.into_inner() as f64 / runs as f64;
        let claim = if canary - stable >= 0.06 {
            "fail ≥ 0.95"
        } else if canary <= stable {
            "fail ≤ α"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {} | {} | {:.4} | {too_large:.4} | {} | {claim} |\n",
            gateprobe::canary::percent(canary),
            gateprobe::canary::percent(stable),
            result.fail_rate(),
            result.quantile(0.5)
        ));
        let holds = match claim {
            "fail ≥ 0.95" => at_least(result.fail_rate(), POWER, runs),
            "fail ≤ α" => at_most(result.fail_rate(), ALPHA, runs),
            _ => true,
        };
        if !holds {
            broken.push(format!(
                "canary {canary}, stable {stable}: {claim} does not hold"
            ));
        }
    }
    assert!(broken.is_empty(), "{out}\n{}", broken.join("\n"));
}

/// Health power curves (the named command only): the error check over
/// increases 0 to 2× the margin (baseline 0.5%), the latency check over
/// ratios 1.0 to 1.4 on the busy nginx trace, and the drop test over drop
/// rates 0 to 10%, each at a fixed budget, with pass / fail / inconclusive
/// and the requests used.
fn health_curves(runs: u64, out: &mut String) {
    use gateprobe::canary::drops::Finding;
    let row = |out: &mut String, what: String, pass: f64, fail: f64, tally: &Tally| {
        out.push_str(&format!(
            "| {what} | {pass:.4} | {fail:.4} | {:.4} | {:.0} / {} |\n",
            (1.0 - pass - fail).max(0.0),
            tally.mean(),
            tally.quantile(1.0)
        ));
    };
    let header =
        "| truth | pass | fail | inconclusive | requests (mean / max) |\n|---|---|---|---|---|\n";
    let errors_plan = plan(&["--expect", "canary=10%", "--max-requests", "100000"]);
    out.push_str(&format!("\n**Errors: power curve** (10% canary, baseline 0.5%, margin +1pp, budget 100,000)\n\n{header}"));
    for step in 0..=8 {
        let increase = step as f64 * 0.0025;
        let mut truth = Truth::as_planned(&errors_plan);
        truth.error_rates = vec![0.005 + increase, 0.005];
        let (errors, _) = health_tally(&errors_plan, &truth, runs, 300 + step);
        let what = format!("canary +{:.2}pp", increase * 100.0);
        row(out, what, errors.pass_rate(), errors.fail_rate(), &errors);
    }
    let slow = plan_at("500", &["--expect", "canary=7%", "--max-requests", "20000"]);
    let trace = trace_ms("nginx-500rps-busy.txt.gz");
    out.push_str(&format!("\n**Latency: power curve** (7% canary, 500 rps, busy-machine nginx trace, margin +20%, budget 20,000)\n\n{header}"));
    for step in 0..=8 {
        let ratio = 1.0 + step as f64 * 0.05;
        let mut truth = Truth::as_planned(&slow);
        truth.latency_ms = vec![10.0 * ratio, 10.0];
        truth.latency_trace = Some(trace.clone());
        let (_, latency) = health_tally(&slow, &truth, runs, 400 + step);
        let what = format!("canary ×{ratio:.2}");
        row(
            out,
            what,
            latency.pass_rate(),
            latency.fail_rate(),
            &latency,
        );
    }
    let dropping = plan(&["--expect", "canary=10%", "--max-requests", "60000"]);
    out.push_str(&format!("\n**Drops: power curve** (10% canary, stable drops none, budget 60,000; pass = no sign of drops)\n\n{header}"));
    for step in [0, 1, 2, 3, 4, 5, 6, 8, 10] {
        let rate = step as f64 / 100.0;
        let mut truth = Truth::as_planned(&dropping);
        truth.shares = vec![0.1 * (1.0 - rate), 0.9];
        let drops = tally(runs, 500 + step, |rng| {
            let concluded = simulate::run(&dropping, &truth, rng);
            (
                matches!(
                    concluded.drops,
                    Some(Finding::NoSign | Finding::NoneUnanswered)
                ),
                concluded.drops == Some(Finding::Drops),
                concluded.requests,
            )
        });
        let what = format!("canary drops {step}%");
        row(out, what, drops.pass_rate(), drops.fail_rate(), &drops);
    }
}

/// A recorded trace's latencies (ms), shared by the runs.
type Trace = std::sync::Arc<Vec<f64>>;

/// A recorded trace's latencies, in ms.
fn trace_ms(name: &str) -> Trace {
    std::sync::Arc::new(
        crate::traces::read_trace(name)
            .iter()
            .map(|row| row.latency_us as f64 / 1000.0)
            .collect(),
    )
}

fn dependence_table(runs: u64, out: &mut String) {
    let plan = plan(&["--expect", "canary=10%"]);
    for growing_pool in [false, true] {
        let mut truth = Truth::as_planned(&plan);
        truth.sticky_connections = Some(64);
        truth.growing_pool = growing_pool;
        let found = std::sync::atomic::AtomicU64::new(0);
        let result = tally(runs, 5, |rng| {
            let concluded = simulate::run(&plan, &truth, rng);
            found.fetch_add(
                u64::from(concluded.dependent),
                std::sync::atomic::Ordering::Relaxed,
            );
            (
                concluded.split == Outcome::Pass && !concluded.dependent,
                concluded.split == Outcome::Fail && !concluded.dependent,
                concluded.requests,
            )
        });
        let found = found.into_inner() as f64 / runs as f64;
        // The runs it misses are those where at most one of the 64
        // connections landed on the canary (0.9^64 + 64·0.1·0.9^63 = 1.0%):
        // from this client they look exactly like a dead canary, and fail
        // as one. With a pool that opens its connections one by one, the
        // first hundred responses come on a dozen connections, and the
        // share can leave its band before any connection has the 5
        // responses the dependence test needs: the run goes on until it can
        // tell.
        let pool = if growing_pool {
            "opened one by one"
        } else {
            "round robin"
        };
        out.push_str(&format!(
            "\n**A split per connection** (64 keep-alive connections, {pool}, 10% of them the canary's): dependence found {found:.4}, pass anyway {:.4}, fail anyway {:.4}, requests (median) {}\n",
            result.pass_rate(),
            result.fail_rate(),
            result.quantile(0.5)
        ));
        assert!(found >= 0.98, "dependence found in {found}:{out}");
    }
}

#[test]
fn canary_verdicts_carry_their_error_rates() {
    let mut out = String::new();
    let started = std::time::Instant::now();
    for (seed, expect) in SPLIT_CASES.into_iter().enumerate() {
        split_curve(expect, 50_000, 0.008, 500, false, seed as u64 + 1, &mut out);
    }
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
    out.clear();
    gross_table(400, &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
    out.clear();
    health_table(400, &[0.0, 0.005], &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
    out.clear();
    latency_table(200, true, &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
    out.clear();
    drops_table(100, true, &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
    out.clear();
    dependence_table(100, &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
}

/// The full tables of docs/canary.md (≥ 10,000 runs per case).
#[test]
#[ignore = "minutes: cargo test --release -- --ignored canary_tables --nocapture"]
fn canary_tables() {
    // Printed table by table: the whole takes tens of minutes on two cores.
    // GATEPROBE_TABLES=split,gross,latency,drops,curves,dependence,health picks some;
    // GATEPROBE_RUNS=N runs fewer (a quicker look, not the docs' table).
    let wanted = std::env::var("GATEPROBE_TABLES").unwrap_or_default();
    let runs: u64 = std::env::var("GATEPROBE_RUNS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000);
    let wants = |name: &str| wanted.is_empty() || wanted.split(',').any(|w| w == name);
    let print = |out: &mut String| {
        println!("{out}");
        out.clear();
    };
    let mut out = String::new();
    if wants("split") {
        for (seed, expect) in SPLIT_CASES.into_iter().enumerate() {
            split_curve(expect, 50_000, 0.008, runs, true, seed as u64 + 1, &mut out);
            print(&mut out);
        }
        for (seed, budget) in [10_000, 200_000].into_iter().enumerate() {
            split_curve(
                ("10%", "2pp"),
                budget,
                0.008,
                runs,
                true,
                seed as u64 + 7,
                &mut out,
            );
            print(&mut out);
        }
    }
    if wants("gross") {
        gross_table(runs, &mut out);
        print(&mut out);
    }
    if wants("latency") {
        latency_table(runs, false, &mut out);
        print(&mut out);
    }
    if wants("drops") {
        drops_table(runs, false, &mut out);
        print(&mut out);
    }
    if wants("curves") {
        health_curves(runs, &mut out);
        print(&mut out);
    }
    if wants("dependence") {
        dependence_table(runs, &mut out);
        print(&mut out);
    }
    if !wants("health") {
        return;
    }
    health_table(runs, &[0.0, 0.001, 0.005, 0.01, 0.05], &mut out);
    print(&mut out);
}
