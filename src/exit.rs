//! Exit codes (docs/safety.md), the errors that end a command, and
//! the one place that maps an error to its exit code.

/// Every check passed (or, with no checks, something succeeded).
pub const PASS: u8 = 0;
/// A check failed: the gate is closed.
pub const FAIL: u8 = 1;
/// Usage or input error: bad flag, scenario, URL or matcher.
pub const USAGE: u8 = 2;
/// Not enough evidence within the bounds.
pub const INCONCLUSIVE: u8 = 3;
/// Could not measure: target unreachable or nothing succeeded.
pub const ERROR: u8 = 4;

/// A usage or input error: exit code 2, printed as one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// This machine could not run the measurement (exit 4): the input was fine.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// An engine thread or its runtime could not start, or died.
    #[error("engine: {0}")]
    Engine(String),
    /// A report could not be written.
    #[error("{0}")]
    Output(String),
}

/// Maps an error that ended a command to its exit code: input errors are 2,
/// everything else means the run could not measure (4).
pub fn code_for_error(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return USAGE;
        }
        if cause.downcast_ref::<MeasureError>().is_some() {
            return ERROR;
        }
    }
    ERROR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_their_exit_codes() {
        let usage = anyhow::Error::new(UsageError("--rate: not a number".into()));
        assert_eq!(code_for_error(&usage.context("scenario s.json")), USAGE);
        let engine = anyhow::Error::new(MeasureError::Engine("cannot start".into()));
        assert_eq!(code_for_error(&engine.context("step 1")), ERROR);
        assert_eq!(code_for_error(&anyhow::anyhow!("disk full")), ERROR);
    }
}
