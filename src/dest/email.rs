//! Email over SMTP, through `lettre`: one plain-text message per event, for
//! the daily digest and low-volume alerts. The mail server is one URL in
//! the environment (`EVENTS_SMTP_URL` unless `smtp_url_env` names another):
//! `smtps://` (TLS from the first byte), `smtp://…:587` (STARTTLS required:
//! no credentials or mail cross an unencrypted connection), or plain
//! `smtp://` to a loopback host only. A 4xx reply is retried, a 5xx
//! dead-lettered. The URL holds the password: it is never shown.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Message, SmtpTransport, Transport as _};

use super::kind::Entry;
use super::{Answer, Attempt, Destination, Item, Unsendable};
use crate::catalog::Catalog;
use crate::config::{ConfigError, Env};
use crate::event::Event;
use crate::secret::{Secret, redact_url};
use crate::template::Style;

/// Where the SMTP URL is read from unless `smtp_url_env` says otherwise.
pub const DEFAULT_URL_ENV: &str = "EVENTS_SMTP_URL";

/// SMTP submission with STARTTLS (RFC 6409).
const SUBMISSION_PORT: u16 = 587;
/// SMTP over TLS (RFC 8314).
const SUBMISSIONS_PORT: u16 = 465;
/// Plain SMTP, for a relay on this host.
const SMTP_PORT: u16 = 25;
/// A subject longer than this is cut: mail clients show far less.
const MAX_SUBJECT_CHARS: usize = 200;
/// How much of a server's error reply is kept.
const MAX_ERROR_CHARS: usize = 200;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `smtps://`: TLS from the first byte.
    Tls,
    /// `smtp://…:587`: STARTTLS, or no mail at all.
    StartTls,
    /// `smtp://` to a loopback host: nothing leaves this machine.
    Plain,
}

/// A checked SMTP URL: where to connect, how, and as whom.
#[derive(Clone)]
pub struct SmtpUrl {
    url: Secret,
    host: String,
    port: u16,
    security: Security,
    user: Option<(String, Secret)>,
}

/// Never the user or the password.
impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.url.expose()))
    }
}

impl SmtpUrl {
    /// Checks `text`; the error never shows it (it holds the password).
    pub fn parse(text: &str) -> Result<SmtpUrl, String> {
        let url = url::Url::parse(text).map_err(|_| {
            "is not a valid URL such as smtps://user:password@smtp.example.com:465 \
             (percent-encode any of : / ? # @ in the user and password)"
                .to_owned()
        })?;
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("names no host".into()),
        };
        if url.query().is_some() || !url.path().trim_matches('/').is_empty() {
            return Err("takes no path or query: the scheme and port say how to connect".into());
        }
        let (security, port) = match (url.scheme(), url.port()) {
            ("smtps", port) => (Security::Tls, port.unwrap_or(SUBMISSIONS_PORT)),
            ("smtp", None | Some(SUBMISSION_PORT)) if !is_loopback(&host) => {
                (Security::StartTls, SUBMISSION_PORT)
            }
            ("smtp", port) if is_loopback(&host) => (Security::Plain, port.unwrap_or(SMTP_PORT)),
            ("smtp", Some(_)) => {
                return Err(format!(
                    "would send mail unencrypted to {host}: plain smtp:// is only for a loopback host; \
                     use smtps://…:465, or smtp://…:587 (STARTTLS)"
                ));
            }
            (scheme, _) => {
                return Err(format!(
                    "has the scheme {scheme:?}: expected smtps:// or smtp://"
                ));
            }
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "has a user or password that is not UTF-8 once decoded".to_owned())
        };
        let user = match url.password() {
            Some(password) => Some((decode(url.username())?, Secret::new(decode(password)?))),
            None if !url.username().is_empty() => {
                return Err("has a user but no password".into());
            }
            None => None,
        };
        Ok(SmtpUrl {
            url: Secret::new(text),
            host,
            port,
            security,
            user,
        })
    }

    /// Where it sends, safe to print: `smtps://***@smtp.example.com:465`.
    pub fn redacted(&self) -> String {
        redact_url(self.url.expose())
    }

    fn transport(&self, timeout: Duration) -> Result<SmtpTransport, String> {
        let tls = || {
            TlsParameters::new(self.host.clone())
                .map_err(|e| format!("cannot set up TLS for the mail server: {e}"))
        };
        let mut builder = SmtpTransport::builder_dangerous(self.host.clone())
            .port(self.port)
            .timeout(Some(timeout))
            .hello_name(hello_name())
            .tls(match self.security {
                Security::Tls => Tls::Wrapper(tls()?),
                Security::StartTls => Tls::Required(tls()?),
                Security::Plain => Tls::None,
            });
        if let Some((user, password)) = &self.user {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(builder.build())
    }

    /// Every piece of the URL that must never be shown.
    fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![self.url.expose()];
        if let Some((_, password)) = &self.user {
            secrets.push(password.expose());
        }
        secrets
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// This host's name for `EHLO`, or the loopback literal lettre uses when
/// it has none that is a plain domain name.
fn hello_name() -> ClientId {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let plain = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if plain {
        ClientId::Domain(host)
    } else {
        ClientId::default()
    }
}

/// What an email destination needs to send.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub smtp: SmtpUrl,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// The messages with its `subject` template in place of each routed
    /// type's, or `None` for the message itself as the subject.
    pub subject: Option<Catalog>,
}

