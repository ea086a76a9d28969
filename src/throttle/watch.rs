//! The probe's observer: every response of every phase on one clock, the
//! lockout watch, the overload's stop rule, and what the probe identified.
use std::time::Instant;

use super::estimate::{self, Bin, Fit, Kind, Model, Record, Step, Timeline, BIN_S};
use super::identify::{self, Identified, Limiter};
use super::{is_tight, ThrottlePlan, CONFIDENCE};
use crate::engine::{EndReason, Observer, RunInfo, Verdict as Next};
use crate::record::Recorder;
use crate::sample::{Outcome, Sample};

/// …and at least this much throttled traffic was seen (a window of a second
/// shows its clumps within two).
const MIN_OVERLOAD_S: f64 = 2.0;
/// Clumps of admissions (windows) the overload must see before a window is
/// measured: the first may be a tail and the last cut short.
const WINDOWS_TO_SEE: usize = 5;

/// 429s that end the search.
const SEARCH_THROTTLES: u64 = 3;
/// 401/403 responses (and at least this share of all) that stop the probe.
const FORBIDDEN_STOP: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Search,
    Overload,
    /// After a lockout: single probes further and further apart until one
    /// is admitted again.
    Recovery,
    /// Once recovered and two windows later: a fast burst into the empty
    /// window, stopped at its first refusal — it admits exactly the limit.
    Burst,
    /// After the overload: held steps bracketing the knee, each after a
    /// pause that lets the limiter admit again, each stopped at its first
    /// refusal.
    Knee,
}

/// Under sustained overload, this long without an admission (and at least
/// [`LOCKOUT_REFUSALS`] refusals) is a lockout: the probe backs off at once.
const LOCKOUT_S: f64 = 1.5;
const LOCKOUT_REFUSALS: u64 = 10;
/// Why the probe stopped sending before its bounds.
#[derive(Debug, Clone, PartialEq)]
pub enum Halt {
    Quota,
    Forbidden,
    RetryAfter(f64),
}

/// Watches every response of every phase on one clock (the search's start).
pub struct Watch<'a> {
    pub plan: &'a ThrottlePlan,
    pub phase: Phase,
    pub epoch: Option<Instant>,
    /// The current run's start on the probe's clock, seconds.
    pub run_offset_s: f64,
    pub timeline: Timeline,
    pub throttled_this_run: u64,
    pub responses: u64,
    pub forbidden: u64,
    pub admitted: u64,
    pub retry_after_count: u64,
    pub retry_after_s: Option<f64>,
    pub halt: Option<Halt>,
    /// Newest completion and slowest exchange seen, for deciding which bins are final.
    pub last_done_s: f64,
    pub slowest_s: f64,
    pub next_fit_s: f64,
    pub tight: bool,
    /// Lockout watch: the latest admission sent under overload, and the
    /// refusals sent after it.
    pub last_admitted_sent_s: f64,
    pub refused_since_admitted: u64,
    pub lockout: Option<identify::Lockout>,
    /// When the recovery probes began.
    pub recovery_from_s: Option<f64>,
    /// The sustained overload's rate, once it began.
    pub overload_rate_per_s: f64,
    /// 5xx answers counted as admitted.
    pub server_errors: u64,
    /// The knee's held steps, and the last send before them (the analyses
    /// read up to there: these steps only test the rate they found).
    pub knee_steps: Vec<(Step, Bin)>,
    pub knee_from_s: Option<f64>,
}

impl<'a> Watch<'a> {
    /// A watch for the probe's first phase (the search), before any run.
    pub fn new(plan: &'a ThrottlePlan) -> Self {
        Watch {
            plan,
            phase: Phase::Search,
            epoch: None,
            run_offset_s: 0.0,
            timeline: Timeline::default(),
            throttled_this_run: 0,
            responses: 0,
            forbidden: 0,
            admitted: 0,
            retry_after_count: 0,
            retry_after_s: None,
            halt: None,
            last_done_s: 0.0,
            slowest_s: 0.0,
            next_fit_s: f64::INFINITY,
            tight: false,
            last_admitted_sent_s: 0.0,
            refused_since_admitted: 0,
            lockout: None,
            recovery_from_s: None,
            overload_rate_per_s: 0.0,
            server_errors: 0,
            knee_steps: Vec::new(),
            knee_from_s: None,
        }
    }
}

