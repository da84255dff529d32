//! What every HTTP destination shares: one agent per destination (keep-alive,
//! a timeout on every phase, status codes and redirects as values), and the
//! reading of a response into an `Attempt`. Receivers are not trusted: a
//! redirect is never followed, a body is read only up to a bound, and a
//! `Retry-After` of any shape yields a bounded wait. Errors never carry the
//! URL: webhook URLs are secrets.

use std::io::Read as _;
use std::time::{Duration, SystemTime};

use ureq::ResponseExt as _;
use ureq::http::Uri;

use super::{Answer, Attempt};
use crate::sanitize;

/// An agent that returns 3xx/4xx/5xx responses instead of errors, keeps a
/// connection open for every lane, and times out each phase of a request
/// (a global timeout would make every request resolve the host on a new
/// thread). Redirects are never followed: a followed `POST` becomes a
/// body-less `GET` (or carries the signature headers) to a host nobody
/// configured, and its `200` would count as delivered.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_send_body(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
        .max_idle_connections_per_host(64)
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("events/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The longest `Retry-After` honoured; a longer one is capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The wait after a `429` without a usable `Retry-After`, and the least wait
/// after any `429`: a receiver answering `Retry-After: 0` (or a past date)
/// forever must not be hammered in a tight loop.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How much of a response body is read: enough for any error text, and a
/// receiver sending gigabytes cannot grow the worker's memory.
const MAX_BODY: u64 = 64 * 1024;

/// Classifies a response: 2xx delivered (the status is the receiver's word,
/// whatever the body says); 3xx permanent (a redirect is never followed);
/// 429 wait for `Retry-After`; 408 and 5xx transient; any other status
/// permanent. The error text is the status and the first line of the body
/// (Slack's `channel_not_found`).
pub fn classify(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    classify_with(result, |_| ErrorBody::default())
}

/// What a service's own error body says beyond its status: Discord's JSON
/// `retry_after` and `message`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorBody {
    /// The wait a `429` asks for; preferred to the `Retry-After` header.
    pub retry_after: Option<Duration>,
    /// The error in the service's words, instead of the body's first line.
    pub text: Option<String>,
}

/// As [`classify`], with `read` making sense of the body of an error
/// response (its text, bounded) in the service's own terms.
pub fn classify_with(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    read: impl Fn(&str) -> ErrorBody,
) -> Answer {
    let mut response = match result {
        Ok(response) => response,
        // A URL that cannot be requested will never work.
        Err(e @ ureq::Error::BadUri(_)) => return failed(Attempt::Permanent(describe_error(&e))),
        Err(e) => return failed(Attempt::Transient(describe_error(&e))),
    };
    let status = response.status().as_u16();
    let answer = |attempt| Answer {
        status: Some(status),
        attempt,
    };
    if (200..300).contains(&status) {
        // Read (up to the bound) to the end: only then is the connection reused.
        read_bounded(response.body_mut());
        return answer(Attempt::Delivered);
    }
    if (300..400).contains(&status) {
        return answer(Attempt::Permanent(redirect_text(
            status,
            redirect_host(&response).as_deref(),
        )));
    }
    let retry_after = retry_after_header(&response);
    let body = String::from_utf8_lossy(&read_bounded(response.body_mut())).into_owned();
    let said = read(&body);
    let error = error_text(status, said.text.as_deref().unwrap_or(&body));
    answer(match status {
        429 => rate_limited(said.retry_after.or(retry_after), error),
        408 | 500..=599 => Attempt::Transient(error),
        _ => Attempt::Permanent(error),
    })
}

/// The wait a response's `Retry-After` header asks for, if it is usable.
pub fn retry_after_header(response: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// Rate limited: wait `wait` (bounded both ways), or a second when the
/// receiver did not say how long.
pub fn rate_limited(wait: Option<Duration>, error: String) -> Attempt {
    Attempt::RetryAfter(
        wait.unwrap_or(MIN_RETRY_AFTER)
            .clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER),
        error,
    )
}

fn failed(attempt: Attempt) -> Answer {
    Answer::from(attempt)
}

/// At most `MAX_BODY` bytes of a body; what could not be read is left out.
pub fn read_bounded(body: &mut ureq::Body) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = body.as_reader().take(MAX_BODY).read_to_end(&mut bytes);
    bytes
}

