//! Redis Sentinel: the `redis+sentinel://` URL, which the redis crate does
//! not parse, and the sentinels of one service, asked for its current
//! primary before every connection. A failover then ends in a reconnection
//! to the new primary rather than in an outage.
//!
//! `redis+sentinel://[user:password@]host:port[,host:port…]/SERVICE[/DB]`
//! (`rediss+sentinel://` for TLS to the sentinels and the data nodes). The
//! user and password are the data nodes': the sentinels are asked without
//! them, as most deployments leave sentinels open on a private network and
//! a sentinel without `requirepass` refuses an `AUTH`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use redis::{
    ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisConnectionInfo, RedisError,
    RedisResult, Value,
};

use crate::sanitize;
use crate::secret::Secret;

mod exchange;

use exchange::{Deadline, Exchange};

/// How long the whole exchange with one sentinel (connecting, asking,
/// reading its answer), or with the primary it names, may take: one whose
/// host drops packets, that never answers or that answers a byte at a time
/// is passed over after this.
const LIMIT: Duration = Duration::from_secs(2);

/// The port sentinels listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 26379;
const SCHEME: &str = "redis+sentinel://";
const TLS_SCHEME: &str = "rediss+sentinel://";

/// A Sentinel URL, checked. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// TLS to the sentinels and to the data nodes.
    pub tls: bool,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// Host and port of each sentinel, in the order given.
    pub sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor the primary under.
    pub service: String,
    pub db: i64,
}

/// What is wrong with a Sentinel URL. No variant holds anything from the
/// URL's user information, so no message can show a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SentinelUrlError {
    #[error("must start with redis+sentinel:// or rediss+sentinel://")]
    Scheme,
    #[error("names no sentinel: give host:port[,host:port…] before /SERVICE")]
    NoSentinel,
    #[error("has an empty or malformed sentinel address {0:?} in its list")]
    Host(String),
    #[error("has a sentinel {0:?} whose port is not a number from 1 to 65535")]
    Port(String),
    #[error(
        "names no service: end it with /SERVICE, the name in the sentinels' `sentinel monitor SERVICE …`"
    )]
    NoService,
    #[error("has a service name {0:?} with characters other than letters, digits and punctuation")]
    Service(String),
    #[error("has a database {0:?} that is not a number from 0 up: the form is /SERVICE/DB")]
    Db(String),
    #[error("has {0:?} after /SERVICE/DB")]
    Trailing(String),
    #[error("has a query or fragment (?… or #…), which a Sentinel URL does not take")]
    Query,
    #[error("has a user or password that is not valid percent-encoded UTF-8")]
    Userinfo,
}

impl fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelUrl")
            .field("tls", &self.tls)
            .field("user", &self.user.as_ref().map(|_| "***"))
            .field("password", &self.password)
            .field("sentinels", &self.sentinels)
            .field("service", &self.service)
            .field("db", &self.db)
            .finish()
    }
}

/// Whether `url` is meant as a Sentinel URL (checked or not).
pub fn is_sentinel_url(url: &str) -> bool {
    url.starts_with(SCHEME) || url.starts_with(TLS_SCHEME)
}

impl SentinelUrl {
    /// Parses `url`. Anything before the last `@` is user information,
    /// whatever it holds (as `redact_url` reads it), so a password with an
    /// unencoded `/`, `,` or `@` is never taken for an address.
    pub fn parse(url: &str) -> Result<SentinelUrl, SentinelUrlError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix(SCHEME) {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix(TLS_SCHEME) {
            (true, rest)
        } else {
            return Err(SentinelUrlError::Scheme);
        };
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        if rest.contains(['?', '#']) {
            return Err(SentinelUrlError::Query);
        }
        let (user, password) = userinfo.map_or(Ok((None, None)), parse_userinfo)?;
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        if hosts.is_empty() {
            return Err(SentinelUrlError::NoSentinel);
        }
        let sentinels = hosts
            .split(',')
            .map(parse_address)
            .collect::<Result<_, _>>()?;
        let (service, db) = parse_path(path)?;
        Ok(SentinelUrl {
            tls,
            user,
            password,
            sentinels,
            service,
            db,
        })
    }

    /// The sentinels as `host:port, host:port`, for messages.
    pub fn sentinel_list(&self) -> String {
        let addresses: Vec<String> = self
            .sentinels
            .iter()
            .map(|(host, port)| address(host, *port))
            .collect();
        addresses.join(", ")
    }

