//! The throttle probe's statistics in virtual time: the real procedure
//! (`gateprobe::app::throttle::simulate`) against the simulator's own limiters,
//! seeded, thousands of runs per case. What is measured:
//! - coverage of every reported 95% interval (rate, burst, queue depth,
//!   window limit and length, concurrency) — claimed ≥ 93%, i.e. ≥ 95%
//!   less the Monte-Carlo slack of a few thousand runs;
//! - how often the model is named right;
//! - requests used to a decision for a token bucket (≤ B + 15R).
//!
//! CI runs up to 1,000 runs for every case and arrival process, in looks
//! that stop a row once its shares are beyond doubt (`Row::decided`); the
//! table in docs/throttle.md is 2,000 fixed runs per row
//! (`cargo test --release -- --ignored throttle_table --nocapture`);
//! `cargo test --release throttle_intervals_cover -- --nocapture` prints the
//! table in docs/throttle.md (`THROTTLE_CASE=sliding` runs only the cases whose name
//! has that word).
use clap::Parser;
use gateprobe::app::throttle::simulate::{self, Arrivals, Gateway};
use gateprobe::cli::throttle::throttle_plan;
use gateprobe::report::{Estimate, Report};
use gateprobe::sim::config::{LimiterKind, Throttle};
use gateprobe::throttle::ThrottlePlan;

fn plan(extra: &[&str]) -> ThrottlePlan {
    let mut argv = vec![
        "gateprobe",
        "throttle",
        "http://127.0.0.1:9/x",
        "--max-rate",
        "4000",
        "--quiet",
    ];
    argv.extend_from_slice(extra);
    let cli = gateprobe::cli::Cli::parse_from(argv);
    let gateprobe::cli::Command::Throttle(args) = cli.command else {
        unreachable!()
    };
    throttle_plan(&args).expect("a valid plan")
}

/// A limiter with its truth.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    gateway: Gateway,
    model: &'static str,
    /// (field, true value) pairs the intervals must cover.
    truth: &'static [(&'static str, f64)],
    /// The highest rate the limiter sustains: the knee is within 5% of it,
    /// and the safe rate may not exceed it.
    sustained: f64,
}

fn bucket(rate: f64, burst: u64) -> Gateway {
    Gateway::limited(Throttle::token_bucket(rate, burst))
}

fn limiter(
    kind: LimiterKind,
    rate: f64,
    burst: u64,
    limit: u64,
    window_s: f64,
    counts: bool,
) -> Gateway {
    Gateway::limited(Throttle {
        kind,
        limit,
        window_s,
        counts_refused: counts,
        ..Throttle::token_bucket(rate, burst)
    })
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "bucket 50 rps, burst 10",
            gateway: bucket(50.0, 10),
            model: "token_bucket",
            truth: &[("rate_per_s", 50.0), ("burst", 10.0)],
            sustained: 50.0,
        },
        Case {
            name: "bucket 150.25 rps, burst 40 (aliasing)",
            gateway: bucket(150.25, 40),
            model: "token_bucket",
            truth: &[("rate_per_s", 150.25), ("burst", 40.0)],
            sustained: 150.25,
        },
        Case {
            name: "bucket 20 rps, burst 5",
            gateway: bucket(20.0, 5),
            model: "token_bucket",
            truth: &[("rate_per_s", 20.0), ("burst", 5.0)],
            sustained: 20.0,
        },
        Case {
            name: "bucket 1000 rps, burst 500",
            gateway: bucket(1000.0, 500),
            model: "token_bucket",
            truth: &[("rate_per_s", 1000.0), ("burst", 500.0)],
            sustained: 1000.0,
        },
        Case {
            name: "queue 60 r/s, burst 30 (nginx, no nodelay)",
            gateway: limiter(LimiterKind::Queue, 60.0, 30, 0, 1.0, false),
            model: "queue",
            truth: &[("rate_per_s", 60.0), ("queue_depth", 30.0)],
            sustained: 60.0,
        },
        Case {
            name: "queue 25 r/s, burst 8",
            gateway: limiter(LimiterKind::Queue, 25.0, 8, 0, 1.0, false),
            model: "queue",
            truth: &[("rate_per_s", 25.0), ("queue_depth", 8.0)],
            sustained: 25.0,
        },
        // The real nginx queues' pairs (tests/it/real_limiters.rs).
        Case {
            name: "queue 40 r/s, burst 12",
            gateway: limiter(LimiterKind::Queue, 40.0, 12, 0, 1.0, false),
            model: "queue",
            truth: &[("rate_per_s", 40.0), ("queue_depth", 12.0)],
            sustained: 40.0,
        },
        Case {
            name: "queue 150 r/s, burst 60",
            gateway: limiter(LimiterKind::Queue, 150.0, 60, 0, 1.0, false),
            model: "queue",
            truth: &[("rate_per_s", 150.0), ("queue_depth", 60.0)],
            sustained: 150.0,
        },
        Case {
            name: "queue 240 r/s, burst 120",
            gateway: limiter(LimiterKind::Queue, 240.0, 120, 0, 1.0, false),
            model: "queue",
            truth: &[("rate_per_s", 240.0), ("queue_depth", 120.0)],
            sustained: 240.0,
        },
        Case {
            name: "fixed window 50 per 1 s",
            gateway: limiter(LimiterKind::FixedWindow, 0.0, 0, 50, 1.0, false),
            model: "fixed_window",
            truth: &[("window_limit", 50.0), ("window_s", 1.0)],
            sustained: 50.0,
        },
        Case {
            name: "concurrency 12, 140 ms",
            gateway: Gateway::concurrency(12, 0.140),
            model: "concurrency",
            truth: &[("concurrency", 12.0)],
            sustained: 12.0 / 0.140,
        },
        Case {
            name: "sliding window 80 per 1 s counting refusals",
            gateway: limiter(LimiterKind::SlidingWindow, 0.0, 0, 80, 1.0, true),
            model: "sliding_window",
            truth: &[("window_limit", 80.0), ("window_s", 1.0)],
            sustained: 80.0,
        },
    ]
}

