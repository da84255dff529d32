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

use percent_encoding::percent_decode_str;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, RedisResult, TlsMode};

use crate::secret::Secret;

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

    /// A client that asks these sentinels for the primary and connects to
    /// it with the URL's user, password, database and TLS.
    fn client(&self) -> RedisResult<SentinelClient> {
        let addresses = self.sentinels.iter().map(|(host, port)| {
            let (host, port) = (host.clone(), *port);
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
        });
        let mut builder =
            SentinelClientBuilder::new(addresses, &self.service, SentinelServerType::Master)?
                .set_client_to_redis_db(self.db);
        if self.tls {
            builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
        }
        if let Some(user) = &self.user {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password.expose());
        }
        builder.build()
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
    client: SentinelClient,
    primary: Option<String>,
}

impl Sentinels {
    pub fn new(url: SentinelUrl) -> RedisResult<Sentinels> {
        Ok(Sentinels {
            client: url.client()?,
            url,
            primary: None,
        })
    }

    /// Asks the sentinels, in turn, for the service's primary (checked with
    /// `ROLE`), and returns a client for it.
    pub fn primary(&mut self) -> RedisResult<redis::Client> {
        let client = self.client.get_client()?;
        let primary = match client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                address(host, *port)
            }
            other => other.to_string(),
        };
        if let Some(before) = self.primary.as_ref().filter(|before| **before != primary) {
            log::info!(
                "the sentinels name a new primary for {}: {primary} (was {before})",
                self.url.service
            );
        }
        self.primary = Some(primary);
        Ok(client)
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
        let sentinels = Sentinels::new(url).unwrap();
        assert_eq!(sentinels.describe(), "sentinel svc, sentinels h1:1");
        assert_eq!(sentinels.shown(), "svc (sentinels tried: h1:1)");
    }

    #[test]
    fn a_tls_url_builds_a_client_for_sentinels_and_primary() {
        let url = parse("rediss+sentinel://u:p@h1:1,h2:2/svc/3").unwrap();
        let sentinels = Sentinels::new(url).unwrap();
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
                            "{events}",
                            QueueOptions::default(),
                        );
                        let queue = queue.map_or_else(|e| e.to_string(), |q| q.describe());
                        let sentinels = Sentinels::new(parsed);
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
