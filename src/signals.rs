//! Interruption by signal. SIGINT (Ctrl-C), SIGTERM (what `timeout`, CI
//! cancellation and Kubernetes send) and SIGHUP (a closed terminal) all mean
//! "stop now and keep what you have": the first one cancels the process-wide
//! [`interrupt`] token, every run stops sending and abandons what is in flight,
//! and the partial report is written (exit 3). A second signal means "stop
//! at once": the process exits immediately with 128 + the signal's number,
//! as a shell reports a process killed by that signal.
//!
//! The handlers live on a thread of their own with a tiny runtime, so that a
//! signal is noticed even while the main thread is busy planning or writing.
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

static INTERRUPT: OnceLock<CancellationToken> = OnceLock::new();
/// The first signal received (0 while none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

tokio::task_local! {
    /// A run's own stop token (`gateprobe serve` runs several at once): a
    /// child of the process's, so a signal stops it too.
    static RUN_STOP: CancellationToken;
}

/// The token every run watches: cancelled at the first SIGINT, SIGTERM or
/// SIGHUP, or (inside [`with_stop`]) when its run is told to stop. The
/// first call installs the handlers.
pub fn interrupt() -> CancellationToken {
    if let Ok(token) = RUN_STOP.try_with(CancellationToken::clone) {
        return token;
    }
    process_token()
}

fn process_token() -> CancellationToken {
    INTERRUPT
        .get_or_init(|| {
            let token = CancellationToken::new();
            install(token.clone());
            token
        })
        .clone()
}

/// A stop token for one run: cancelled with the process's, or on its own.
pub fn run_token() -> CancellationToken {
    process_token().child_token()
}

/// Runs `future` (one run) watching `token` in place of the process's
/// token: cancelling it stops that run as a signal stops a process.
pub async fn with_stop<F: std::future::Future>(token: CancellationToken, future: F) -> F::Output {
    RUN_STOP.scope(token, future).await
}

/// Whether an interrupting signal has arrived (or this run was told to stop).
pub fn interrupted() -> bool {
    RUN_STOP
        .try_with(CancellationToken::is_cancelled)
        .unwrap_or(false)
        || INTERRUPT.get().is_some_and(CancellationToken::is_cancelled)
}

/// The name of the signal that interrupted the process, for reports.
pub fn received_name() -> &'static str {
    let signalled = RECEIVED.load(Ordering::Relaxed) != 0;
    if !signalled
        && RUN_STOP
            .try_with(CancellationToken::is_cancelled)
            .unwrap_or(false)
    {
        return "a stop request (gateprobe serve: DELETE, or the controller's event)";
    }
    match RECEIVED.load(Ordering::Relaxed) {
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "SIGINT (Ctrl-C)",
    }
}

#[cfg(unix)]
fn install(token: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (ready, is_ready) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("gateprobe-signals".to_string())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let kinds = [
                    (SignalKind::interrupt(), libc::SIGINT),
                    (SignalKind::terminate(), libc::SIGTERM),
                    (SignalKind::hangup(), libc::SIGHUP),
                ];
                let mut streams = Vec::new();
                for (kind, number) in kinds {
                    if let Ok(stream) = signal(kind) {
                        streams.push((stream, number));
                    }
                }
                let _ = ready.send(());
                loop {
                    let number = next_signal(&mut streams).await;
                    if token.is_cancelled() {
                        crate::errln!("gateprobe: second signal: exiting at once, no report");
                        std::process::exit(128 + number);
                    }
                    RECEIVED.store(number, Ordering::Relaxed);
                    token.cancel();
                }
            });
        });
    if spawned.is_ok() {
        // Handlers are in place before any request is sent.
        let _ = is_ready.recv_timeout(std::time::Duration::from_secs(2));
    }
}

#[cfg(unix)]
async fn next_signal(streams: &mut [(tokio::signal::unix::Signal, i32)]) -> i32 {
    std::future::poll_fn(|cx| {
        for (stream, number) in streams.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*number);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(not(unix))]
fn install(token: CancellationToken) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            loop {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                if token.is_cancelled() {
                    std::process::exit(130);
                }
                token.cancel();
            }
        });
    });
}