fn field(report: &Report, name: &str) -> Option<Estimate> {
    let throttle = report.throttle.as_ref()?;
    throttle
        .parameters()
        .into_iter()
        .find(|(field, ..)| *field == name)
        .map(|(.., value)| value)
}

#[test]
#[ignore]
fn throttle_show_one_run_per_case() {
    let plan = plan(&[]);
    for case in cases() {
        for arrivals in [Arrivals::Even { jitter_s: 0.0 }, Arrivals::Poisson] {
            let report = simulate::probe(&plan, case.gateway, arrivals, 1).unwrap();
            let throttle = report.throttle.as_ref().unwrap();
            println!(
                "{} {arrivals:?}: {} — {}",
                case.name, throttle.model, report.reason
            );
            for (field, _, _, value) in throttle.parameters() {
                println!(
                    "    {field}: {:.3} [{:.3}, {:.3}]",
                    value.estimate, value.ci_low, value.ci_high
                );
            }
            for evidence in &throttle.evidence {
                println!("    evidence: {evidence}");
            }
        }
    }
}

/// How the client's sends are spaced, with a name for the table.
fn arrivals() -> [(&'static str, Arrivals); 4] {
    [
        ("even", Arrivals::Even { jitter_s: 0.0 }),
        ("±2 ms", Arrivals::Even { jitter_s: 0.002 }),
        ("±10 ms", Arrivals::Even { jitter_s: 0.010 }),
        ("Poisson", Arrivals::Poisson),
    ]
}

/// One row of the table: a case under one arrival process.
#[derive(Debug, Default)]
struct Row {
    runs: u64,
    model_right: u64,
    /// Per truth field: (reported, covered).
    coverage: Vec<(u64, u64)>,
    /// Knees reported, and those right by [`knee_right`].
    knees: (u64, u64),
    /// Safe rates reported, and those at most the sustained rate (and at
    /// least [`safe_floor`] of it).
    safes: (u64, u64),
    /// A queue's runs, and those whose depth is within 10% (or 2) of the
    /// truth and whose rate within 5%.
    close: (u64, u64),
    requests: Vec<u64>,
}

impl Row {
    fn share(count: u64, of: u64) -> f64 {
        if of == 0 {
            0.0
        } else {
            count as f64 / of as f64
        }
    }
}

impl Row {
    fn add(&mut self, part: Row) {
        self.runs += part.runs;
        self.model_right += part.model_right;
        self.requests.extend(part.requests);
        self.knees.0 += part.knees.0;
        self.knees.1 += part.knees.1;
        self.safes.0 += part.safes.0;
        self.safes.1 += part.safes.1;
        self.close.0 += part.close.0;
        self.close.1 += part.close.1;
        if self.coverage.is_empty() {
            self.coverage = part.coverage;
        } else {
            for (total, part) in self.coverage.iter_mut().zip(part.coverage) {
                total.0 += part.0;
                total.1 += part.1;
            }
        }
    }

    /// Each share the row is held to, as (what, count, of, least share).
    fn claims<'a>(&self, case: &'a Case) -> Vec<(&'a str, u64, u64, f64)> {
        let mut claims = vec![("model right", self.model_right, self.runs, MODEL_RIGHT)];
        for ((name, _), (reported, covered)) in case.truth.iter().zip(&self.coverage) {
            claims.push((name, *covered, *reported, COVERAGE));
        }
        claims.push(("knee within 5%", self.knees.1, self.knees.0, 0.95));
        claims.push(("safe rate right", self.safes.1, self.safes.0, 0.95));
        if self.close.0 > 0 {
            claims.push(("depth and rate close", self.close.1, self.close.0, 0.95));
        }
        claims
    }

    /// Whether every claim is already beyond doubt: the exact one-sided
    /// lower bound of each share, at 1 − [`EARLY_ALPHA`], is at least its
    /// threshold. A row whose true share is under a threshold passes a look
    /// early with probability at most EARLY_ALPHA per claim.
    fn decided(&self, case: &Case) -> bool {
        self.claims(case).iter().all(|&(_, count, of, least)| {
            of == 0
                || gateprobe::stats::binomial::clopper_pearson(count, of, EARLY_ALPHA).0 >= least
        })
    }
}