impl Watch<'_> {
    /// The analyses read what was sent before the knee's search (whose
    /// steps only test the rate they found).
    pub fn analysed_until_s(&self) -> f64 {
        self.knee_from_s.unwrap_or(f64::INFINITY)
    }

    fn kind(&self, sample: &Sample) -> Kind {
        let class = Some(sample.class);
        if sample.error.is_some() || class == self.plan.quota || class == self.plan.forbidden {
            Kind::Other
        } else if class == self.plan.throttled {
            Kind::Throttled
        } else {
            Kind::Admitted
        }
    }

    /// Recognises a lockout under overload, and its end while recovering.
    fn watch_lockout(&mut self, sent_s: f64, done_s: f64, kind: Kind) -> Option<String> {
        match (self.phase, kind) {
            (Phase::Overload, Kind::Admitted) => {
                if sent_s > self.last_admitted_sent_s {
                    self.last_admitted_sent_s = sent_s;
                    self.refused_since_admitted = 0;
                }
                None
            }
            (Phase::Overload, Kind::Throttled) => {
                let silent_from = self
                    .last_admitted_sent_s
                    .max(self.timeline.fit_from_s.unwrap_or(0.0));
                if sent_s > silent_from {
                    self.refused_since_admitted += 1;
                }
                if self.lockout.is_none()
                    && sent_s - silent_from >= LOCKOUT_S
                    && self.refused_since_admitted >= LOCKOUT_REFUSALS
                {
                    self.lockout = Some(identify::Lockout {
                        silent_from_s: silent_from,
                        recognised_at_s: done_s,
                        last_flood_s: sent_s,
                        flood_rate_per_s: self.overload_rate_per_s,
                        last_refused_probe_s: None,
                        recovered_at_s: None,
                        refused_after: 0,
                        burst_admitted: None,
                    });
                    return Some(format!(
                        "no admission for {:.1} s under overload: a lockout; backing off",
                        sent_s - silent_from
                    ));
                }
                None
            }
            (Phase::Recovery, Kind::Admitted) => {
                let lockout = self.lockout.as_mut()?;
                lockout.recovered_at_s.get_or_insert(sent_s);
                Some("a request was admitted again: the lockout is over".to_string())
            }
            (Phase::Burst, Kind::Admitted) => {
                if let Some(lockout) = self.lockout.as_mut() {
                    *lockout.burst_admitted.get_or_insert(0) += 1;
                }
                None
            }
            (Phase::Burst, Kind::Throttled) => {
                let lockout = self.lockout.as_mut()?;
                lockout.burst_admitted.get_or_insert(0);
                Some("the burst filled the window".to_string())
            }
            (Phase::Recovery, Kind::Throttled) => {
                if let Some(lockout) = self.lockout.as_mut() {
                    lockout.last_refused_probe_s = Some(
                        lockout
                            .last_refused_probe_s
                            .map_or(sent_s, |last| last.max(sent_s)),
                    );
                }
                None
            }
            _ => None,
        }
    }

    fn overload_is_tight(&mut self) -> bool {
        let final_before = self.last_done_s - 2.0 * self.slowest_s - 0.05;
        let from = self.timeline.fit_from_s.unwrap_or(f64::INFINITY);
        if final_before - from < MIN_OVERLOAD_S {
            return false;
        }
        let records = &self.timeline.records;
        let bucket_tight =
            estimate::fit(&self.timeline, final_before, CONFIDENCE).is_some_and(|fit| {
                let windows_seen = fit.model != Model::Window
                    || identify::clumps_since(records, from, self.overload_rate_per_s)
                        >= WINDOWS_TO_SEE;
                is_tight(&fit) && windows_seen
            });
        // A concurrency limit admits as completions free slots, not as a
        // bucket refills: its own evidence ends the overload.
        bucket_tight || identify::concurrency_decided(records, from)
    }
}

