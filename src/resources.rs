//! This machine's limits, checked before a run so that they are never
//! mistaken for the target's: the open-files limit is raised to its hard
//! ceiling at start (as oha, wrk and k6 users are told to do by hand), and a
//! run that cannot fit its connections in what is left is refused up front
//! (closed model) or warned about (open model, where the cap may never be
//! reached). What still runs out during a run is counted as `local`.

/// Descriptors kept for everything but connections: the runtime, stdio,
/// report files, DNS, the progress display.
pub const RESERVED_FILES: u64 = 64;

/// A run this machine cannot hold: exit 4, said before anything is sent.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LocalLimit(pub String);

/// Raises the soft open-files limit to the hard limit and returns the soft
/// limit now in force (`None` where it cannot be read).
pub fn raise_open_files() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit write or read the struct passed; no
        // other memory is involved.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
        Some(limit.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Checks that `connections` fit in the open-files limit. A closed model
/// opens every one of them: refused. An open model opens them only as its
/// in-flight count needs: a warning, returned for the caller to print.
pub fn check_connections(
    connections: usize,
    every_one_opens: bool,
) -> Result<Option<String>, LocalLimit> {
    let Some(soft) = raise_open_files() else {
        return Ok(None);
    };
    let room = soft.saturating_sub(RESERVED_FILES);
    let needed = connections as u64;
    if needed <= room {
        return Ok(None);
    }
    if every_one_opens {
        return Err(LocalLimit(format!(
            "could not measure: {needed} connections need {} open files, and this machine allows {soft} \
             (`ulimit -n`, hard limit included): raise it, or lower --connections to {room}",
            needed + RESERVED_FILES
        )));
    }
    Ok(Some(format!(
        "warning: this machine allows {soft} open files: at most about {room} of the {needed} requests \
         --max-in-flight allows can be open at once; beyond that they fail as `local` errors \
         (raise `ulimit -n` or lower --max-in-flight)"
    )))
}