    /// How to reach the server at `host:port`, plain or TLS as the URL
    /// says.
    fn addr(&self, host: &str, port: u16) -> ConnectionAddr {
        let host = host.to_owned();
        if self.tls {
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        }
    }

    /// A sentinel's connection settings: no password, no database, and no
    /// `CLIENT SETINFO` on connecting (one question, one answer to wait
    /// for).
    fn sentinel_info(&self, host: &str, port: u16) -> RedisResult<ConnectionInfo> {
        let redis = RedisConnectionInfo::default().set_skip_set_lib_name();
        Ok(self
            .addr(host, port)
            .into_connection_info()?
            .set_redis_settings(redis))
    }

    /// A data node's: the URL's user, password and database.
    fn data_info(&self, host: &str, port: u16) -> RedisResult<ConnectionInfo> {
        let mut redis = RedisConnectionInfo::default().set_db(self.db);
        if let Some(user) = &self.user {
            redis = redis.set_username(user);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password.expose());
        }
        Ok(self
            .addr(host, port)
            .into_connection_info()?
            .set_redis_settings(redis))
    }
}

fn parse_userinfo(userinfo: &str) -> Result<(Option<String>, Option<Secret>), SentinelUrlError> {
    let decode = |text: &str| {
        percent_decode_str(text)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| SentinelUrlError::Userinfo)
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (decode(user)?, Some(decode(password)?)),
        None => (decode(userinfo)?, None),
    };
    let user = (!user.is_empty()).then_some(user);
    let password = password.filter(|p| !p.is_empty()).map(Secret::new);
    Ok((user, password))
}

/// `host`, `host:port` or `[v6]:port`.
fn parse_address(text: &str) -> Result<(String, u16), SentinelUrlError> {
    let bad_host = || SentinelUrlError::Host(text.to_owned());
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(bad_host)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad_host)?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '[' && c != ']')
    {
        return Err(bad_host());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => number,
            _ => return Err(SentinelUrlError::Port(text.to_owned())),
        },
    };
    Ok((host.to_owned(), port))
}

/// `SERVICE` or `SERVICE/DB`.
fn parse_path(path: &str) -> Result<(String, i64), SentinelUrlError> {
    let mut parts = path.splitn(3, '/');
    let service = parts.next().unwrap_or_default();
    if service.is_empty() {
        return Err(SentinelUrlError::NoService);
    }
    if !service.chars().all(|c| c.is_ascii_graphic()) {
        return Err(SentinelUrlError::Service(service.to_owned()));
    }
    let db = match parts.next() {
        None | Some("") => 0,
        Some(db) => match db.parse::<i64>() {
            Ok(number) if db.bytes().all(|b| b.is_ascii_digit()) => number,
            _ => return Err(SentinelUrlError::Db(db.to_owned())),
        },
    };
    match parts.next() {
        None | Some("") => Ok((service.to_owned(), db)),
        Some(rest) => Err(SentinelUrlError::Trailing(rest.to_owned())),
    }
}

/// Whether a `ROLE` reply is a primary's (`master`, first).
fn is_primary(role: &Value) -> bool {
    let Value::Array(parts) = role else {
        return false;
    };
    matches!(
        parts.first(),
        Some(Value::BulkString(b)) if b.as_slice() == b"master"
    ) || matches!(parts.first(), Some(Value::SimpleString(s)) if s == "master")
}

/// A sentinel's answer that names no usable primary: a failover under way,
/// or a service it does not monitor.
fn not_found(why: &'static str) -> RedisError {
    RedisError::from((ErrorKind::MasterNameNotFoundBySentinel, why))
}

/// A sentinel's answer to `get-master-addr-by-name` that is neither an
/// address nor none.
fn not_address() -> RedisError {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "answered with something other than an address",
    )
    .into()
}

/// `e`, which the `who` at `host:port` gave, as an I/O error naming it
/// (`sentinel 10.0.0.5:26379 did not answer within 2 s`), so the lookup
/// passes over it as one it could not reach. What a server said is echoed
/// short and escaped; a lookup's own verdict (no primary) is kept as is.
fn about(who: &str, host: &str, port: u16, e: RedisError) -> RedisError {
    if e.kind() == ErrorKind::MasterNameNotFoundBySentinel {
        return e;
    }
    let server = address(host, port);
    let why = match e.code() {
        Some(code) => format!(
            "answered with an error: {}",
            sanitize::excerpt(&format!("{code} {}", e.detail().unwrap_or_default()))
        ),
        None => sanitize::excerpt(&e.to_string()),
    };
    let kind = if e.is_timeout() {
        std::io::ErrorKind::TimedOut
    } else {
        std::io::ErrorKind::Other
    };
    std::io::Error::new(kind, format!("{who} {server} {why}")).into()
}

