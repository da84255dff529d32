//! What a Redis error means to the queue, read from its kind and its
//! server code, never from its text.

use redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::queue::{QueueError, UnavailableReason};

pub(super) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped()
}

/// A Redis error, or a failure to get a connection at all.
pub(super) enum RawError {
    Redis(RedisError),
    Queue(QueueError),
}

impl From<RedisError> for RawError {
    fn from(e: RedisError) -> Self {
        RawError::Redis(e)
    }
}

/// The server error codes this backend acts on. Read once from a reply
/// (its first word, the protocol's token for the error, never its text), so
/// every decision below matches a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Code {
    /// `XGROUP CREATE` of a group that exists.
    BusyGroup,
    /// A group command on a group Redis no longer has.
    NoGroup,
    /// A blocked read ended by the server (`CLIENT UNBLOCK ... ERROR`, a
    /// failover).
    Unblocked,
    /// The queue's slot is elsewhere, or moving, or its primary is failing
    /// over (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`), seen in a pipeline
    /// the cluster client could not redirect.
    Moved,
    NoAuth,
    WrongPass,
    /// The generic `ERR`: anything Redis has no code for.
    Err,
    Other,
}

impl Code {
    pub(super) fn of(code: &str) -> Code {
        match code {
            "BUSYGROUP" => Code::BusyGroup,
            "NOGROUP" => Code::NoGroup,
            "UNBLOCKED" => Code::Unblocked,
            "MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN" => Code::Moved,
            "NOAUTH" => Code::NoAuth,
            "WRONGPASS" => Code::WrongPass,
            "ERR" => Code::Err,
            _ => Code::Other,
        }
    }
}

/// The server's error code; for a pipeline or an aborted transaction, its
/// first failure's (a transaction refused with `MOVED` is not an
/// `EXECABORT` to act on, but a slot to find again).
pub(super) fn code(e: &RedisError) -> Option<Code> {
    let failures = e.clone().into_server_errors();
    let first = failures.as_deref().and_then(<[_]>::first);
    first
        .map(|(_, failure)| Code::of(failure.code()))
        .or_else(|| e.code().map(Code::of))
}

/// What a Redis error means to us, by its kind and code (never its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Unavailable(UnavailableReason),
    NeedsPassword,
    WrongPassword,
    Other,
}

pub(super) fn classify(e: &RedisError) -> Class {
    use UnavailableReason::*;
    // The redis crate keeps the I/O error behind an `Arc`.
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let io_kind = std::error::Error::source(e)
        .and_then(|s| {
            s.downcast_ref::<std::io::Error>()
                .or_else(|| s.downcast_ref::<Shared>()?.downcast_ref())
        })
        .map(std::io::Error::kind);
    if io_kind == Some(std::io::ErrorKind::Interrupted) {
        return Class::Unavailable(Interrupted);
    }
    if is_connection_error(e) {
        return Class::Unavailable(Unreachable);
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed => return Class::WrongPassword,
        ErrorKind::Server(ServerErrorKind::BusyLoading) => return Class::Unavailable(Loading),
        ErrorKind::Server(ServerErrorKind::ReadOnly) => return Class::Unavailable(ReadOnly),
        ErrorKind::Server(
            ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask,
        ) => return Class::Unavailable(Failover),
        _ => {}
    }
    match code(e) {
        Some(Code::Unblocked | Code::Moved) => Class::Unavailable(Failover),
        Some(Code::NoAuth) => Class::NeedsPassword,
        Some(Code::WrongPass) => Class::WrongPassword,
        _ => Class::Other,
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn errors_are_sorted_by_kind_not_text() {
        let server = |kind| RedisError::from((ErrorKind::Server(kind), "any text"));
        let io = |kind| RedisError::from(std::io::Error::from(kind));
        use UnavailableReason::*;
        assert_eq!(
            classify(&server(ServerErrorKind::BusyLoading)),
            Class::Unavailable(Loading)
        );
        assert_eq!(
            classify(&server(ServerErrorKind::ReadOnly)),
            Class::Unavailable(ReadOnly)
        );
        for kind in [
            ServerErrorKind::TryAgain,
            ServerErrorKind::MasterDown,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::Moved,
            ServerErrorKind::Ask,
        ] {
            assert_eq!(classify(&server(kind)), Class::Unavailable(Failover));
        }
        assert_eq!(
            classify(&io(std::io::ErrorKind::Interrupted)),
            Class::Unavailable(Interrupted)
        );
        assert_eq!(
            classify(&io(std::io::ErrorKind::ConnectionRefused)),
            Class::Unavailable(Unreachable)
        );
        assert_eq!(
            classify(&RedisError::from((ErrorKind::AuthenticationFailed, "x"))),
            Class::WrongPassword
        );
        assert_eq!(
            classify(&server(ServerErrorKind::ResponseError)),
            Class::Other
        );
        let code = |code: &str| redis::make_extension_error(code.into(), Some("any text".into()));
        assert_eq!(classify(&code("UNBLOCKED")), Class::Unavailable(Failover));
        assert_eq!(classify(&code("NOAUTH")), Class::NeedsPassword);
        assert_eq!(classify(&code("WRONGPASS")), Class::WrongPassword);
        assert_eq!(classify(&code("BUSYGROUP")), Class::Other);
        assert_eq!(super::code(&code("BUSYGROUP")), Some(Code::BusyGroup));
        assert_eq!(super::code(&code("NOGROUP")), Some(Code::NoGroup));
    }
}