impl super::Settings for EmailSettings {
    fn target(&self) -> String {
        self.smtp.redacted()
    }

    fn build(&self, name: String, catalog: &Catalog, timeout: Duration) -> Arc<dyn Destination> {
        Arc::new(Email::new(name, self.clone(), catalog.clone(), timeout))
    }
}

/// The `email` kind: the SMTP URL from `smtp_url_env` (`EVENTS_SMTP_URL`),
/// `from`, the list `to`, and an optional `subject` template checked
/// against the fields of every type it routes. Only a config file
/// declares one: it needs its sender and recipients.
pub struct EmailKind;

impl super::Kind for EmailKind {
    fn name(&self) -> &'static str {
        "email"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["smtp_url_env", "from", "to", "subject"]
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn super::Settings>, ConfigError> {
        let smtp = smtp_url(entry)?;
        let from = match entry.string("from")? {
            Some(from) => parse_mailbox(from.get_ref()).map_err(|e| entry.at(from.span(), "from", e))?,
            None => return Err(entry.at(entry.kind_span.clone(), "from", format!("destination {:?} needs the address its mail comes from (from = \"events@example.com\")", entry.name))),
        };
        let subject = match entry.string("subject")? {
            Some(subject) => Some(
                entry
                    .catalog
                    .with_template(entry.events, subject.get_ref())
                    .map_err(|e| entry.at(subject.span(), "subject", e))?,
            ),
            None => None,
        };
        Ok(Box::new(EmailSettings {
            smtp,
            from,
            to: recipients(entry)?,
            subject,
        }))
    }

    fn parse_env(&self, _: &Env<'_>) -> Result<Option<Box<dyn super::Settings>>, ConfigError> {
        Ok(None)
    }
}

/// The SMTP URL in the variable `smtp_url_env` names, checked; the error
/// never shows it.
fn smtp_url(entry: &Entry<'_>) -> Result<SmtpUrl, ConfigError> {
    let url = entry.secret("smtp_url_env", DEFAULT_URL_ENV)?;
    SmtpUrl::parse(url.expose()).map_err(|e| {
        let named = entry.string("smtp_url_env").ok().flatten();
        let (var, span) = match &named {
            Some(var) => (var.get_ref().as_str(), var.span()),
            None => (DEFAULT_URL_ENV, entry.kind_span.clone()),
        };
        entry.at(span, "smtp_url_env", format!("the SMTP URL in {var} {e}"))
    })
}

/// The addresses of `to`: at least one.
fn recipients(entry: &Entry<'_>) -> Result<Vec<Mailbox>, ConfigError> {
    match entry.table.get::<Vec<String>>("to")? {
        Some(to) if !to.get_ref().is_empty() => to
            .get_ref()
            .iter()
            .map(|address| parse_mailbox(address))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| entry.at(to.span(), "to", e)),
        to => Err(entry.at(
            to.map_or(entry.kind_span.clone(), |to| to.span()),
            "to",
            format!(
                "destination {:?} needs at least one recipient (to = [\"ops@example.com\"])",
                entry.name
            ),
        )),
    }
}

/// `from` or an entry of `to`, checked: `Ops <ops@example.com>` or
/// `ops@example.com`.
pub fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an email address such as \"Ops <ops@example.com>\""))
}

pub struct Email {
    name: String,
    settings: EmailSettings,
    catalog: Catalog,
    /// Built once; `None` with the reason when TLS cannot be set up.
    transport: Result<SmtpTransport, String>,
}

impl Email {
    pub fn new(
        name: String,
        settings: EmailSettings,
        catalog: Catalog,
        timeout: Duration,
    ) -> Email {
        Email {
            name,
            transport: settings.smtp.transport(timeout),
            settings,
            catalog,
        }
    }

    /// The subject of `event`'s mail: its own template's, else `message`,
    /// on one line.
    fn subject(&self, event: &Event, message: &str) -> Result<String, String> {
        let subject = match &self.settings.subject {
            Some(catalog) => catalog
                .render(event, Style::Plain)
                .map_err(|e| e.to_string())?,
            None => message.to_owned(),
        };
        Ok(subject
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_SUBJECT_CHARS)
            .collect())
    }

    fn message(&self, item: &Item) -> Result<Message, String> {
        let event = &item.event;
        let to: Mailboxes = self.settings.to.iter().cloned().collect();
        let mut builder = Message::builder()
            .from(self.settings.from.clone())
            .subject(self.subject(event, &item.body)?)
            .message_id(Some(format!("<{}@events>", event.dedupe_uuid())))
            .header(ContentType::TEXT_PLAIN);
        for mailbox in to {
            builder = builder.to(mailbox);
        }
        builder
            .body(body(event, &item.body))
            .map_err(|e| format!("cannot make the mail: {e}"))
    }

    /// `text` without any secret of the URL, one line, bounded.
    fn hide(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.settings.smtp.secrets() {
            if !secret.is_empty() {
                text = text.replace(secret, "***");
            }
        }
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_ERROR_CHARS)
            .collect()
    }
}