/// `host:port`, with an IPv6 host in brackets.
fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The sentinels of one service, and the primary they named last.
pub struct Sentinels {
    url: SentinelUrl,
    primary: Option<String>,
    answered: Answered,
}

/// The sentinel that answered last, shared by every queue opened from the
/// same settings: every connection of a worker (reader, settler, lanes)
/// starts with it, so one that hangs costs its timeout once per worker.
#[derive(Debug, Clone, Default)]
pub struct Answered(Arc<Mutex<Option<(String, u16)>>>);

impl Sentinels {
    pub fn new(mut url: SentinelUrl, answered: Answered) -> RedisResult<Sentinels> {
        for (host, port) in &url.sentinels {
            url.sentinel_info(host, *port)?;
        }
        let first = answered.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(first) = first
            && let Some(index) = url.sentinels.iter().position(|s| *s == first)
        {
            url.sentinels[..=index].rotate_right(1);
        }
        Ok(Sentinels {
            url,
            primary: None,
            answered,
        })
    }

    /// Remembers `first` as the sentinel to ask first, for every queue
    /// that shares this memory.
    fn answered(&self, first: (String, u16)) {
        *self.answered.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(first);
    }

    /// Asks the sentinels, in turn, for the service's primary (checked with
    /// `ROLE`, as Sentinel's client guidelines ask), and returns a client
    /// for it. The exchange with each sentinel, and with the primary it
    /// names, gets [`LIMIT`] in all and has its answers read up to a bound:
    /// one that hangs, trickles or floods is passed over like one that
    /// refuses. When none names a primary that answers
    /// as one, the error says why: a sentinel's answer, if any gave one,
    /// else the last connection's failure.
    pub fn primary(&mut self) -> RedisResult<redis::Client> {
        let mut failed: Option<RedisError> = None;
        let mut found = None;
        for (index, (host, port)) in self.url.sentinels.iter().enumerate() {
            match self.ask(host, *port) {
                Ok(named) => {
                    found = Some((named, index));
                    break;
                }
                Err(e) => {
                    // An answer (no primary, a replica named) says more
                    // than a sentinel that could not be reached.
                    if failed
                        .as_ref()
                        .is_none_or(|f| f.is_io_error() || f.is_timeout())
                    {
                        failed = Some(e);
                    }
                }
            }
        }
        let Some(((client, primary), index)) = found else {
            return Err(failed.unwrap_or_else(|| not_found("no sentinel to ask")));
        };
        // The one that answered is asked first next time (Sentinel's client
        // guidelines): a sentinel that hangs costs its timeout once, not at
        // every reconnection.
        self.url.sentinels[..=index].rotate_right(1);
        self.answered(self.url.sentinels[0].clone());
        if let Some(before) = self.primary.as_ref().filter(|before| **before != primary) {
            log::info!(
                "the sentinels name a new primary for {}: {primary} (was {before})",
                self.url.service
            );
        }
        self.primary = Some(primary);
        Ok(client)
    }

    /// Asks one sentinel for the primary and checks it: a client for it,
    /// and its `host:port`. Each error names the server it came from.
    fn ask(&self, host: &str, port: u16) -> RedisResult<(redis::Client, String)> {
        let named = self
            .named(host, port)
            .map_err(|e| about("sentinel", host, port, e))?;
        let Some((host, port)) = named else {
            return Err(not_found("knows no primary of that name"));
        };
        let client = redis::Client::open(self.url.data_info(&host, port)?)?;
        self.check_role(&host, port).map_err(|e| match e.code() {
            // The primary's own refusal (`NOAUTH`, `WRONGPASS`) is told
            // as a data node's.
            Some(_) => e,
            None => about("primary", &host, port, e),
        })?;
        Ok((client, address(&host, port)))
    }

