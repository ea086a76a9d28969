//! What the engine emits for every request that came due: the one type the
//! engine produces and the recorder, progress and statistics consume.

/// Transport failures, by kind. Every one is counted; none is a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// TCP connect failed (refused, unreachable).
    Connect,
    /// No complete answer within `--timeout`.
    Timeout,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// The host name did not resolve.
    Dns,
    /// TLS handshake or certificate failure.
    Tls,
    /// The peer spoke something that is not valid HTTP.
    Protocol,
    /// This machine ran out of something (open files, ephemeral ports,
    /// buffers, memory): gateprobe's own limit, never the target's fault.
    Local,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Dns,
        ErrorKind::Tls,
        ErrorKind::Protocol,
        ErrorKind::Local,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Local => "local",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a transport error of kind `tls` happened: what a release engineer
/// fixes differently (trust a CA, fix the name, renew, present a client
/// certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDetail {
    /// The certificate chains to no trusted root (`--cacert` adds one).
    UnknownIssuer,
    /// The certificate is not valid for the name connected to.
    NameMismatch,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The server refused the handshake with an alert (a client
    /// certificate required, no common protocol version or cipher).
    HandshakeRefused,
    /// Any other TLS failure (a revoked or malformed certificate, a bad
    /// signature, a broken record).
    Other,
}

impl ErrorDetail {
    pub const ALL: [ErrorDetail; 6] = [
        ErrorDetail::UnknownIssuer,
        ErrorDetail::NameMismatch,
        ErrorDetail::Expired,
        ErrorDetail::NotYetValid,
        ErrorDetail::HandshakeRefused,
        ErrorDetail::Other,
    ];

    /// The report's key: the error kind, then the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorDetail::UnknownIssuer => "tls: unknown issuer",
            ErrorDetail::NameMismatch => "tls: name mismatch",
            ErrorDetail::Expired => "tls: expired",
            ErrorDetail::NotYetValid => "tls: not yet valid",
            ErrorDetail::HandshakeRefused => "tls: handshake refused",
            ErrorDetail::Other => "tls: other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A transport failure: its kind, and for TLS the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub detail: Option<ErrorDetail>,
}

impl From<ErrorKind> for Failure {
    fn from(kind: ErrorKind) -> Self {
        Failure { kind, detail: None }
    }
}

/// How a due request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent, and answered or failed; `class` says which class it counts in.
    Completed,
    /// Came due while `--max-in-flight` requests were busy: never sent.
    Dropped,
    /// Sent, then abandoned because the run was interrupted (Ctrl-C or an
    /// early stop); it counts in no class.
    Aborted,
}

/// One request's record. Times are microseconds from the run's start (t0).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub index: u64,
    /// When the schedule said the request was due (open model), or when it
    /// was sent (closed model, where there is no schedule).
    pub due_us: u64,
    pub sent_us: u64,
    pub done_us: u64,
    /// HTTP status, 0 when there was no response.
    pub status: u16,
    /// Body bytes received.
    pub bytes: u64,
    /// Class index into the classifier's names.
    pub class: u16,
    pub error: Option<ErrorKind>,
    /// Why, for a `tls` error.
    pub error_detail: Option<ErrorDetail>,
    /// The response is an error within its class (a 5xx, or `--error-if`).
    pub failed: bool,
    /// `Retry-After` of a 429 or 503, in milliseconds.
    pub retry_after_ms: Option<u32>,
    /// The connection that carried it (0: none, e.g. the connect failed).
    pub connection: u32,
    /// This generator's requests in flight when it was sent, itself
    /// included: what a concurrency limiter sees of this client.
    pub in_flight: u32,
    /// Left more than the late threshold after it could have: after its due
    /// time (open model) and after the `--max-rate` pacer let it go. The
    /// generator, not the schedule or the cap, held it back.
    pub late: bool,
    /// Which of `--api-keys` it carried.
    pub key: Option<u16>,
    pub outcome: Outcome,
}

impl Sample {
    /// A request due at `due_us` and sent at `sent_us` (µs since the run's
    /// start) with nothing known yet of its answer: completed with no
    /// status, at its send time. The fields known later are set on it.
    pub fn sent(index: u64, due_us: u64, sent_us: u64) -> Self {
        Self {
            index,
            due_us,
            sent_us,
            done_us: sent_us,
            status: 0,
            bytes: 0,
            class: 0,
            error: None,
            error_detail: None,
            failed: false,
            retry_after_ms: None,
            connection: 0,
            in_flight: 0,
            late: false,
            key: None,
            outcome: Outcome::Completed,
        }
    }

    /// Latency from the due time: coordinated-omission corrected.
    pub fn latency_us(&self) -> u64 {
        self.done_us.saturating_sub(self.due_us)
    }

    /// Latency from the actual send: service time.
    pub fn service_us(&self) -> u64 {
        self.done_us.saturating_sub(self.sent_us)
    }
}