impl Observer for Watch<'_> {
    fn started(&mut self, t0: Instant) {
        let epoch = *self.epoch.get_or_insert(t0);
        self.run_offset_s = t0.saturating_duration_since(epoch).as_secs_f64();
        self.throttled_this_run = 0;
        if self.phase == Phase::Overload {
            self.timeline.fit_from_s = Some(self.run_offset_s);
            self.next_fit_s = self.run_offset_s + MIN_OVERLOAD_S;
        }
        if self.phase == Phase::Recovery {
            self.recovery_from_s = Some(self.run_offset_s);
        }
    }

    fn observe(&mut self, sample: &Sample, _recorder: &Recorder) -> Next {
        if sample.outcome != Outcome::Completed {
            return Next::Continue;
        }
        let sent_s = self.run_offset_s + sample.sent_us as f64 / 1e6;
        let done_s = self.run_offset_s + sample.done_us as f64 / 1e6;
        self.last_done_s = self.last_done_s.max(done_s);
        self.slowest_s = self.slowest_s.max(done_s - sent_s);
        let kind = self.kind(sample);
        self.timeline.add(Record {
            sent_s,
            done_s,
            kind,
            in_flight: sample.in_flight,
        });
        if let Some(reason) = self.watch_lockout(sent_s, done_s, kind) {
            return Next::Stop(reason);
        }
        if sample.error.is_none() {
            self.responses += 1;
        }
        let class = Some(sample.class);
        if class == self.plan.quota {
            self.halt = Some(Halt::Quota);
            return Next::Stop("a usage-plan quota is exhausted (429 Limit Exceeded)".into());
        }
        if class == self.plan.forbidden {
            self.forbidden += 1;
            if self.forbidden >= FORBIDDEN_STOP && 2 * self.forbidden >= self.responses {
                self.halt = Some(Halt::Forbidden);
                return Next::Stop("the gateway answers 401/403: an auth problem".into());
            }
        }
        match kind {
            Kind::Admitted => {
                self.admitted += 1;
                if sample.status >= 500 {
                    self.server_errors += 1;
                }
            }
            Kind::Throttled => {
                self.throttled_this_run += 1;
                if let Some(ms) = sample.retry_after_ms {
                    self.retry_after_count += 1;
                    let seconds = ms as f64 / 1000.0;
                    self.retry_after_s.get_or_insert(seconds);
                    if self.plan.honour_retry_after {
                        self.halt = Some(Halt::RetryAfter(seconds));
                        return Next::Stop(format!(
                            "a 429 asked to retry after {seconds} s; the probe stopped sending"
                        ));
                    }
                }
                if self.phase == Phase::Search && self.throttled_this_run >= SEARCH_THROTTLES {
                    return Next::Stop("throttling began".into());
                }
                if self.phase == Phase::Knee {
                    return Next::Stop("refused at this rate".into());
                }
            }
            Kind::Other => {}
        }
        if self.phase == Phase::Overload && self.last_done_s >= self.next_fit_s {
            self.next_fit_s = self.last_done_s + BIN_S;
            if self.overload_is_tight() {
                self.tight = true;
                return Next::Stop("both intervals are tight".into());
            }
        }
        Next::Continue
    }
}

/// One engine run of the probe, placed on the probe's clock.
pub struct Ran {
    pub recorder: Recorder,
    pub info: RunInfo,
    pub offset_s: f64,
}

/// The runs as one: recorders merged on the probe's clock.
pub fn merged(plan: &ThrottlePlan, runs: &[Ran], interrupted: bool) -> (Recorder, RunInfo) {
    let mut recorder = Recorder::new(plan.load.classifier.names());
    let mut window_s: f64 = 0.0;
    let mut wall_s = plan.idle.as_secs_f64();
    for ran in runs {
        recorder.merge_shifted(&ran.recorder, ran.offset_s.round() as usize);
        window_s = window_s.max(ran.offset_s + ran.info.window_s);
        wall_s += ran.info.wall_s;
    }
    let end = if interrupted {
        EndReason::Interrupted
    } else {
        runs.last()
            .map(|ran| ran.info.end.clone())
            .unwrap_or(EndReason::Finished)
    };
    let info = RunInfo {
        started_unix_ms: runs
            .first()
            .map(|ran| ran.info.started_unix_ms)
            .unwrap_or(0),
        window_s,
        target_rate_per_s: None,
        wall_s,
        end,
        start_late_ms: None,
    };
    (recorder, info)
}

/// The identification of what the probe saw (see [`identify`]).
pub fn identified(watch: &Watch<'_>, fit: Option<&Fit>, overload_rate: Option<f64>) -> Identified {
    let timeline = &watch.timeline;
    let analysed = timeline
        .records
        .partition_point(|r| r.sent_s < watch.analysed_until_s());
    let mut found = identify::identify(&identify::Seen {
        records: &timeline.records[..analysed],
        fit,
        overload: overload_rate.map(|rate| (timeline.fit_from_s.unwrap_or(0.0), rate)),
        first_step_end_s: timeline.steps.first().map_or(0.0, |step| step.end_s),
        lockout: watch.lockout,
    });
    if let (Some(halt), Limiter::None) = (&watch.halt, found.model) {
        // Stopped before anything could be refused: no evidence either way.
        found.model = Limiter::Unknown;
        found.evidence = vec![match halt {
            Halt::Quota => {
                "the probe stopped at a usage-plan quota before any throttle".to_string()
            }
            Halt::Forbidden => {
                "the probe stopped at 401/403 answers before any throttle".to_string()
            }
            Halt::RetryAfter(_) => "the probe stopped as Retry-After asked".to_string(),
        }];
    }
    let server_errors = watch.server_errors;
    if server_errors >= 10 && found.model != Limiter::Concurrency {
        found.evidence.push(format!(
            "{server_errors} responses were 5xx and counted as admitted: if the gateway answers a \
             throttled backend that way (API Gateway answers a throttled Lambda function with \
             500), mark them with --classify 'throttled=status:500'"
        ));
    }
    found
}
