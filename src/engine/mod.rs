//! The load engine: a rate schedule × a pooled HTTP client, run by a fixed set
//! of workers. It only produces [`Sample`]s; the recorder, progress and
//! statistics consume them on one task, so the workers share no lock.
//!
//! Open model: request *i* is due at t0 + schedule(i). A worker claims the
//! next index, sleeps until it is due (woken at that moment by the pacing
//! thread, [`pacing`], not on tokio's millisecond timer) and sends it. With
//! `--shard I/N` the worker's k-th claim is the whole run's request
//! I + k·N, due when the whole run's schedule says. There are exactly
//! `concurrency` workers, so at most that many requests are in flight; a
//! request that is already overdue when a worker becomes free to claim it came
//! due while every worker was busy, and is counted as *dropped* — never sent
//! late and never silently slowed. Closed model: workers send back to back.
pub mod client;
pub mod command;
pub mod pacing;
pub mod progress;
pub mod request;
pub mod samples;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_queue::SegQueue;
use tokio::sync::watch;
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;

use crate::classify::{Classifier, Response};
use crate::plan::schedule::Schedule;
use crate::plan::{LoadPlan, RequestSpec};
use crate::record::Recorder;
use crate::sample::{ErrorKind, Failure, Outcome, Sample};
use client::{ClientOptions, Connections};

/// A request claimed this long after its due time is overdue: one timer tick
/// (tokio's timer resolution is 1 ms), so that wake-up jitter is not counted.
/// It is dropped if the in-flight cap is full at that moment; otherwise the
/// generator itself was late (descheduled), and the request is sent and shows
/// up in the send lag and the `late` count instead.
const OVERDUE_AFTER: Duration = Duration::from_millis(1);

/// How often the consumer drains samples: the delay before an observer (a
/// sequential test, the progress display) sees a sample.
const CONSUMER_TICK: Duration = Duration::from_millis(2);

/// Stops a run from outside: `stop` ends the claiming of new requests
/// (in-flight ones finish); `abort` also abandons in-flight requests.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
}

impl RunControl {
    /// Ctrl-C: stop now and abandon what is in flight; the partial report is
    /// still written.
    pub fn interrupt(&self) {
        self.stop.cancel();
        self.abort.cancel();
    }
}

/// Decision of an [`Observer`] after each sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Stop claiming new requests (e.g. a sequential test has decided).
    Stop(String),
}

/// Something that watches samples as they arrive (progress, sequential tests).
pub trait Observer {
    /// Called once when the run's clock starts: samples' times count from `t0`.
    fn started(&mut self, _t0: Instant) {}

    fn observe(&mut self, sample: &Sample, recorder: &Recorder) -> Verdict;
}

/// An observer that never stops the run.
pub struct NoObserver;

impl Observer for NoObserver {
    fn observe(&mut self, _sample: &Sample, _recorder: &Recorder) -> Verdict {
        Verdict::Continue
    }
}

/// Counters the progress display reads while the run goes on. Written by the
/// single consumer task only, so relaxed atomics suffice and workers never
/// touch them.
#[derive(Debug, Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub completed: AtomicU64,
    pub dropped: AtomicU64,
    pub errors: AtomicU64,
    pub by_class: Vec<AtomicU64>,
}

impl Live {
    pub fn new(classes: usize) -> Self {
        Self {
            by_class: (0..classes).map(|_| AtomicU64::new(0)).collect(),
            ..Self::default()
        }
    }

    fn update(&self, recorder: &Recorder) {
        self.sent.store(recorder.sent, Ordering::Relaxed);
        self.completed
            .store(recorder.completed(), Ordering::Relaxed);
        self.dropped.store(recorder.dropped, Ordering::Relaxed);
        self.errors
            .store(recorder.errors.iter().sum(), Ordering::Relaxed);
        for (live, class) in self.by_class.iter().zip(&recorder.classes) {
            live.store(class.count, Ordering::Relaxed);
        }
    }
}

/// Why the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The schedule or a bound ran out.
    Finished,
    /// An observer stopped it early, for the given reason.
    Stopped(String),
    /// Ctrl-C.
    Interrupted,
}

