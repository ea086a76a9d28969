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
use gateprobe::canary::{canary_plan, CanaryPlan};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common;

const ALPHA: f64 = 0.01;
const POWER: f64 = 0.95;

fn plan(extra: &[&str]) -> CanaryPlan {
    let mut argv = vec![
        "gateprobe",
        "canary",
        "http://127.0.0.1:9/",
        "--classify",
        "canary=body:empty",
        "--classify",
        "stable=*",
        "--rate",
        "1000",
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

/// One p0's table: true shares at p0 + k·δ.
fn split_table(p0_text: &str, runs: u64, seed: u64, out: &mut String) {
    let plan = plan(&["--expect", &format!("canary={p0_text}"), "--no-health"]);
    let test = &plan.split.tests[0];
    let (p0, delta) = (test.expectation.share, test.expectation.tolerance);
    out.push_str(&format!(
        "\n**p0 {}, δ {}pp, α {ALPHA}, power {POWER}** (horizon {} responses; TOST {})\n\n| true share | pass | fail | mean responses | claim |\n|---|---|---|---|---|\n",
        gateprobe::canary::percent(p0),
        (delta * 1e4).round() / 1e2,
        test.horizon(),
        plan.tost_size
    ));
    for k in [
        -2.0, -1.5, -1.25, -1.0, -0.75, -0.5, 0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0,
    ] {
        let truth = p0 + k * delta;
        if !(0.0..=1.0).contains(&truth) {
            continue;
        }
        let result = split_tally(&plan, truth, runs, seed + (k * 100.0) as u64);
        let inside = k.abs() < 1.0;
        let claim = if k == 0.0 {
            format!("fail ≤ α, pass ≥ {POWER}, mean ≤ TOST")
        } else if inside {
            "fail ≤ α".to_string()
        } else {
            "pass ≤ α".to_string()
        };
        out.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.0} | {claim} |\n",
            gateprobe::canary::percent(truth),
            result.pass_rate(),
            result.fail_rate(),
            result.mean()
        ));
        if inside {
            assert!(
                at_most(result.fail_rate(), ALPHA, runs),
                "p0 {p0}: a true {truth} (inside) fails {}",
                result.fail_rate()
            );
        } else {
            assert!(
                at_most(result.pass_rate(), ALPHA, runs),
                "p0 {p0}: a true {truth} (outside) passes {}",
                result.pass_rate()
            );
        }
        if k == 0.0 {
            assert!(
                at_least(result.pass_rate(), POWER, runs),
                "p0 {p0}: power {}",
                result.pass_rate()
            );
            assert!(
                result.mean() <= plan.tost_size as f64,
                "p0 {p0}: mean {} > TOST {}",
                result.mean(),
                plan.tost_size
            );
        }
    }
}

/// Gross misconfigurations fail fast; 100% expected is one-sided.
fn gross_table(runs: u64, out: &mut String) {
    out.push_str("\n| misconfiguration | fails | requests to fail (median / 99th pct / max) |\n|---|---|---|\n");
    for (expected, truth, within) in [("10%", 0.0, 70), ("5%", 0.25, 200), ("10%", 1.0, 50)] {
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
            out.push_str(&format!(
                "| {} | {what} | {:.4} | {:.4} | {} |\n",
                gateprobe::canary::percent(rate),
                errors.pass_rate(),
                errors.fail_rate(),
                errors.quantile(0.5)
            ));
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

fn latency_table(runs: u64, out: &mut String) {
    let plan = plan(&["--expect", "canary=10%"]);
    out.push_str("\n**Latency** (margin +20% of the geometric mean, per-second blocks, α 0.01)\n\n| latency | dependence | pass | fail | seconds (median) |\n|---|---|---|---|---|\n");
    for (what, ratio, rho, claim) in [
        ("equal", 1.0, 0.0, "pass ≥ 0.95"),
        ("equal", 1.0, 0.9, "fail ≤ α"),
        ("+40% (2× margin)", 1.4, 0.0, "fail ≥ 0.95"),
        ("+40% (2× margin)", 1.4, 0.9, "fail ≥ 0.95"),
    ] {
        let mut truth = Truth::as_planned(&plan);
        truth.latency_ms = vec![10.0 * ratio, 10.0];
        truth.autocorrelation = rho;
        let (_, latency) = health_tally(&plan, &truth, runs, (ratio * 100.0 + rho * 10.0) as u64);
        out.push_str(&format!(
            "| {what} | AR(1) ρ {rho} | {:.4} | {:.4} | {} |\n",
            latency.pass_rate(),
            latency.fail_rate(),
            latency.quantile(0.5) / 1000
        ));
        match claim {
            "pass ≥ 0.95" => assert!(
                at_least(latency.pass_rate(), POWER, runs),
                "{what} ρ {rho}: {}",
                latency.pass_rate()
            ),
            "fail ≤ α" => assert!(
                at_most(latency.fail_rate(), ALPHA, runs),
                "{what} ρ {rho}: {}",
                latency.fail_rate()
            ),
            _ => assert!(
                at_least(latency.fail_rate(), POWER, runs),
                "{what} ρ {rho}: {}",
                latency.fail_rate()
            ),
        }
    }
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
    split_table("10%", 1_000, 1, &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
    out.clear();
    gross_table(400, &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
    out.clear();
    health_table(400, &[0.0, 0.005], &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
    out.clear();
    latency_table(200, &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
    out.clear();
    dependence_table(100, &mut out);
    common::say(&format!("{out}({:.1} s)", started.elapsed().as_secs_f64()));
}

/// The full tables of the README's canary section (≥ 10,000 runs per case).
#[test]
#[ignore = "minutes: cargo test --release -- --ignored canary_tables --nocapture"]
fn canary_tables() {
    // Printed table by table: the whole takes tens of minutes on two cores.
    // GATEPROBE_TABLES=split,gross,latency,dependence,health picks some;
    // GATEPROBE_RUNS=N runs fewer (a quicker look, not the README's table).
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
        for (p0, seed) in [("10%", 1), ("50%", 2), ("1%", 3)] {
            split_table(p0, runs, seed, &mut out);
            print(&mut out);
        }
    }
    if wants("gross") {
        gross_table(runs, &mut out);
        print(&mut out);
    }
    if wants("latency") {
        latency_table(runs, &mut out);
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
