//! The canary run's observer: feeds every response, in the order the
//! requests were sent, to the split's confidence sequences and the health
//! checks' counts and per-second blocks; looks once per second of the run;
//! re-plans from what it has seen; and stops the load as soon as every check
//! is decided, one fails, or the responses turn out not to be independent.
//!
//! Responses are fed in *send* order, not completion order: the assignment
//! to variants happens per request, and a slower canary's responses arrive
//! late, so completion order would make a 50 ms-slower canary look dead for
//! its first 50 ms. A reorder buffer (as long as the requests in flight)
//! restores the order; it also means that when a request of second s is fed,
//! every earlier request has completed, so seconds before s are whole.
use std::collections::{HashMap, VecDeque};

use super::drops::{Drops, Finding};
use super::health::{ErrorBounds, ErrorCounts, Standing};
use super::latency::{Bins, Decide, LatencyBounds};
use super::plan::CanaryPlan;
use super::split::{Split, State};
use crate::engine::{Observer, Verdict as Next};
use crate::record::Recorder;
use crate::sample::{Outcome as SampleOutcome, Sample};
use crate::stats::binomial::{dispersion_critical, dispersion_test, MIN_GROUP_TRIALS};

/// p-value below which the variant shares are taken to depend on the
/// connection or the second (a split that is not random per request). Small,
/// because it is looked at every second and only ever makes a verdict
/// inconclusive.
pub const DEPENDENCE_P: f64 = 1e-6;
/// Most connections tracked for the dependence check (memory stays flat).
const MAX_CONNECTIONS: usize = 10_000;

/// What the dependence check found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dependence {
    /// (χ², degrees of freedom, p) over connections with enough responses.
    pub by_connection: Option<(f64, usize, f64)>,
    /// The same over seconds.
    pub by_second: Option<(f64, usize, f64)>,
    pub connections: usize,
}

impl Dependence {
    /// Why the responses are not independent, if they are not, and what
    /// to do about it; `budget` is the responses the share check plans for
    /// (each connection would be one of them, with the split per connection).
    pub fn finding(&self, budget: u64) -> Option<String> {
        if let Some((statistic, freedom, p)) =
            self.by_connection.filter(|(_, _, p)| *p < DEPENDENCE_P)
        {
            return Some(format!(
                "the split sticks to connections: the canary's share differs between this run's {} connections far more than a per-request split allows (χ² = {statistic:.0} on {freedom} df, p = {}) — a gateway that pins a connection to one deployment, or a weighted round-robin whose order lines up with keep-alive connections. Each connection is then one draw of the split: rerun with --no-keepalive (a new connection per request), which decides on connections as the unit, about {budget} of them for this plan",
                self.connections,
                crate::units::format_p(p)
            ));
        }
        if let Some((statistic, freedom, p)) = self.by_second.filter(|(_, _, p)| *p < DEPENDENCE_P)
        {
            return Some(format!(
                "the split changes over time: the canary's share differs between seconds far more than a per-request split allows (χ² = {statistic:.0} on {freedom} df, p = {}) — the weight moved during the run (a rollout stepping it?): rerun once it holds still",
                crate::units::format_p(p)
            ));
        }
        None
    }
}

/// The health state of one non-baseline variant.
#[derive(Debug, Clone)]
pub struct VariantHealth {
    pub variant: usize,
    pub errors: Option<ErrorBounds>,
    pub latency: Option<LatencyBounds>,
    /// The drop test (with an expected share to attribute by).
    pub drops: Option<Drops>,
}

pub struct Watch<'a> {
    pub plan: &'a CanaryPlan,
    pub split: Split,
    /// Per class: the variant it belongs to, and its share test.
    variant_of_class: Vec<Option<(usize, Option<usize>)>>,
    /// Responses and failures per variant.
    pub counts: Vec<u64>,
    pub failed: Vec<u64>,
    pub classified: u64,
    pub unattributable: u64,
    next_index: u64,
    pending: VecDeque<Option<Slot>>,
    /// Per bin of due time: per variant, the latency block.
    bins: Bins,
    /// Per second: (responses of the first tested variant, classified).
    second_shares: Vec<(u64, u64)>,
    /// Per connection: (responses of the first tested variant, classified).
    connections: HashMap<u32, (u64, u64)>,
    /// What the dependence test over connections can see, kept as
    /// responses arrive (see [`Watch::dependence_testable`]).
    on_connections: OnConnections,
    looked_at_second: u64,
    pub health: Vec<VariantHealth>,
    pub dependence: Dependence,
    /// The plan as it stands (re-planned from the observed baseline).
    pub planned: u64,
    pub observed_baseline_error_rate: Option<f64>,
    /// The error check's plan: the rate it was made for, and the requests.
    error_plan: Option<(f64, u64)>,
    pub stopped: Option<String>,
}