/// Facts about the run besides its counts.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub started_unix_ms: u64,
    /// Length of the sending window, the denominator of the achieved rate:
    /// the schedule's span for an open model, first to last completion for a
    /// closed one, or up to the stop when stopped early.
    pub window_s: f64,
    /// Mean rate the schedule asked for over that window (open model).
    pub target_rate_per_s: Option<f64>,
    pub wall_s: f64,
    pub end: EndReason,
    /// `--start-at`: how far behind the shared start this process began
    /// (ms; about 0 when it was ready in time).
    pub start_late_ms: Option<f64>,
}

/// Everything the workers share, read-only except the claim counter.
struct Shared {
    next_index: AtomicU64,
    /// Requests being sent right now, across all engine threads.
    in_flight: AtomicUsize,
    concurrency: usize,
    limit: u64,
    schedule: Schedule,
    t0: Instant,
    /// When this process began sending: `t0`, or later when `--start-at`
    /// was already past. Requests due before it were never sendable.
    began: Instant,
    shard: crate::plan::Shard,
    deadline: Instant,
    request: RequestSpec,
    classifier: Classifier,
    timeout: Duration,
    keep_body: usize,
    control: RunControl,
    pacer: Option<Arc<crate::plan::pacer::Pacer>>,
    /// The open model's precise wake-ups ([`pacing`]).
    pacing: Option<Arc<pacing::Pacing>>,
}

