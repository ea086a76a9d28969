//! The throttle probe in virtual time: the very procedure a real probe runs
//! ([`super::probe_with`]: its phases, stop rule, lockout watch, recovery,
//! estimates and identification) on a gateway simulated request by request
//! with the simulator's own limiters ([`crate::sim::bucket`]) — no HTTP, no
//! clock — so that the coverage of every interval and the accuracy of the
//! identification can be measured over thousands of seeded runs in seconds.
//!
//! What is simulated: the limiter (any kind the simulator has) and a
//! concurrency limit behind it (a Lambda function's reserved concurrency),
//! a backend duration, a one-way network delay with jitter each way, and
//! the client's sends — evenly spaced as the engine's open model sends,
//! with jitter around each due time, or a Poisson process of the same rate.
//! Answers reach the probe in the order they complete, as from the engine.
//! Not simulated: the pacer (tests keep `--max-rate` above what is offered).
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{probe_with, Runner, ThrottlePlan};
use crate::engine::{EndReason, Observer, RunInfo, Verdict as Next};
use crate::plan::schedule::{RateCurve, Schedule};
use crate::plan::LoadPlan;
use crate::record::Recorder;
use crate::report::Report;
use crate::sample::Sample;
use crate::sim::bucket::{Admission, Limiter};
use crate::sim::config::Throttle;

/// How the client's sends are spaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// Each send at its due time plus a uniform jitter in ±`jitter_s`.
    Even { jitter_s: f64 },
    /// A Poisson process with the schedule's rate.
    Poisson,
}

/// The simulated gateway and its backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gateway {
    pub limiter: Option<Throttle>,
    /// Requests in progress at most, and how long each takes (s).
    pub concurrency: Option<(u64, f64)>,
    /// How long an admitted request takes without a concurrency limit (s).
    pub backend_s: f64,
    /// One-way network delay, and a uniform extra of up to this, each way (s).
    pub network_s: f64,
    pub network_jitter_s: f64,
}

impl Gateway {
    /// A gateway with this limiter, a 2 ms backend and a loopback-like network.
    pub fn limited(limiter: Throttle) -> Self {
        Self {
            limiter: Some(limiter),
            concurrency: None,
            backend_s: 0.002,
            network_s: 0.000_1,
            network_jitter_s: 0.000_2,
        }
    }

    /// A backend with a concurrency limit and nothing else.
    pub fn concurrency(limit: u64, duration_s: f64) -> Self {
        Self {
            limiter: None,
            concurrency: Some((limit, duration_s)),
            ..Self::limited(Throttle::token_bucket(1.0, 1))
        }
    }
}

/// Runs the probe `plan` against `gateway` in virtual time.
pub fn probe(
    plan: &ThrottlePlan,
    gateway: Gateway,
    arrivals: Arrivals,
    seed: u64,
) -> Result<Report> {
    let class = |name: &str| plan.load.classifier.index_of(name);
    let throttled =
        class(crate::throttle::THROTTLED).ok_or_else(|| anyhow!("no throttled class"))?;
    let special = [plan.quota, plan.throttled, plan.forbidden];
    let admitted = (0..plan.load.classifier.names().len() as u16)
        .find(|index| !special.contains(&Some(*index)))
        .ok_or_else(|| anyhow!("no class for admitted requests"))?;
    let mut runner = Virtual {
        limiter: gateway.limiter.map(|throttle| Limiter::new(throttle, 0.0)),
        gateway,
        arrivals,
        rng: StdRng::seed_from_u64(seed),
        now_s: 0.0,
        epoch: Instant::now(),
        busy_until: BinaryHeap::new(),
        throttled_class: throttled,
        admitted_class: admitted,
    };
    block_on(probe_with(plan, &mut runner))
}

/// Polls a future that never waits (nothing in virtual time does).
fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => Err(anyhow!("the virtual probe waited on something real")),
    }
}

struct Virtual {
    gateway: Gateway,
    limiter: Option<Limiter>,
    arrivals: Arrivals,
    rng: StdRng,
    /// The virtual clock between phases (s).
    now_s: f64,
    epoch: Instant,
    /// Ends of the invocations in progress (ns), for the concurrency limit.
    busy_until: BinaryHeap<Reverse<u64>>,
    throttled_class: u16,
    admitted_class: u16,
}

/// Seconds to whole nanoseconds (the heap's keys).
fn nanos(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1e9).round() as u64
}

/// A phase's send times (s from its start), in order, made as they are
/// needed (a phase may plan a minute of sends and stop after two seconds).
struct SendTimes<'a> {
    curve: &'a RateCurve,
    duration_s: f64,
    most: u64,
    next_index: u64,
    given: u64,
    /// Jittered sends not yet given, soonest first (ns).
    ahead: BinaryHeap<Reverse<u64>>,
    /// The Poisson process's count so far.
    count: f64,
}

impl<'a> SendTimes<'a> {
    fn new(curve: &'a RateCurve, duration_s: f64, most: u64) -> Self {
        Self {
            curve,
            duration_s,
            most,
            next_index: 0,
            given: 0,
            ahead: BinaryHeap::new(),
            count: 0.0,
        }
    }