/// Running counts over the tracked connections: what the dependence test
/// can see, kept in O(1) per response.
#[derive(Debug, Clone, Copy, Default)]
struct OnConnections {
    /// Responses on tracked connections.
    responses: u64,
    /// Those on connections with [`MIN_GROUP_TRIALS`] or more (the test's).
    covered: u64,
    /// The test's connections; those with a response of the first tested
    /// variant; those with a response of another.
    kept: u64,
    kept_with_hits: u64,
    kept_with_misses: u64,
    /// Connections the test needs with no variation among them before it
    /// can say a split per connection would have shown one: a split per
    /// connection gives none of `K` connections the tested variant (share
    /// p) with chance (1 − p)^K ≤ 1%.
    needed_without_variation: u64,
    /// (kept, the χ² a split per connection must reach over that many to be
    /// flagged), computed again only when `kept` changes.
    critical: (u64, f64),
}

impl OnConnections {
    fn new(share: f64) -> Self {
        let p = share.min(1.0 - share).clamp(0.01, 0.5);
        Self {
            needed_without_variation: (0.01_f64.ln() / (1.0 - p).ln()).ceil() as u64,
            ..Self::default()
        }
    }

    /// One more response on a connection: its (hits, responses) before and
    /// after; the connection leaves the counts as it was and enters as it is.
    fn add(&mut self, before: (u64, u64), after: (u64, u64)) {
        self.responses += 1;
        for ((hits, n), sign) in [(before, -1_i64), (after, 1)] {
            if n < MIN_GROUP_TRIALS {
                continue;
            }
            let add = |counter: &mut u64, amount: u64| {
                *counter = counter.wrapping_add_signed(sign * amount as i64);
            };
            add(&mut self.covered, n);
            add(&mut self.kept, 1);
            add(&mut self.kept_with_hits, u64::from(hits > 0));
            add(&mut self.kept_with_misses, u64::from(hits < n));
        }
    }
}

/// A request in send order: its response, or a hole (dropped, aborted).
#[derive(Debug, Clone, Copy)]
enum Slot {
    Response(Fed),
    Hole { second: u64 },
}

/// One fed response: its class (or none), failure flag, latency, due
/// time and second, connection.
#[derive(Debug, Clone, Copy)]
struct Fed {
    class: Option<u16>,
    failed: bool,
    latency_ms: f64,
    due_us: u64,
    second: u64,
    connection: u32,
}