/// Runs the plan's load to its bounds (or until stopped), feeding every
/// sample to the recorder and the observer. Returns the recorder and facts.
/// Long because it sets up and tears down one run in order (threads and
/// runtimes per core, warm connections, the start barrier, the consumer
/// loop, the drain), sharing the handles each step creates.
pub async fn run(
    plan: &LoadPlan,
    control: RunControl,
    live: Arc<Live>,
    observer: &mut dyn Observer,
) -> anyhow::Result<(Recorder, RunInfo)> {
    let http1_connections = !plan.http2 || plan.request.endpoint.scheme_str() == Some("https");
    if http1_connections {
        let closed = matches!(plan.schedule, Schedule::Closed);
        if let Some(warning) = crate::resources::check_connections(plan.concurrency, closed)? {
            if !plan.quiet {
                crate::errln!("gateprobe: {warning}");
            }
        }
    }
    let options = ClientOptions {
        http2: plan.http2,
        insecure: plan.insecure,
        tls: plan.tls.clone(),
        resolve: plan.resolve.clone(),
        connect_timeout: plan.timeout,
        keepalive: !plan.no_keepalive,
    };
    let samples = Arc::new(SegQueue::new());
    let (threads, starter) = spawn_engine_threads(plan, options, samples.clone()).await?;
    // The clock starts once every engine thread is ready, so that no request
    // is overdue (and dropped) just because a runtime was still starting.
    let start_at = plan
        .sharding
        .as_ref()
        .and_then(|sharding| sharding.start_at);
    let Clock {
        t0,
        began,
        started_unix_ms,
        start_late_ms,
    } = start_clock(start_at, &control).await;
    // GATEPROBE_TOKIO_TIMER=1: tokio's millisecond timer alone, as before
    // the pacing thread; the benchmark prints both, measured side by side.
    let tokio_timer = std::env::var_os("GATEPROBE_TOKIO_TIMER").is_some_and(|v| v == "1");
    let (pacing, pacing_thread) = match plan.schedule {
        Schedule::Open(_) if !tokio_timer => {
            let (pacing, thread) = pacing::Pacing::start().map_err(|err| {
                crate::exit::MeasureError::Engine(format!("cannot start the pacing thread: {err}"))
            })?;
            (Some(pacing), Some(thread))
        }
        _ => (None, None),
    };
    let shared = Arc::new(Shared {
        next_index: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        concurrency: plan.concurrency,
        limit: plan.max_requests.unwrap_or(u64::MAX),
        schedule: plan.schedule.clone(),
        t0,
        began,
        shard: plan.shard(),
        deadline: t0 + plan.duration,
        request: plan.request.clone(),
        classifier: plan.classifier.clone(),
        timeout: plan.timeout,
        keep_body: if plan.classifier.needs_body() {
            plan.max_body
        } else {
            0
        },
        control: control.clone(),
        pacer: plan.pacer.clone(),
        pacing: pacing.clone(),
    });
    observer.started(t0);
    let _ = starter.send(Some(shared.clone()));

    let mut recorder = Recorder::new(plan.classifier.names());
    // `--samples`: each request's row, written by this consumer (locked
    // once per batch; no other thread writes while a run goes).
    let sample_rows = match plan.outputs.path("--samples") {
        Some(path) => Some(samples::open(path).map_err(|err| {
            crate::exit::UsageError(format!("--samples {}: cannot write: {err}", path.display()))
        })?),
        None => None,
    };
    let shard = plan.shard();
    let shard_label = format!("{}/{}", shard.index, shard.count);
    let names = plan.classifier.names();
    let mut end = EndReason::Finished;
    let mut stopped_at: Option<Instant> = None;
    // Drain a lock-free queue on a short tick instead of awaiting each
    // sample. Measured against nginx on 2 cores: awaiting a tokio channel
    // woke the consumer on every send (61k rps, vs 88k with no consumer at
    // all), and even `try_recv` parks the consumer thread whenever a sender
    // is mid-push (≈4,000 futex wake-ups per 50k requests). `SegQueue` never
    // parks and never wakes anyone.
    let mut tick = tokio::time::interval(CONSUMER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Checked before draining, so nothing pushed before the end is missed.
        let finished = threads.iter().all(|thread| thread.is_finished());
        let mut rows = sample_rows
            .as_ref()
            .map(|rows| rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        while let Some(sample) = samples.pop() {
            recorder.record(&sample);
            if let Some(rows) = rows.as_mut() {
                rows.write(&sample, &shard_label, names);
            }
            if let Verdict::Stop(reason) = observer.observe(&sample, &recorder) {
                if end == EndReason::Finished {
                    end = EndReason::Stopped(reason);
                    stopped_at = Some(Instant::now());
                    control.stop.cancel();
                }
            }
        }
        drop(rows);
        live.update(&recorder);
        if finished {
            break;
        }
    }
    if let Some(rows) = &sample_rows {
        let mut rows = rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(why) = rows.finish() {
            crate::errln!("gateprobe: {why}");
        }
    }
    for thread in threads {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    if let (Some(pacing), Some(thread)) = (pacing, pacing_thread) {
        pacing.stop();
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    live.update(&recorder);
    if control.abort.is_cancelled() && end == EndReason::Finished {
        end = EndReason::Interrupted;
        stopped_at = Some(Instant::now());
    }
    let mut info = run_info(plan, &recorder, t0, started_unix_ms, stopped_at, end);
    info.start_late_ms = start_late_ms;
    Ok((recorder, info))
}

/// Where a run's clock stands: time 0 of the schedule, when sending began,
/// and how late that was against `--start-at`.
struct Clock {
    t0: Instant,
    began: Instant,
    started_unix_ms: u64,
    start_late_ms: Option<f64>,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|t| t.as_millis() as u64)
        .unwrap_or(0)
}

/// Now, or at `--start-at` on the wall clock (waiting for it, unless
/// stopped): a start already past puts time 0 that far back, so every
/// request keeps the whole run's due time.
async fn start_clock(start_at: Option<SystemTime>, control: &RunControl) -> Clock {
    let Some(at) = start_at else {
        let now = Instant::now();
        return Clock {
            t0: now,
            began: now,
            started_unix_ms: unix_ms(SystemTime::now()),
            start_late_ms: None,
        };
    };
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        // Ready in time: time 0 is the start; sends that leave a timer tick
        // late show in the send lag, as in any run.
        tokio::select! {
            biased;
            _ = control.stop.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        let behind = SystemTime::now()
            .duration_since(at)
            .unwrap_or(Duration::ZERO);
        let now = Instant::now();
        let t0 = now.checked_sub(behind).unwrap_or(now);
        return Clock {
            t0,
            began: t0,
            started_unix_ms: unix_ms(at),
            start_late_ms: Some(0.0),
        };
    }
    // Ready only after the start: what came due before now was never sent.
    let began = Instant::now();
    let behind = SystemTime::now()
        .duration_since(at)
        .unwrap_or(Duration::ZERO);
    Clock {
        t0: began.checked_sub(behind).unwrap_or(began),
        began,
        started_unix_ms: unix_ms(at),
        start_late_ms: Some(behind.as_secs_f64() * 1e3),
    }
}

/// Starts one engine thread per core, each with a single-threaded runtime
/// running its share of the workers and owning its own connections. A worker
/// and the hyper connection task it talks to then always live on the same
/// thread: on the work-stealing runtime, every request crossed threads twice
/// (request to the connection task, response back), and those wake-ups were
/// the largest cost left in the closed-model profile.
async fn spawn_engine_threads(
    plan: &LoadPlan,
    options: ClientOptions,
    samples: Arc<SegQueue<Sample>>,
) -> Result<
    (
        Vec<std::thread::JoinHandle<()>>,
        watch::Sender<Option<Arc<Shared>>>,
    ),
    anyhow::Error,
> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let count = cores.clamp(1, plan.concurrency.max(1));
    let (starter, start) = watch::channel::<Option<Arc<Shared>>>(None);
    let (mut threads, mut readies) = (Vec::new(), Vec::new());
    for thread_index in 0..count {
        // Spread the workers evenly: the first `concurrency % count` threads get one more.
        let workers =
            plan.concurrency / count + usize::from(thread_index < plan.concurrency % count);
        let warm = (plan.warm_connections / count
            + usize::from(thread_index < plan.warm_connections % count))
        .min(workers);
        let connections = Arc::new(
            Connections::new(&plan.request.endpoint, options.clone(), workers).map_err(|why| {
                anyhow::Error::new(crate::exit::UsageError(format!(
                    "URL '{}': {why}",
                    plan.request.display_url
                )))
            })?,
        );
        let (samples, start) = (samples.clone(), start.clone());
        let (ready, is_ready) = tokio::sync::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name(format!("gateprobe-engine-{thread_index}"))
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    connections.warm(warm).await;
                    // Spawning hundreds of workers takes milliseconds: do it before
                    // the clock starts; each waits for the start signal.
                    let tasks: Vec<_> = (0..workers)
                        .map(|_| {
                            tokio::spawn(worker(
                                start.clone(),
                                connections.clone(),
                                samples.clone(),
                            ))
                        })
                        .collect();
                    let _ = ready.send(());
                    for task in tasks {
                        let _ = task.await;
                    }
                });
            });
        // This machine's failure, not the user's input: exit 4, not 2.
        threads.push(spawned.map_err(|err| {
            crate::exit::MeasureError::Engine(format!("cannot start an engine thread: {err}"))
        })?);
        readies.push(is_ready);
    }
    for ready in readies {
        ready.await.map_err(|_| {
            crate::exit::MeasureError::Engine("cannot start an engine thread's runtime".into())
        })?;
    }
    Ok((threads, starter))
}

