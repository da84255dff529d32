//! The library's error, and the exit status each kind of error means, so
//! callers can tell invalid input (2) from an unavailable queue (1).

use crate::catalog::ValidationError;
use crate::config::ConfigError;
use crate::queue::QueueError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event does not fit the catalog.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A setting or the config file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// `--only` or `--to` names no configured destination.
    #[error(transparent)]
    UnknownDestination(#[from] crate::route::UnknownDestination),
}

/// Invalid command-line input found after parsing (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit status for `err`: 2 for invalid input, 0 for a closed stdout
/// (`events templates | head`), 1 otherwise. (A second stop signal exits
/// 130 from the signal handler itself, with no error to map.)
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<ValidationError>()
            || cause.is::<ConfigError>()
            || cause.is::<UsageError>()
            || cause.is::<crate::route::UnknownDestination>()
            || cause.is::<crate::queue::ConsumerHeld>()
            || cause.is::<crate::metrics::serve::MetricsError>()
        {
            return 2;
        }
        match cause.downcast_ref::<Error>() {
            Some(Error::Invalid(_) | Error::Config(_) | Error::UnknownDestination(_)) => return 2,
            // A name in use is a usage mistake: another --consumer fixes it.
            Some(Error::Queue(QueueError::ConsumerHeld(_))) => return 2,
            Some(Error::Queue(_)) => return 1,
            None => {}
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return 0;
        }
    }
    1
}