/// The thresholds: the model named right in ≥ 95% of runs, and every
/// reported 95% interval covering in ≥ 93% (95% less the Monte-Carlo slack
/// of a thousand runs: at a true 95%, 1,000 runs fall under 93% in 0.2%).
const MODEL_RIGHT: f64 = 0.95;
const COVERAGE: f64 = 0.93;
/// Runs are taken in looks (250, 500, 1,000, … up to the row's count), and
/// a row stops at a look where every share's lower bound at this level
/// clears its threshold: the rows far from their thresholds (most) cost a
/// quarter of the runs; a row near one runs to the end and is judged on
/// its counts, as a fixed-size table would.
const EARLY_ALPHA: f64 = 1e-4;
const FIRST_LOOK: u64 = 250;

fn tally(case: &Case, arrivals: Arrivals, runs: u64, seed: u64, staged: bool) -> Row {
    let mut row = Row::default();
    let mut look = if staged { FIRST_LOOK.min(runs) } else { runs };
    loop {
        row.add(tally_range(case, arrivals, seed + row.runs..seed + look));
        if row.runs >= runs || row.decided(case) {
            break;
        }
        look = (2 * look).min(runs);
    }
    row.requests.sort_unstable();
    row
}

/// The runs of the seeds in `seeds`, on two workers (CI has two cores),
/// each on every other seed.
fn tally_range(case: &Case, arrivals: Arrivals, seeds: std::ops::Range<u64>) -> Row {
    let halves: Vec<Row> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|half| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    tally_seeds(case, arrivals, (seeds.start + half..seeds.end).step_by(2))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .collect()
    });
    let mut row = Row::default();
    for half in halves {
        row.add(half);
    }
    row
}

fn tally_seeds(case: &Case, arrivals: Arrivals, seeds: impl Iterator<Item = u64>) -> Row {
    let plan = plan(&[]);
    let mut row = Row {
        coverage: vec![(0, 0); case.truth.len()],
        ..Row::default()
    };
    for seed in seeds {
        let report = simulate::probe(&plan, case.gateway, arrivals, seed).unwrap();
        let throttle = report.throttle.as_ref().unwrap();
        row.runs += 1;
        row.model_right += u64::from(throttle.model == case.model);
        row.requests.push(throttle.requests_used);
        if let Some(knee) = throttle.knee_rate_per_s {
            row.knees.0 += 1;
            row.knees.1 += u64::from(knee_right(case, throttle, knee));
        }
        if let Some(safe) = throttle.safe_rate_per_s {
            row.safes.0 += 1;
            row.safes.1 += u64::from(safe_right(case, throttle, arrivals, safe));
        }
        if case.model == "queue" {
            row.close.0 += 1;
            row.close.1 += u64::from(queue_close(case, &report));
        }
        for (slot, (name, truth)) in row.coverage.iter_mut().zip(case.truth) {
            if let Some(value) = field(&report, name) {
                slot.0 += 1;
                slot.1 += u64::from(value.ci_low <= *truth && *truth <= value.ci_high);
            }
        }
    }
    row
}