/// Waits for the run's shared state (the clock has started), or `None` when
/// the run was abandoned before it began.
async fn wait_for_start(mut start: watch::Receiver<Option<Arc<Shared>>>) -> Option<Arc<Shared>> {
    loop {
        if let Some(shared) = start.borrow_and_update().clone() {
            return Some(shared);
        }
        start.changed().await.ok()?;
    }
}

fn run_info(
    plan: &LoadPlan,
    recorder: &Recorder,
    t0: Instant,
    started_unix_ms: u64,
    stopped_at: Option<Instant>,
    end: EndReason,
) -> RunInfo {
    let wall_s = t0.elapsed().as_secs_f64();
    let bound_s = plan.duration.as_secs_f64();
    let (window_s, target_rate_per_s) = match &plan.schedule {
        Schedule::Open(curve) => {
            let scheduled_end = plan
                .max_requests
                .and_then(|count| curve.due(count))
                .map(|due| due.as_secs_f64())
                .unwrap_or(f64::INFINITY)
                .min(curve.duration_s())
                .min(bound_s);
            let window = match stopped_at {
                Some(at) => at.duration_since(t0).as_secs_f64().min(scheduled_end),
                None => scheduled_end,
            };
            let window = if window.is_finite() { window } else { wall_s };
            // A shard is due its share of the whole run's requests.
            let target = if window > 0.0 {
                curve.expected_by(window) / window * plan.shard().share()
            } else {
                0.0
            };
            (window, Some(target))
        }
        Schedule::Closed => (
            recorder.last_done_us.max(recorder.last_sent_us) as f64 / 1e6,
            None,
        ),
    };
    RunInfo {
        started_unix_ms,
        window_s,
        target_rate_per_s,
        wall_s,
        end,
        start_late_ms: None,
    }
}

fn micros_since(t0: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(t0).as_micros() as u64
}

// The worker's timing rules, as functions of the times they compare (the
// clock seam: the worker passes the machine's clock, tests chosen times).