/// The mail's text: the message, then the whole event as indented JSON,
/// for whoever reads it to see every field, the id and the time.
fn body(event: &Event, message: &str) -> String {
    let json = serde_json::to_string_pretty(event).unwrap_or_else(|_| event.to_json_line());
    format!("{message}\n\n{json}\n")
}

impl Destination for Email {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        let message = self
            .catalog
            .render(event, Style::Plain)
            .map_err(Unsendable::from)?;
        self.subject(event, &message).map_err(Unsendable)?;
        Ok(message)
    }

    /// One mail an event. SMTP has no HTTP status to record.
    fn send(&self, items: &[Item]) -> Answer {
        let Some(item) = items.first() else {
            return Attempt::Delivered.into();
        };
        let transport = match &self.transport {
            Ok(transport) => transport,
            Err(e) => return Attempt::Permanent(e.clone()).into(),
        };
        let message = match self.message(item) {
            Ok(message) => message,
            Err(e) => return Attempt::Permanent(self.hide(&e)).into(),
        };
        match transport.send(&message) {
            Ok(_) => Attempt::Delivered.into(),
            Err(e) => classify(&e, |text| self.hide(text)).into(),
        }
    }
}

/// A 4xx reply is transient, a 5xx permanent (the server refused the
/// sender, a recipient or the mail), as is a mail the client cannot send;
/// anything else (refused connection, timeout, TLS) is worth retrying.
fn classify(e: &lettre::transport::smtp::Error, hide: impl Fn(&str) -> String) -> Attempt {
    let reason = std::error::Error::source(e).map(ToString::to_string);
    let text = match (e.status(), &reason, io_error(e)) {
        (Some(code), Some(reason), _) => format!("SMTP {code} {reason}"),
        (Some(code), None, _) => format!("SMTP {code}"),
        // A socket read timeout is `WouldBlock` on Unix.
        (None, _, Some(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            "SMTP timed out".into()
        }
        (None, _, Some(io)) => format!("SMTP connection error: {io}"),
        (None, _, None) => format!("SMTP {e}"),
    };
    let text = hide(&text);
    if e.is_permanent() || e.is_client() {
        Attempt::Permanent(text)
    } else {
        Attempt::Transient(text)
    }
}

/// The I/O error under `e`, if a socket failed.
fn io_error(e: &lettre::transport::smtp::Error) -> Option<&std::io::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(url: &str) -> Result<(Security, u16), String> {
        SmtpUrl::parse(url).map(|u| (u.security, u.port))
    }

    #[test]
    fn the_scheme_and_port_say_how_to_connect() {
        assert_eq!(
            security("smtps://u:p@smtp.example.com"),
            Ok((Security::Tls, 465))
        );
        assert_eq!(
            security("smtp://u:p@smtp.example.com:587"),
            Ok((Security::StartTls, 587))
        );
        assert_eq!(
            security("smtp://u:p@smtp.example.com"),
            Ok((Security::StartTls, 587))
        );
        assert_eq!(
            security("smtp://127.0.0.1:2525"),
            Ok((Security::Plain, 2525))
        );
        assert_eq!(security("smtp://localhost"), Ok((Security::Plain, 25)));
        assert_eq!(security("smtp://[::1]:2525"), Ok((Security::Plain, 2525)));
    }

    #[test]
    fn plain_smtp_elsewhere_than_this_host_is_refused() {
        let e = security("smtp://u:hunter2@smtp.example.com:25").unwrap_err();
        assert!(e.contains("unencrypted to smtp.example.com"), "{e}");
        assert!(!e.contains("hunter2"));
        for bad in [
            "http://smtp.example.com",
            "smtps://smtp.example.com/path",
            "smtp://smtp.example.com?tls=opportunistic",
            "smtps://user@smtp.example.com",
            "not a url hunter2",
        ] {
            let e = security(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{bad}: {e}");
        }
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let url = SmtpUrl::parse("smtps://me%40example.com:p%2Fss@smtp.example.com").unwrap();
        let (user, password) = url.user.as_ref().unwrap();
        assert_eq!(user, "me@example.com");
        assert_eq!(password.expose(), "p/ss");
        assert_eq!(format!("{url:?}"), "smtps://***@smtp.example.com");
        assert_eq!(url.redacted(), "smtps://***@smtp.example.com");
    }

    #[test]
    fn mailboxes_are_checked() {
        assert!(parse_mailbox("Ops <ops@example.com>").is_ok());
        assert!(parse_mailbox("ops@example.com").is_ok());
        assert!(parse_mailbox("ops").is_err());
    }
}