    fn next(&mut self, arrivals: Arrivals, rng: &mut StdRng) -> Option<f64> {
        if self.given >= self.most {
            return None;
        }
        let at = match arrivals {
            Arrivals::Even { jitter_s } => {
                // Jitter reorders sends within ±jitter: keep drawing until the
                // next due time, less the jitter, is past the soonest drawn.
                loop {
                    let due = self
                        .curve
                        .due(self.next_index)
                        .map(|due| due.as_secs_f64())
                        .filter(|due| *due <= self.duration_s);
                    let soonest = self.ahead.peek().map(|next| next.0 as f64 / 1e9);
                    match (due, soonest) {
                        (Some(due), soonest) if soonest.is_none_or(|s| due - jitter_s <= s) => {
                            let jitter = (rng.random::<f64>() * 2.0 - 1.0) * jitter_s;
                            self.ahead.push(Reverse(nanos(due + jitter)));
                            self.next_index += 1;
                        }
                        _ => break,
                    }
                }
                self.ahead.pop()?.0 as f64 / 1e9
            }
            Arrivals::Poisson => {
                // A unit-rate Poisson process mapped through the schedule's
                // own count-to-time function (linear between due times).
                self.count += -(1.0 - rng.random::<f64>()).ln();
                let whole = self.count.floor() as u64;
                let before = self.curve.due(whole)?.as_secs_f64();
                let after = self.curve.due(whole + 1)?.as_secs_f64();
                let at = before + (self.count - whole as f64) * (after - before);
                if at > self.duration_s {
                    return None;
                }
                at
            }
        };
        self.given += 1;
        Some(at)
    }
}

impl Virtual {
    fn network(&mut self) -> f64 {
        self.gateway.network_s + self.rng.random::<f64>() * self.gateway.network_jitter_s
    }

    /// The gateway's answer to a request arriving at `arrival_s`:
    /// admitted or not, and when it leaves the gateway.
    fn answer(&mut self, arrival_s: f64) -> (bool, f64) {
        let mut start_s = arrival_s;
        if let Some(limiter) = self.limiter.as_mut() {
            match limiter.check(arrival_s) {
                Admission::Admit { delay_s } => {
                    limiter.charge();
                    start_s += delay_s;
                }
                Admission::Refuse => {
                    limiter.refused();
                    return (false, arrival_s);
                }
            }
        }
        let Some((limit, duration_s)) = self.gateway.concurrency else {
            return (true, start_s + self.gateway.backend_s);
        };
        let now = nanos(start_s);
        while self.busy_until.peek().is_some_and(|end| end.0 <= now) {
            self.busy_until.pop();
        }
        if self.busy_until.len() as u64 >= limit {
            return (false, start_s);
        }
        self.busy_until.push(Reverse(nanos(start_s + duration_s)));
        (true, start_s + duration_s)
    }
}

/// A sample waiting for its answer, ordered by completion.
struct Pending {
    done_us: u64,
    sample: Sample,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.done_us, self.sample.index) == (other.done_us, other.sample.index)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.done_us, self.sample.index).cmp(&(other.done_us, other.sample.index))
    }
}

impl Runner for Virtual {
    async fn idle(&mut self, idle: Duration) -> bool {
        self.now_s += idle.as_secs_f64();
        false
    }

    /// Long because it is the virtual-time twin of the engine's run: send
    /// times, the limiter's answers and the observer stepped in one event
    /// loop over a heap of pending responses.
    async fn run(
        &mut self,
        phase: &LoadPlan,
        watch: &mut dyn Observer,
    ) -> Result<(Recorder, RunInfo)> {
        let Schedule::Open(curve) = &phase.schedule else {
            return Err(anyhow!("the virtual probe runs open-model phases only"));
        };
        let t0 = self.now_s;
        watch.started(self.epoch + Duration::from_secs_f64(t0));
        let mut recorder = Recorder::new(phase.classifier.names());
        let mut times = SendTimes::new(
            curve,
            phase.duration.as_secs_f64(),
            phase.max_requests.unwrap_or(u64::MAX),
        );
        let mut pending: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
        let mut stopped: Option<String> = None;
        let (mut last_sent_s, mut last_done_s) = (0.0_f64, 0.0_f64);
        let mut observe = |pending: &mut BinaryHeap<Reverse<Pending>>,
                           until_us: u64,
                           stopped: &mut Option<String>,
                           recorder: &mut Recorder| {
            while pending
                .peek()
                .is_some_and(|next| next.0.done_us <= until_us)
            {
                let Some(Reverse(next)) = pending.pop() else {
                    break;
                };
                recorder.record(&next.sample);
                if let Next::Stop(reason) = watch.observe(&next.sample, recorder) {
                    stopped.get_or_insert(reason);
                }
            }
        };
        let mut index = 0_u64;
        while let Some(sent_s) = times.next(self.arrivals, &mut self.rng) {
            index += 1;
            let sent_us = (sent_s * 1e6).round() as u64;
            observe(&mut pending, sent_us, &mut stopped, &mut recorder);
            if stopped.is_some() {
                break;
            }
            let arrival = t0 + sent_s + self.network();
            let (admitted, leaves) = self.answer(arrival);
            let done_s = leaves + self.network() - t0;
            last_sent_s = sent_s;
            last_done_s = last_done_s.max(done_s);
            let sample = Sample {
                done_us: (done_s * 1e6).round() as u64,
                status: if admitted { 200 } else { 429 },
                class: if admitted {
                    self.admitted_class
                } else {
                    self.throttled_class
                },
                failed: !admitted,
                connection: 1,
                in_flight: pending.len() as u32 + 1,
                ..Sample::sent(index - 1, sent_us, sent_us)
            };
            pending.push(Reverse(Pending {
                done_us: sample.done_us,
                sample,
            }));
        }
        observe(&mut pending, u64::MAX, &mut stopped, &mut recorder);
        self.now_s = t0 + last_sent_s.max(last_done_s) + 0.001;
        let info = RunInfo {
            started_unix_ms: 0,
            window_s: last_sent_s,
            target_rate_per_s: None,
            wall_s: last_done_s,
            end: stopped.map_or(EndReason::Finished, EndReason::Stopped),
            start_late_ms: None,
        };
        Ok((recorder, info))
    }
}