    /// The primary the sentinel at `host:port` names, if it knows one.
    fn named(&self, host: &str, port: u16) -> RedisResult<Option<(String, u16)>> {
        let mut sentinel = Exchange::open(host, port, self.url.tls, Deadline::after(LIMIT))?;
        let answer = sentinel.ask(
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&self.url.service),
        )?;
        let text = |value: &Value| match value {
            Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
            Value::SimpleString(text) => Some(text.clone()),
            _ => None,
        };
        match &answer {
            Value::Nil => Ok(None),
            Value::Array(parts) if parts.len() == 2 => {
                let host =
                    text(&parts[0]).filter(|h| !h.is_empty() && !h.contains(char::is_control));
                let port = text(&parts[1]).and_then(|p| p.parse::<u16>().ok());
                match (host, port) {
                    (Some(host), Some(port)) => Ok(Some((host, port))),
                    _ => Err(not_address()),
                }
            }
            _ => Err(not_address()),
        }
    }

    /// Whether the server at `host:port` answers `ROLE` as a primary (with
    /// the URL's user and password, if any), within [`LIMIT`].
    fn check_role(&self, host: &str, port: u16) -> RedisResult<()> {
        let mut primary = Exchange::open(host, port, self.url.tls, Deadline::after(LIMIT))?;
        if let Some(password) = &self.url.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &self.url.user {
                auth.arg(user);
            }
            primary.ask(auth.arg(password.expose()))?;
        }
        let role = primary.ask(&redis::cmd("ROLE"))?;
        if !is_primary(&role) {
            return Err(not_found(
                "names a server that does not answer as a primary",
            ));
        }
        Ok(())
    }

    /// `sentinel SERVICE, primary host:port`, or the sentinels while no
    /// primary is known yet.
    pub fn describe(&self) -> String {
        match &self.primary {
            Some(primary) => format!("sentinel {}, primary {primary}", self.url.service),
            None => format!(
                "sentinel {}, sentinels {}",
                self.url.service,
                self.url.sentinel_list()
            ),
        }
    }

    /// For messages: the service and the sentinels asked.
    pub fn shown(&self) -> String {
        format!(
            "{} (sentinels tried: {})",
            self.url.service,
            self.url.sentinel_list()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::redis::RedisQueue;
    use crate::queue::{Describe, QueueOptions};

    fn parse(url: &str) -> Result<SentinelUrl, SentinelUrlError> {
        SentinelUrl::parse(url)
    }

    #[test]
    fn a_full_url_gives_every_part() {
        let url =
            parse("rediss+sentinel://app:s%40cret@h1:26380,[::1]:26381,h3/mymaster/2").unwrap();
        assert!(url.tls);
        assert_eq!(url.user.as_deref(), Some("app"));
        assert_eq!(url.password.as_ref().map(Secret::expose), Some("s@cret"));
        assert_eq!(
            url.sentinels,
            [
                ("h1".to_owned(), 26380),
                ("::1".to_owned(), 26381),
                ("h3".to_owned(), DEFAULT_PORT)
            ]
        );
        assert_eq!(url.service, "mymaster");
        assert_eq!(url.db, 2);
        assert_eq!(url.sentinel_list(), "h1:26380, [::1]:26381, h3:26379");
    }

    #[test]
    fn a_minimal_url_has_no_credentials_and_database_0() {
        let url = parse("redis+sentinel://127.0.0.1:26379/events").unwrap();
        assert!(!url.tls);
        assert_eq!((url.user, url.password), (None, None));
        assert_eq!(url.db, 0);
        let url = parse("redis+sentinel://:pw@h:1/events/").unwrap();
        assert_eq!(url.user, None);
        assert_eq!(url.password.as_ref().map(Secret::expose), Some("pw"));
    }

    #[test]
    fn a_password_with_unencoded_separators_is_all_userinfo() {
        let url = parse("redis+sentinel://:a/b,c@d?e#f@h1:1,h2:2/svc").unwrap();
        assert_eq!(
            url.password.as_ref().map(Secret::expose),
            Some("a/b,c@d?e#f")
        );
        assert_eq!(url.sentinels.len(), 2);
    }

    #[test]
    fn each_mistake_has_its_own_error() {
        use SentinelUrlError::*;
        let cases = [
            ("redis://h:1/svc", Scheme),
            ("redis+sentinel:///svc", NoSentinel),
            ("redis+sentinel://h1:1,,h2/svc", Host(String::new())),
            ("redis+sentinel://[::1/svc", Host("[::1".into())),
            ("redis+sentinel://h1:0/svc", Port("h1:0".into())),
            ("redis+sentinel://h1:+5/svc", Port("h1:+5".into())),
            ("redis+sentinel://h1:70000/svc", Port("h1:70000".into())),
            ("redis+sentinel://h1:1", NoService),
            ("redis+sentinel://h1:1/", NoService),
            (
                "redis+sentinel://h1:1/my master",
                Service("my master".into()),
            ),
            ("redis+sentinel://h1:1/svc/x", Db("x".into())),
            ("redis+sentinel://h1:1/svc/-1", Db("-1".into())),
            ("redis+sentinel://h1:1/svc/0/more", Trailing("more".into())),
            ("redis+sentinel://h1:1/svc?db=1", Query),
            ("redis+sentinel://:%ff@h1:1/svc", Userinfo),
        ];
        for (url, expected) in cases {
            assert_eq!(parse(url), Err(expected), "{url}");
        }
    }

    #[test]
    fn debug_and_the_sentinels_description_never_show_the_password() {
        let url = parse("redis+sentinel://Zuser:Zpass@h1:1/svc").unwrap();
        let shown = format!("{url:?}");
        assert!(
            !shown.contains("Zpass") && !shown.contains("Zuser"),
            "{shown}"
        );
        let sentinels = Sentinels::new(url, Answered::default()).unwrap();
        assert_eq!(sentinels.describe(), "sentinel svc, sentinels h1:1");
        assert_eq!(sentinels.shown(), "svc (sentinels tried: h1:1)");
    }

    /// Who answered last is remembered by the queues opened from the same
    /// settings, and by no others (no process-wide memory).
    #[test]
    fn the_sentinel_that_answered_is_asked_first_by_queues_sharing_the_settings() {
        let url = parse("redis+sentinel://h1:1,h2:2,h3:3/svc").unwrap();
        let shared = Answered::default();
        let first = Sentinels::new(url.clone(), shared.clone()).unwrap();
        first.answered(("h3".into(), 3));
        let again = Sentinels::new(url.clone(), shared).unwrap();
        assert_eq!(again.url.sentinel_list(), "h3:3, h1:1, h2:2");
        let other = Sentinels::new(url, Answered::default()).unwrap();
        assert_eq!(other.url.sentinel_list(), "h1:1, h2:2, h3:3");
    }

    #[test]
    fn a_tls_url_builds_a_client_for_sentinels_and_primary() {
        let url = parse("rediss+sentinel://u:p@h1:1,h2:2/svc/3").unwrap();
        let sentinels = Sentinels::new(url, Answered::default()).unwrap();
        assert_eq!(sentinels.describe(), "sentinel svc, sentinels h1:1, h2:2");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_gives_an_error(text in "\\PC{0,80}") {
            let _ = parse(&text);
            let _ = parse(&format!("redis+sentinel://{text}"));
        }

        /// Whatever the password holds, no error and no description (the
        /// queue's `describe`, as `status` shows it) shows any of it.
        #[test]
        fn no_part_of_a_password_is_ever_shown(
            password in "[#/?@:,%\\[\\]a-z\\PC]{0,20}",
            rest in "[a-z0-9:,/\\[\\]%?#-]{0,30}",
        ) {
            let password = format!("Zq{password}Zq");
            for url in [
                format!("redis+sentinel://:{password}@{rest}"),
                format!("rediss+sentinel://user:{password}@h1:26379,{rest}"),
                format!("redis+sentinel://:{password}@h1:26379/svc{rest}"),
            ] {
                let shown = match parse(&url) {
                    Ok(parsed) => {
                        let debug = format!("{parsed:?}");
                        let queue = RedisQueue::with_sentinels(
                            parsed.clone(),
                            Answered::default(),
                            "{events}",
                            QueueOptions::default(),
                        );
                        let queue = queue.map_or_else(|e| e.to_string(), |q| q.describe());
                        let sentinels = Sentinels::new(parsed, Answered::default());
                        let described = sentinels.map_or_else(
                            |e| e.to_string(),
                            |s| format!("{} {}", s.describe(), s.shown()),
                        );
                        format!("{debug} {queue} {described}")
                    }
                    Err(e) => e.to_string(),
                };
                proptest::prop_assert!(!shown.contains("Zq"), "{url:?} shown as {shown:?}");
            }
        }
    }
}
