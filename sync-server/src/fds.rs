//! The process's open-file limit: raised at start, and the relay's caps sized from it.
//!
//! Every connection and every live socket is a file descriptor. With the usual soft
//! limit of 1,024 a thousand sockets used to end in "Too many open files" for everyone,
//! the database included. So the relay raises its soft limit towards the hard one (which
//! an unprivileged process may do), keeps [`RESERVED`] descriptors for the database,
//! the listener and the log, and lowers the connection and live-socket caps to fit the
//! rest: a flood then meets a cap the relay answers, never the kernel's limit.

use crate::limits::Config;

/// The descriptors connections may use under an open-file limit of `soft`: all but
/// [`RESERVED`], and at least half of a tiny limit.
fn budget(soft: u64) -> u64 {
    soft.saturating_sub(RESERVED).max(soft / 2).max(1)
}

/// The descriptors kept for the database and the log under a limit of `soft` (fewer
/// than [`RESERVED`] under a tiny limit, which leaves half to the connections).
pub fn kept(soft: u64) -> u64 {
    soft.saturating_sub(budget(soft))
}

/// Descriptors kept out of the connection budget: the database files (SQLite's file,
/// `-wal` and `-shm`, for the writer and the reader; or PostgreSQL connections), the
/// listener, the runtime's own (epoll, wakers), stdio, and some slack.
pub const RESERVED: u64 = 64;

/// The highest soft limit asked for. Linux refuses more than `fs.nr_open` (1,048,576
/// by default) even when the hard limit says "unlimited".
pub const MAX_SOFT: u64 = 1 << 20;

/// The open-file limits before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The soft limit the process started with.
    pub was: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (the ceiling of the soft one).
    pub hard: u64,
}

/// Why the limit could not be read or raised.
#[derive(Debug, thiserror::Error)]
pub enum FdError {
    /// getrlimit failed (or the platform has no such limit).
    #[error("cannot read the open-file limit: {0}")]
    Read(std::io::Error),
    /// setrlimit failed; the soft limit stays `was`.
    #[error(
        "cannot raise the open-file limit from {was} to {wanted} (hard limit {hard}): {source}"
    )]
    Raise {
        /// The soft limit, unchanged.
        was: u64,
        /// What was asked for.
        wanted: u64,
        /// The hard limit.
        hard: u64,
        /// The system's error.
        source: std::io::Error,
    },
}

/// Raises the soft open-file limit to the hard limit (at most [`MAX_SOFT`]).
#[cfg(unix)]
pub fn raise() -> Result<Limits, FdError> {
    use rlimit::Resource;
    let (was, hard) = Resource::NOFILE.get().map_err(FdError::Read)?;
    let wanted = hard.min(MAX_SOFT);
    if was >= wanted {
        return Ok(Limits {
            was,
            soft: was,
            hard,
        });
    }
    Resource::NOFILE
        .set(wanted, hard)
        .map_err(|source| FdError::Raise {
            was,
            wanted,
            hard,
            source,
        })?;
    Ok(Limits {
        was,
        soft: wanted,
        hard,
    })
}

/// Without Unix resource limits there is nothing to raise.
#[cfg(not(unix))]
pub fn raise() -> Result<Limits, FdError> {
    Err(FdError::Read(std::io::Error::from(
        std::io::ErrorKind::Unsupported,
    )))
}

/// What [`size`] chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizing {
    /// Descriptors the connections may use.
    pub budget: usize,
    /// Each cap that was lowered: its name, the configured value (0 = none), the new one.
    pub lowered: Vec<(&'static str, usize, usize)>,
}

/// Lowers the caps of `config` to fit a soft limit of `soft` descriptors: connections
/// (live sockets included) to the budget left after [`RESERVED`] ([`budget`]) ("no cap" included),
/// live sockets to three quarters of the connections (requests keep a quarter), and
/// each per-address or per-space cap that is set to a quarter of its total, so that one
/// address or space never takes everything.
pub fn size(config: &mut Config, soft: u64) -> Sizing {
    let budget = budget(soft);
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    let mut lowered = Vec::new();
    // `unset_too`: whether 0 ("no cap") is lowered as well.
    let mut cap = |name: &'static str, value: &mut usize, most: usize, unset_too: bool| {
        let most = most.max(1);
        if (*value == 0 && unset_too) || *value > most {
            lowered.push((name, *value, most));
            *value = most;
        }
    };
    cap("max_connections", &mut config.max_connections, budget, true);
    let connections = config.max_connections;
    let live = connections - connections / 4;
    cap("max_live_sockets", &mut config.max_live_sockets, live, true);
    let quarter = connections / 4;
    cap(
        "max_connections_per_ip",
        &mut config.max_connections_per_ip,
        quarter,
        false,
    );
    let quarter = config.max_live_sockets / 4;
    cap(
        "max_live_per_ip",
        &mut config.max_live_per_ip,
        quarter,
        false,
    );
    cap(
        "max_live_per_space",
        &mut config.max_live_per_space,
        quarter,
        false,
    );
    Sizing { budget, lowered }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptors_kept_are_said_as_kept_under_a_tiny_limit_too() {
        // The log said "64 descriptors kept" under a limit of 20, which keeps 10.
        assert_eq!(kept(1024), RESERVED);
        assert_eq!(kept(100), 50);
        assert_eq!(kept(20), 10);
        assert_eq!(kept(20) + budget(20), 20);
    }

    #[test]
    fn the_defaults_fit_a_generous_limit_and_are_lowered_under_a_small_one() {
        let mut c = Config::default();
        let s = size(&mut c, 65_536);
        assert_eq!(s.lowered, vec![], "the defaults fit 65,536 descriptors");
        assert_eq!(c, Config::default());

        let mut c = Config::default();
        let s = size(&mut c, 1024);
        assert_eq!(s.budget, 960);
        assert_eq!(c.max_connections, 960);
        assert_eq!(c.max_live_sockets, 720);
        assert_eq!(c.max_connections_per_ip, 64, "within a quarter of 960");
        assert_eq!(c.max_live_per_ip, 32);
        assert_eq!(
            s.lowered,
            vec![
                ("max_connections", 4096, 960),
                ("max_live_sockets", 3072, 720)
            ]
        );

        // Tiny: every per-address cap comes down to a quarter of its total.
        let mut c = Config::default();
        let s = size(&mut c, 100);
        assert_eq!(s.budget, 50);
        assert_eq!(
            (
                c.max_connections,
                c.max_live_sockets,
                c.max_connections_per_ip,
                c.max_live_per_ip,
                c.max_live_per_space
            ),
            (50, 38, 12, 9, 9)
        );
    }

    #[test]
    fn no_total_cap_becomes_the_cap_that_fits_and_no_per_address_cap_stays() {
        let mut c = Config {
            max_connections: 0,
            max_live_sockets: 0,
            max_connections_per_ip: 0,
            ..Config::default()
        };
        size(&mut c, 4096);
        assert_eq!(c.max_connections, 4032);
        assert_eq!(c.max_live_sockets, 3024);
        assert_eq!(c.max_connections_per_ip, 0);
    }

    #[cfg(unix)]
    #[test]
    fn raising_never_lowers_the_limit_and_stays_under_the_hard_one() {
        let l = raise().expect("the open-file limit can be read and raised to the hard one");
        assert!(l.soft >= l.was);
        assert!(l.soft <= l.hard);
        assert_eq!(rlimit::Resource::NOFILE.get().expect("read").0, l.soft);
    }
}
