//! `gateprobe canary`: is the split what it should be, and is the canary as
//! healthy as the baseline? The load engine sends the traffic; an observer
//! ([`watch::Watch`]) feeds every response to the split's confidence
//! sequences and the health checks, looks once per second, re-plans from
//! what it sees, and stops the load as soon as every check is decided, one
//! fails, or the responses turn out not to be independent per request.
//!
//! Every statement the checks make holds at whatever moment the run stops
//! (confidence sequences, [`crate::stats::confseq`]): the split's pass and
//! fail, the error check's and the latency check's, each at its stated α.
pub mod design;
pub mod drops;
pub mod health;
pub mod latency;
pub mod plan;
pub mod simulate;
pub mod split;
pub mod watch;

pub use plan::*;