/// The host (and port) a redirect points to, never its path or query: they
/// may hold a token. A relative `Location` points to the requested host.
fn redirect_host(response: &ureq::http::Response<ureq::Body>) -> Option<String> {
    let location: Uri = response
        .headers()
        .get("location")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let target = if location.host().is_some() {
        &location
    } else {
        response.get_uri()
    };
    let host = target.host()?;
    Some(match target.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// `HTTP 301 redirect to hooks.example.com not followed: update the URL`.
pub fn redirect_text(status: u16, host: Option<&str>) -> String {
    match host {
        Some(host) => format!("HTTP {status} redirect to {host} not followed: update the URL"),
        None => format!("HTTP {status} redirect not followed: update the URL"),
    }
}

/// `HTTP 404 channel_not_found`: the status and the body's first line, cut
/// short and its control characters escaped ([`sanitize::excerpt`]): a
/// receiver's body must not drive the operator's terminal.
pub fn error_text(status: u16, body: &str) -> String {
    let first = body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let short = sanitize::excerpt(first);
    if short.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {short}")
    }
}

/// `Retry-After` as delta-seconds (what Slack and Segment send; a fraction
/// is accepted) or an HTTP date, at most `MAX_RETRY_AFTER` (a number too
/// large for any integer type still means "a long time"); a date in the
/// past is no wait. Anything else, negative numbers included, is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// A transport error in words, without the URL.
fn describe_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Io(io) => format!("connection error: {}", io.kind()),
        ureq::Error::Tls(reason) => format!("TLS error: {reason}"),
        ureq::Error::Rustls(_) => "TLS error".into(),
        ureq::Error::BadUri(_) => "the URL is not valid".into(),
        ureq::Error::LargeResponseHeader(..) => "the response headers are too large".into(),
        ureq::Error::BodyStalled => "the response stalled".into(),
        ureq::Error::StatusCode(code) => format!("HTTP {code}"),
        _ => "request failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_status_and_first_line() {
        assert_eq!(
            error_text(404, "channel_not_found\n"),
            "HTTP 404 channel_not_found"
        );
        assert_eq!(error_text(500, ""), "HTTP 500");
    }

    #[test]
    fn error_text_escapes_control_characters() {
        assert_eq!(
            error_text(400, "bad\x1b[31m red"),
            "HTTP 400 bad\\u{1b}[31m red"
        );
    }

    fn wait(value: &str) -> Option<Duration> {
        parse_retry_after(
            value,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(wait("2"), Some(Duration::from_secs(2)));
        assert_eq!(wait(" 1.5 "), Some(Duration::from_millis(1500)));
        assert_eq!(wait("soon"), None);
    }

    #[test]
    fn absurd_retry_after_numbers_are_capped_or_ignored() {
        assert_eq!(wait("99999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("1e300"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("-5"), None);
        assert_eq!(wait("inf"), None);
        assert_eq!(wait("NaN"), None);
        assert_eq!(wait(""), None);
    }

    #[test]
    fn retry_after_reads_http_dates() {
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            wait("Tue, 14 Nov 2023 22:13:50 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(wait("Tue, 14 Nov 2023 22:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(wait("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn a_redirect_names_only_the_host() {
        assert_eq!(
            redirect_text(301, Some("hooks.example.com")),
            "HTTP 301 redirect to hooks.example.com not followed: update the URL"
        );
        assert_eq!(
            redirect_text(308, None),
            "HTTP 308 redirect not followed: update the URL"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_retry_after_string_is_a_bounded_wait_or_none(value in "\\PC{0,40}") {
            if let Some(d) = wait(&value) {
                proptest::prop_assert!(d <= MAX_RETRY_AFTER);
            }
        }

        #[test]
        fn any_number_is_a_bounded_wait_or_none(n in proptest::num::f64::ANY, digits in "[0-9]{1,60}") {
            for value in [n.to_string(), format!("{n:e}"), digits] {
                if let Some(d) = wait(&value) {
                    proptest::prop_assert!(d <= MAX_RETRY_AFTER);
                }
            }
        }

        #[test]
        fn any_date_is_a_bounded_wait(secs in 0u64..253_402_300_799) {
            let date = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
            let d = wait(&date);
            proptest::prop_assert!(d.is_some_and(|d| d <= MAX_RETRY_AFTER), "{} -> {:?}", date, d);
        }
    }
}