/// A queue's depth within 10% (or ±2) of the truth, its rate within 5%.
fn queue_close(case: &Case, report: &Report) -> bool {
    case.truth.iter().all(|(name, truth)| {
        let Some(value) = field(report, name) else {
            return false;
        };
        let error = (value.estimate - truth).abs();
        match *name {
            "queue_depth" => error <= (0.1 * truth).max(2.0),
            _ => error <= 0.05 * truth,
        }
    })
}

/// The knee, a point estimate, within 5% of the rate the limiter sustains;
/// when the rate's own interval is wider than that (a lockout: no rate was
/// held, and the window's length is known to ±13%), within the interval.
fn knee_right(case: &Case, throttle: &gateprobe::report::ThrottleSection, knee: f64) -> bool {
    let close = (knee / case.sustained - 1.0).abs() <= 0.05;
    let wide = throttle.rate_per_s.is_some_and(|rate| {
        rate.ci_high - rate.ci_low > 0.1 * case.sustained
            && rate.ci_low <= case.sustained
            && case.sustained <= rate.ci_high
    });
    close || wide
}

/// The safe rate, a lower bound: at most the sustained rate, and at least
/// [`safe_floor`] of it.
fn safe_right(
    case: &Case,
    throttle: &gateprobe::report::ThrottleSection,
    arrivals: Arrivals,
    safe: f64,
) -> bool {
    safe <= case.sustained * 1.000_001 && safe >= safe_floor(throttle, arrivals) * case.sustained
}

/// The least share of the sustained rate a safe rate must reach: 80% when
/// the knee's search held steps with the engine's sends (jittered sends can
/// be refused by a concurrency limit a little below C ÷ duration, and the
/// safe rate is then the clean held step below; Poisson sends are refused
/// below any limit now and then; after a lockout there is no search).
fn safe_floor(throttle: &gateprobe::report::ThrottleSection, arrivals: Arrivals) -> f64 {
    let searched = throttle.steps.iter().any(|step| step.phase == "knee");
    if searched && arrivals != Arrivals::Poisson {
        0.8
    } else {
        0.0
    }
}

/// The bound on requests to a decision for a token bucket: B + 15R.
fn request_bound(case: &Case) -> Option<f64> {
    let value = |name: &str| {
        case.truth
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, v)| *v)
    };
    (case.model == "token_bucket")
        .then(|| value("burst").unwrap_or(0.0) + 15.0 * value("rate_per_s").unwrap_or(0.0))
}