/// A claimed request is dropped, not sent, when it is past due by more than
/// [`OVERDUE_AFTER`] with every other worker busy: sending it would only
/// queue it behind the cap.
fn overdue(due: Instant, now: Instant, cap_full: bool) -> bool {
    cap_full && now > due + OVERDUE_AFTER
}

/// A request due before this process began sending (`--start-at` already
/// past) was never sendable on time: dropped, not sent in a burst.
fn before_start(due: Instant, began: Instant) -> bool {
    due + OVERDUE_AFTER < began
}

/// When a request could leave: its due time, or its pacer slot if later (a
/// closed-model request has no due time: its slot).
fn release(due: Option<Instant>, slot: Instant) -> Option<Instant> {
    Some(due.map_or(slot, |due| due.max(slot)))
}

/// A send is late when it left more than [`crate::record::LATE_AFTER_US`]
/// after it could have (µs since the run's start).
fn late(sent_us: u64, released_us: u64) -> bool {
    sent_us > released_us + crate::record::LATE_AFTER_US
}

/// One worker: claim, wait until due, send, classify, emit. Repeat.
/// Long because it is the hot path: one loop with the stop and abort waiters
/// pinned once for the worker's life (a waiter per request would take the
/// token's mutex), which splitting into async helpers would re-register.
async fn worker(
    start: watch::Receiver<Option<Arc<Shared>>>,
    connections: Arc<Connections>,
    samples: Arc<SegQueue<Sample>>,
) {
    let Some(shared) = wait_for_start(start).await else {
        return;
    };
    let mut scratch = request::Scratch::default();
    // This worker's wake-up from the pacing thread, for its whole life.
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut body = Vec::with_capacity(shared.keep_body.min(64 * 1024));
    let stop = &shared.control.stop;
    // One waiter per worker for its whole life: `cancelled()` registers under
    // the token's mutex, which per request would be a shared lock on the hot path.
    let mut stopped = std::pin::pin!(stop.cancelled());
    let mut aborted = std::pin::pin!(shared.control.abort.cancelled());
    while !stop.is_cancelled() {
        let local = shared.next_index.fetch_add(1, Ordering::Relaxed);
        let Some(index) = shared.shard.global(local).filter(|&i| i < shared.limit) else {
            break;
        };
        let due = match &shared.schedule {
            Schedule::Open(curve) => match curve.due(index) {
                Some(offset) if shared.t0 + offset < shared.deadline => Some(shared.t0 + offset),
                _ => break,
            },
            Schedule::Closed => None,
        };
        if let Some(due) = due {
            // The claiming worker is free, so the cap is full when every other one is busy.
            let cap_full = shared.in_flight.load(Ordering::Relaxed) + 1 >= shared.concurrency;
            if overdue(due, Instant::now(), cap_full) || before_start(due, shared.began) {
                let at = micros_since(shared.t0, due);
                let dropped = Sample {
                    key: shared.request.api_keys.pick(index).map(|slot| slot as u16),
                    outcome: Outcome::Dropped,
                    ..Sample::sent(index, at, at)
                };
                samples.push(dropped);
                continue;
            }
            let wait = async {
                match &shared.pacing {
                    Some(pacing) => pacing.until(due, &notify).await,
                    None => sleep_until(due.into()).await,
                }
            };
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                _ = wait => {}
            }
        } else if Instant::now() >= shared.deadline {
            break;
        }
        // When the request could leave: its due time, or the pacer's slot.
        let mut released = due;
        if let Some(pacer) = &shared.pacer {
            let at = pacer.reserve();
            released = release(due, at);
            if at > Instant::now() {
                tokio::select! {
                    biased;
                    _ = &mut stopped => break,
                    _ = sleep_until(at.into()) => {}
                }
            }
        }
        // Only the open model can drop, so only it needs the in-flight count
        // (the closed model's is its connections).
        let counted = due.is_some();
        let in_flight = if counted {
            shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            shared.concurrency
        };
        let mut sample = send_one(
            &shared,
            &connections,
            index,
            due,
            &mut scratch,
            &mut body,
            aborted.as_mut(),
        )
        .await;
        if counted {
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        sample.in_flight = in_flight.min(u32::MAX as usize) as u32;
        sample.late = released
            .is_some_and(|released| late(sample.sent_us, micros_since(shared.t0, released)));
        samples.push(sample);
    }
}