impl<'a> Watch<'a> {
    pub fn new(plan: &'a CanaryPlan) -> Self {
        let class_count = plan.load.classifier.names().len();
        let mut variant_of_class = vec![None; class_count];
        for (index, variant) in plan.variants.iter().enumerate() {
            variant_of_class[variant.class as usize] = Some((index, variant.test));
        }
        let health = match (&plan.health, plan.baseline) {
            (Some(_), Some(baseline)) => plan
                .variants
                .iter()
                .enumerate()
                .filter(|(index, variant)| *index != baseline && variant.share > 0.0)
                .map(|(variant, _)| VariantHealth {
                    variant,
                    errors: None,
                    latency: None,
                    drops: None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Self {
            plan,
            split: plan.split.clone(),
            variant_of_class,
            counts: vec![0; plan.variants.len()],
            failed: vec![0; plan.variants.len()],
            classified: 0,
            unattributable: 0,
            next_index: 0,
            pending: VecDeque::new(),
            bins: Bins::new(plan.latency_bin_us, plan.variants.len()),
            second_shares: Vec::new(),
            connections: HashMap::new(),
            on_connections: OnConnections::new(
                plan.variants
                    .iter()
                    .find(|variant| variant.test == Some(0))
                    .map_or(0.5, |variant| variant.share),
            ),
            looked_at_second: 0,
            health,
            dependence: Dependence::default(),
            planned: plan.planned_requests,
            observed_baseline_error_rate: None,
            error_plan: None,
            stopped: None,
        }
    }

    fn feed(&mut self, fed: Fed) {
        if fed.second > self.looked_at_second {
            self.look(fed.second);
        }
        let Some(class) = fed.class else {
            return;
        };
        match self.variant_of_class.get(class as usize).copied().flatten() {
            Some((variant, test)) => {
                self.classified += 1;
                self.counts[variant] += 1;
                self.failed[variant] += u64::from(fed.failed);
                self.split.observe(test);
                let second = fed.second as usize;
                if self.second_shares.len() <= second {
                    self.second_shares.resize(second + 1, (0, 0));
                }
                self.bins.add(fed.due_us, variant, fed.latency_ms);
                self.drop_look(Some(variant));
                if let Some(look) = self
                    .plan
                    .latency
                    .as_ref()
                    .and_then(|design| design.look_at(self.classified))
                {
                    self.latency_look(Some(look));
                }
                let first_tested = test == Some(0);
                let share = &mut self.second_shares[second];
                share.0 += u64::from(first_tested);
                share.1 += 1;
                // A connection per request (--no-keepalive) makes a split
                // per connection one per request: nothing to test, nothing
                // to keep.
                if fed.connection != 0
                    && !self.plan.load.no_keepalive
                    && (self.connections.len() < MAX_CONNECTIONS
                        || self.connections.contains_key(&fed.connection))
                {
                    let entry = self.connections.entry(fed.connection).or_default();
                    let before = *entry;
                    entry.0 += u64::from(first_tested);
                    entry.1 += 1;
                    self.on_connections.add(before, *entry);
                }
            }
            None => {
                self.unattributable += 1;
                self.split.observe_unattributable();
            }
        }
    }

    /// Once per second of the run: the health checks, the dependence check
    /// and the plan, over every whole second before `now`.
    fn look(&mut self, now: u64) {
        self.looked_at_second = now;
        let whole = (now as usize).min(self.second_shares.len());
        self.dependence = Dependence {
            by_connection: dispersion_test(self.connections.values().copied()),
            by_second: dispersion_test(self.second_shares[..whole].iter().copied()),
            connections: self.connections.len(),
        };
        self.check_health();
        // Re-planning searches over sample sizes: every second for the
        // first ten, then every 5 s.
        if now <= 10 || now % 5 == 0 {
            self.replan();
        }
    }

    /// Per bin of due time, each variant's latency block.
    pub fn latency_bins(&self) -> &Bins {
        &self.bins
    }

    /// The latency check at planned look `look` (a decision there is
    /// final), or — with `None`, at the end of the run — one last look
    /// with the α left when the run ended before its plan.
    fn latency_look(&mut self, look: Option<usize>) {
        let (Some(spec), Some(baseline), Some(design)) =
            (&self.plan.health, self.plan.baseline, &self.plan.latency)
        else {
            return;
        };
        let taken = design.taken(self.classified);
        let at = match look {
            Some(look) => Decide::Look(design, look),
            None if taken < design.looks.len() => Decide::Once(design.final_bound(taken)),
            None => Decide::Watch,
        };
        for health in &mut self.health {
            if health
                .latency
                .is_some_and(|latency| latency.standing != Standing::Undecided)
            {
                continue;
            }
            let pairs = self.bins.pairs(health.variant, baseline);
            let now = LatencyBounds::from_pairs(&pairs, spec.max_latency_increase, spec.alpha, at);
            if now.is_some() {
                health.latency = now;
            }
        }
    }

    /// The drop test of every variant compared with the baseline when a
    /// response of `fed` (one of them) brings their responses to a look;
    /// with `fed` None, at the end: whatever the counts show, undecided.
    fn drop_look(&mut self, fed: Option<usize>) {
        let Some(baseline) = self.plan.baseline else {
            return;
        };
        for health in &mut self.health {
            let variant = health.variant;
            if fed.is_some_and(|fed| fed != variant && fed != baseline) {
                continue;
            }
            let Some(design) = self.plan.drop_design(variant) else {
                continue;
            };
            let (mine, theirs) = (self.counts[variant], self.counts[baseline]);
            let last;
            let (design, look) = match fed {
                Some(_) => match design.look_at(mine + theirs) {
                    Some(look) => (design, Some(look)),
                    None => continue,
                },
                // The run ended before the plan: one last look.
                None => match design.final_look(mine + theirs) {
                    Some(final_look) => {
                        last = final_look;
                        (&last, Some(last.looks.len() - 1))
                    }
                    None => (design, None),
                },
            };
            let now = Drops::at(design, look, mine, theirs, self.unattributable);
            // A finding of drops is final, and one of a deficit too large
            // for drops stays until a later look finds drops.
            let keep = health.drops.is_some_and(|before| match before.finding {
                Finding::Drops => true,
                Finding::NotDrops => now.finding != Finding::Drops,
                _ => false,
            });
            if !keep {
                health.drops = Some(now);
            }
        }
    }

    /// The error checks on everything fed so far.
    pub fn check_health(&mut self) {
        let (Some(spec), Some(baseline)) = (&self.plan.health, self.plan.baseline) else {
            return;
        };
        for health in &mut self.health {
            let variant = health.variant;
            health.errors = Some(spec.error_bounds(&ErrorCounts {
                variant_failed: self.failed[variant],
                variant: self.counts[variant],
                baseline_failed: self.failed[baseline],
                baseline: self.counts[baseline],
                unattributable: self.unattributable,
            }));
        }
    }

    /// Re-plans the sample from the observed baseline error rate (never
    /// past the run's cap; the split's and the latency check's plans are
    /// fixed: their bounds depend on them).
    fn replan(&mut self) {
        let (Some(spec), Some(baseline)) = (&self.plan.health, self.plan.baseline) else {
            return;
        };
        let baseline_count = self.counts[baseline];
        let mut planned = self.plan.split.horizon().max(
            self.plan
                .latency
                .as_ref()
                .map_or(0, |design| design.budget()),
        );
        let rate = if baseline_count >= 200 {
            let rate = self.failed[baseline] as f64 / baseline_count as f64;
            self.observed_baseline_error_rate = Some(rate);
            // Two standard errors above the estimate: a plan for a rate a
            // little worse than seen, so the power holds when it is.
            rate + 2.0 * (rate.max(1.0 / baseline_count as f64) / baseline_count as f64).sqrt()
        } else {
            spec.assumed_error_rate
        };
        // Planning searches over sample sizes (milliseconds): only again
        // when the rate planned for has moved by a tenth.
        let stale = self.error_plan.is_none_or(|(planned_for, _)| {
            (rate - planned_for).abs() > 0.1 * planned_for.max(1e-4)
        });
        if stale {
            self.error_plan = Some((rate, self.plan.error_requests(spec, rate)));
        }
        planned = planned.max(self.error_plan.map_or(0, |(_, requests)| requests));
        self.planned = planned.min(self.plan.max_requests);
    }

    /// Whether the checks need more responses.
    fn verdict(&mut self) -> Option<String> {
        if let Some(finding) = self.dependence.finding(self.plan.split.horizon()) {
            return Some(finding);
        }
        // A split decided early, on a few responses per connection, may be
        // a split per connection seen through a handful of them: the run
        // goes on until the dependence test can tell (or the plan ends).
        let testable = self.dependence_testable();
        if self.split.state() == State::Failed && testable {
            return Some("the split check failed".to_string());
        }
        let standings: Vec<Standing> = self
            .health
            .iter()
            .flat_map(|health| {
                [
                    health.errors.map_or(Standing::Undecided, |e| e.standing),
                    health.latency.map_or(Standing::Undecided, |l| l.standing),
                ]
            })
            .collect();
        let drops = self.health.iter().any(|health| {
            health
                .drops
                .is_some_and(|drops| drops.finding == Finding::Drops)
        });
        if standings.contains(&Standing::Fail) || drops {
            return Some("a health check failed".to_string());
        }
        let split_done = self.split.state() == State::Decided && testable;
        if split_done && standings.iter().all(|s| *s == Standing::Pass) {
            return Some("every check is decided".to_string());
        }
        if self.classified + self.unattributable >= self.planned {
            return Some(format!(
                "the planned sample ({} responses) is complete",
                self.planned
            ));
        }
        None
    }

    /// Whether the dependence test over connections would have flagged a
    /// split per connection by now, so that a split decision may stop the
    /// run: at least half the responses on connections it compares, and
    /// either variation among them with enough responses that a wholly
    /// sticky split would be flagged (its χ² is then exactly the responses
    /// compared: Σ n(1 − p̂)/p̂ over the canary's connections plus Σ n·p̂/(1 − p̂)
    /// over the others), or, with none, so many connections that a sticky
    /// split would have given some of them the tested variant. Always over
    /// one HTTP/2 connection (nothing to compare, and waiting adds nothing)
    /// and with none tracked (a connection per request). Until then the run
    /// goes on, to its plan and bounds at most.
    fn dependence_testable(&mut self) -> bool {
        let on = &mut self.on_connections;
        if on.responses == 0 || (self.plan.load.http2 && self.connections.len() <= 1) {
            return true;
        }
        if 2 * on.covered < on.responses || on.kept < 2 {
            return false;
        }
        if on.kept_with_hits == 0 || on.kept_with_misses == 0 {
            return on.kept >= on.needed_without_variation;
        }
        if on.critical.0 != on.kept {
            on.critical = (
                on.kept,
                dispersion_critical(on.kept as usize - 1, DEPENDENCE_P),
            );
        }
        on.covered as f64 > on.critical.1
    }

    /// Feeds what is left and looks one last time (the end of the run).
    pub fn finish(&mut self) {
        while let Some(slot) = self.pending.pop_front() {
            if let Some(Slot::Response(fed)) = slot {
                self.feed(fed);
            }
        }
        self.look(self.looked_at_second);
        self.latency_look(None);
        self.drop_look(None);
        let _ = self.split.finish();
    }
}

impl Observer for Watch<'_> {
    fn observe(&mut self, sample: &Sample, _recorder: &Recorder) -> Next {
        let second = sample.due_us / 1_000_000;
        // Dropped and aborted requests never reached a variant: a hole in
        // the order, not a response.
        let slot = if sample.outcome == SampleOutcome::Completed {
            Slot::Response(Fed {
                class: Some(sample.class),
                failed: sample.failed,
                latency_ms: sample.latency_us() as f64 / 1000.0,
                due_us: sample.due_us,
                second,
                connection: sample.connection,
            })
        } else {
            Slot::Hole { second }
        };
        // The order is this shard's own: its k-th request is global index
        // shard + k·count.
        let order = self.plan.load.shard().local(sample.index);
        if let Some(offset) = order.checked_sub(self.next_index) {
            let offset = offset as usize;
            if self.pending.len() <= offset {
                self.pending.resize(offset + 1, None);
            }
            self.pending[offset] = Some(slot);
            while let Some(Some(slot)) = self.pending.front().copied() {
                self.pending.pop_front();
                self.next_index += 1;
                match slot {
                    Slot::Response(fed) => self.feed(fed),
                    Slot::Hole { second } => {
                        if second > self.looked_at_second {
                            self.look(second);
                        }
                    }
                }
            }
        }
        // A shard runs to its part of the fixed horizon: an early stop of
        // its own would leave the shards' union short of the planned run.
        if self.stopped.is_none() && self.plan.load.shard().count == 1 {
            self.stopped = self.verdict();
        }
        match &self.stopped {
            Some(reason) => Next::Stop(reason.clone()),
            None => Next::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The running counts equal a recount over the connections, response
    /// after response.
    #[test]
    fn connection_counts_equal_a_recount() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut connections: HashMap<u32, (u64, u64)> = HashMap::new();
        let mut on = OnConnections::new(0.1);
        assert_eq!(on.needed_without_variation, 44);
        for _ in 0..5_000 {
            let connection = rng.random_range(0..40u32);
            let entry = connections.entry(connection).or_default();
            let before = *entry;
            entry.0 += u64::from(rng.random::<f64>() < 0.1 + 0.02 * f64::from(connection % 3));
            entry.1 += 1;
            on.add(before, *entry);
            let kept: Vec<&(u64, u64)> = connections
                .values()
                .filter(|(_, n)| *n >= MIN_GROUP_TRIALS)
                .collect();
            assert_eq!(on.kept, kept.len() as u64);
            assert_eq!(on.covered, kept.iter().map(|(_, n)| n).sum::<u64>());
            assert_eq!(
                on.kept_with_hits,
                kept.iter().filter(|(h, _)| *h > 0).count() as u64
            );
            assert_eq!(
                on.kept_with_misses,
                kept.iter().filter(|(h, n)| h < n).count() as u64
            );
            assert_eq!(
                on.responses,
                connections.values().map(|(_, n)| n).sum::<u64>()
            );
        }
    }
}