/// Prints the table and checks every row: coverage ≥ 93% of the reported
/// intervals, the model right in ≥ 95% of runs, a bucket's requests within
/// B + 15R.
fn check_table(runs_for: impl Fn(&Case) -> u64, staged: bool) {
    println!("| limiter | sends | runs | model right | coverage (95% intervals) | knee ±5% | safe ≤ truth | queue: depth ±10%, rate ±5% | requests: median / max |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    // THROTTLE_CASE=text runs only the cases whose name contains it.
    let only = std::env::var("THROTTLE_CASE").unwrap_or_default();
    for (index, case) in cases().iter().enumerate() {
        let runs = runs_for(case);
        if runs == 0 || !case.name.contains(only.as_str()) {
            continue;
        }
        for (spacing, arrivals) in arrivals() {
            let row = tally(case, arrivals, runs, 1_000_000 * index as u64, staged);
            let coverage: Vec<String> = case
                .truth
                .iter()
                .zip(&row.coverage)
                .map(|((name, _), (reported, covered))| {
                    format!(
                        "{name} {:.1}% of {reported}",
                        100.0 * Row::share(*covered, *reported)
                    )
                })
                .collect();
            let median = row.requests[row.requests.len() / 2];
            let max = *row.requests.last().unwrap_or(&0);
            println!(
                "| {} | {spacing} | {} | {:.1}% | {} | {:.1}% | {:.1}% | {} | {median} / {max} |",
                case.name,
                row.runs,
                100.0 * Row::share(row.model_right, row.runs),
                coverage.join(", "),
                100.0 * Row::share(row.knees.1, row.knees.0),
                100.0 * Row::share(row.safes.1, row.safes.0),
                if row.close.0 == 0 {
                    "-".to_string()
                } else {
                    format!("{:.1}%", 100.0 * Row::share(row.close.1, row.close.0))
                },
            );
            let what = format!("{} ({spacing})", case.name);
            for (claim, count, of, least) in row.claims(case) {
                if of > 0 && Row::share(count, of) < least || claim == "model right" && of == 0 {
                    failures.push(format!("{what}: {claim} in {count}/{of}, under {least}"));
                }
            }
            // The engine sends evenly (with jitter): the bound is on that.
            if let Some(bound) = request_bound(case).filter(|_| arrivals != Arrivals::Poisson) {
                if max as f64 > bound {
                    failures.push(format!("{what}: {max} requests > B + 15R = {bound}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// CI: up to 1,000 runs for every case and arrival process (the first half
/// of the docs table's seeds), held to the same bounds; a row stops at 250
/// or 500 once every share is beyond doubt ([`EARLY_ALPHA`]).
#[test]
fn throttle_intervals_cover_in_virtual_time() {
    check_table(|_| 1000, true);
}

/// The table in docs/throttle.md: 2,000 runs for every case and arrival process.
#[test]
#[ignore = "two minutes: cargo test --release -- --ignored throttle_table --nocapture"]
fn throttle_table() {
    check_table(|_| 2000, false);
}

/// Development aid: the first few runs whose intervals miss the truth or
/// whose knee is wrong, with their evidence (THROTTLE_CASE picks the cases).
#[test]
#[ignore]
fn throttle_show_misses() {
    let plan = plan(&[]);
    let only = std::env::var("THROTTLE_CASE").unwrap_or_default();
    for (index, case) in cases().iter().enumerate() {
        if !case.name.contains(only.as_str()) {
            continue;
        }
        for (spacing, arrivals) in arrivals() {
            let mut shown = 0;
            let runs: u64 = std::env::var("THROTTLE_RUNS").map_or(2000, |n| n.parse().unwrap());
            for run in 0..runs {
                let seed = 1_000_000 * index as u64 + run;
                let report = simulate::probe(&plan, case.gateway, arrivals, seed).unwrap();
                let throttle = report.throttle.as_ref().unwrap();
                let missed: Vec<String> = case
                    .truth
                    .iter()
                    .filter_map(|(name, truth)| {
                        let value = field(&report, name)?;
                        (!(value.ci_low <= *truth && *truth <= value.ci_high)).then(|| {
                            format!(
                                "{name} {:.3} [{:.3}, {:.3}] vs {truth}",
                                value.estimate, value.ci_low, value.ci_high
                            )
                        })
                    })
                    .collect();
                let knee = throttle.knee_rate_per_s.unwrap_or(f64::NAN);
                let safe = throttle.safe_rate_per_s.unwrap_or(f64::NAN);
                let knee_wrong = !knee_right(case, throttle, knee)
                    || !safe_right(case, throttle, arrivals, safe);
                if missed.is_empty() && !knee_wrong {
                    continue;
                }
                println!(
                    "{} {spacing} seed {seed}: {missed:?} knee {knee} safe {safe}",
                    case.name
                );
                for evidence in &throttle.evidence {
                    println!("    evidence: {evidence}");
                }
                for step in throttle.steps.iter().filter(|s| s.phase == "knee") {
                    println!(
                        "    knee step {} rps: {} sent, {} refused",
                        step.rate_per_s, step.offered, step.throttled
                    );
                }
                shown += 1;
                if shown == 4 {
                    break;
                }
            }
        }
    }
}

/// The wrong model fails the model gate (exit 1): a fixed window of 50 a
/// second probed with `--expect-model token_bucket`, in virtual time, by
/// the probe's own procedure (the wall-clock probe of the same window is
/// `throttle::every_limiter_kind_in_the_simulator_is_named`).
#[test]
fn the_wrong_model_fails_its_gate_in_virtual_time() {
    let plan = plan(&["--expect-model", "token_bucket"]);
    let window = limiter(LimiterKind::FixedWindow, 50.0, 50, 50, 1.0, false);
    for seed in 1..=3 {
        let report = simulate::probe(&plan, window, Arrivals::Poisson, seed).unwrap();
        assert_eq!(
            report.throttle.as_ref().unwrap().model,
            "fixed_window",
            "{}",
            report.reason
        );
        let gate = report
            .checks
            .iter()
            .find(|check| check.name == "throttle model")
            .expect("the model gate");
        assert_eq!(
            gate.verdict,
            gateprobe::check::Verdict::Fail,
            "{}",
            gate.reason
        );
        assert_eq!((report.verdict, report.exit_code), (gate.verdict, 1));
    }
}