/// Sends request `index` and turns what happened into a sample.
async fn send_one(
    shared: &Shared,
    connections: &Connections,
    index: u64,
    due: Option<Instant>,
    scratch: &mut request::Scratch,
    body: &mut Vec<u8>,
    aborted: std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> Sample {
    // Built (templates filled, signed) before the clock of its latency
    // starts: that work is the client's, so it shows as send lag.
    let built = request::build(&shared.request, index, scratch);
    let sent = Instant::now();
    let due = due.unwrap_or(sent);
    let mut sample = Sample {
        key: shared.request.api_keys.pick(index).map(|slot| slot as u16),
        ..Sample::sent(
            index,
            micros_since(shared.t0, due),
            micros_since(shared.t0, sent),
        )
    };
    let result = match built {
        Ok(request) => {
            // Pinned where it stands: moving this large future into `timeout`
            // and `select!` cost ~20% of the engine's user CPU in memcpy.
            let exchange = std::pin::pin!(connections.exchange(request, body, shared.keep_body));
            tokio::select! {
                biased;
                _ = aborted => None,
                result = tokio::time::timeout(shared.timeout, exchange) => {
                    Some(result.unwrap_or(Err(ErrorKind::Timeout.into())))
                }
            }
        }
        Err(_) => Some(Err(ErrorKind::Protocol.into())),
    };
    sample.done_us = micros_since(shared.t0, Instant::now());
    match result {
        None => sample.outcome = Outcome::Aborted,
        Some(result) => record_outcome(&mut sample, &result, body, &shared.classifier),
    }
    sample
}

/// What the exchange gave, into the sample: the answer's status, size,
/// connection and `Retry-After`, or the failure; then its class.
fn record_outcome(
    sample: &mut Sample,
    result: &Result<client::Answer, Failure>,
    body: &[u8],
    classifier: &Classifier,
) {
    let response = match result {
        Ok(answer) => {
            sample.status = answer.status;
            sample.bytes = answer.bytes;
            sample.connection = answer.connection;
            if answer.status == 429 || answer.status == 503 {
                sample.retry_after_ms = retry_after_ms(&answer.headers);
            }
            Response {
                status: Some(answer.status),
                headers: Some(&answer.headers),
                body,
                body_bytes: answer.bytes,
                error: None,
            }
        }
        Err(failure) => {
            sample.error = Some(failure.kind);
            sample.error_detail = failure.detail;
            Response {
                status: None,
                headers: None,
                body: &[],
                body_bytes: 0,
                error: Some(failure.kind),
            }
        }
    };
    sample.class = classifier.classify(&response);
    sample.failed = classifier.is_error(&response);
}

/// `Retry-After` as milliseconds from now: delay-seconds or an HTTP-date.
pub fn retry_after_ms(headers: &http::HeaderMap) -> Option<u32> {
    let text = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(seconds.saturating_mul(1000).min(u32::MAX as u64) as u32);
    }
    let at = httpdate::parse_http_date(text).ok()?;
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    Some(wait.as_millis().min(u32::MAX as u128) as u32)
}

#[cfg(test)]
mod timing_tests {
    use super::*;

    /// Deterministic twins of the wall-clock engine tests: the drop, release
    /// and late rules on chosen times.
    #[test]
    fn timing_rules_on_chosen_times() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Overdue only past the margin, and only with the cap full.
        assert!(!overdue(at(10), at(10) + OVERDUE_AFTER, true));
        assert!(overdue(at(10), at(12), true));
        assert!(!overdue(at(10), at(500), false));
        // Released at the later of due and slot.
        assert_eq!(release(Some(at(5)), at(3)), Some(at(5)));
        assert_eq!(release(Some(at(5)), at(9)), Some(at(9)));
        assert_eq!(release(None, at(9)), Some(at(9)));
        // Late past 10 ms after release, not at it; a pacer's own wait is
        // not lateness (released is the slot, not the due time).
        let released_us = micros_since(t0, release(Some(at(5)), at(300)).unwrap());
        assert!(!late(
            released_us + crate::record::LATE_AFTER_US,
            released_us
        ));
        assert!(late(
            released_us + crate::record::LATE_AFTER_US + 1,
            released_us
        ));
        assert!(!late(micros_since(t0, at(301)), released_us));
    }
}
