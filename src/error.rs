//! The library's error, and the exit status each kind of error means, so
//! callers can tell invalid input (2) from an unavailable queue (1).

use std::io::ErrorKind;

use crate::catalog::ValidationError;
use crate::config::ConfigError;
use crate::queue::QueueError;
use crate::replay::ReplayError;

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
    /// Invalid command-line input found after parsing.
    #[error("{0}")]
    Usage(String),
    /// `--metrics-addr` cannot be served.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::serve::MetricsError),
    /// A replay could not be planned or made.
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

impl Error {
    /// The exit status it means: 2 for invalid input, 1 for a runtime
    /// failure, 0 for a closed stdout.
    pub fn code(&self) -> i32 {
        match self {
            Error::Invalid(_)
            | Error::Config(_)
            | Error::UnknownDestination(_)
            | Error::Usage(_)
            | Error::Metrics(_)
            | Error::Replay(ReplayError::Usage(_)) => 2,
            // A name in use is a usage mistake: another --consumer fixes it.
            Error::Queue(QueueError::ConsumerHeld(_))
            | Error::Replay(ReplayError::Queue(QueueError::ConsumerHeld(_))) => 2,
            // A closed stdout (`replay --dry-run | head`) is no failure.
            Error::Replay(ReplayError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => 0,
            Error::Queue(_) | Error::Replay(_) => 1,
        }
    }
}

/// The exit status for `err`: the first library [`Error`] in its chain
/// says it; else 0 for a closed stdout (`events templates | head`), 1
/// otherwise. (A second stop signal exits 130 from the signal handler
/// itself, with no error to map.)
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|cause| match cause.downcast_ref::<Error>() {
            Some(error) => Some(error.code()),
            None => cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                .then_some(0),
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_library_error_in_the_chain_says_the_exit_status() {
        let usage = anyhow::Error::from(Error::from(ReplayError::Usage("--since".into())));
        assert_eq!(exit_code(&usage.context("replay stopped")), 2);
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let closed = anyhow::Error::from(Error::from(ReplayError::Output(pipe)));
        assert_eq!(exit_code(&closed), 0);
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(exit_code(&anyhow::Error::from(pipe).context("stdout")), 0);
        assert_eq!(exit_code(&anyhow::anyhow!("anything else")), 1);
    }
}
