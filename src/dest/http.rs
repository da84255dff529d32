//! What every HTTP destination shares: one agent per destination (keep-alive,
//! a global timeout, status codes as values), and the reading of a response
//! into an `Attempt`. Errors never carry the URL: webhook URLs are secrets.

use std::time::Duration;

use super::Attempt;

/// An agent that returns 4xx/5xx responses instead of errors, keeps a
/// connection open for every lane, and times out each phase of a request
/// (a global timeout would make every request resolve the host on a new
/// thread).
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_send_body(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
        .max_idle_connections_per_host(64)
        .http_status_as_error(false)
        .user_agent(concat!("events/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The longest `Retry-After` honoured; a longer one is capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Classifies a response: 2xx delivered; 429 wait for `Retry-After`; 408
/// and 5xx transient; any other status permanent. The error text is the
/// status and the first line of the body (Slack's `channel_not_found`).
pub fn classify(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Attempt {
    let mut response = match result {
        Ok(response) => response,
        // A URL that cannot be requested will never work.
        Err(e @ ureq::Error::BadUri(_)) => return Attempt::Permanent(describe_error(&e)),
        Err(e) => return Attempt::Transient(describe_error(&e)),
    };
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        // Read to the end: only then is the connection reused.
        let _ = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec();
        return Attempt::Delivered;
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let error = error_text(status, &body);
    match status {
        429 => Attempt::RetryAfter(
            retry_after
                .unwrap_or(Duration::from_secs(1))
                .min(MAX_RETRY_AFTER),
            error,
        ),
        408 | 500..=599 => Attempt::Transient(error),
        _ => Attempt::Permanent(error),
    }
}

/// `HTTP 404 channel_not_found`: the status and the body's first line, short.
pub fn error_text(status: u16, body: &str) -> String {
    let first = body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let short: String = first.chars().take(200).collect();
    if short.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {short}")
    }
}

/// `Retry-After` as seconds (the form Slack and Segment send).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
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
    fn retry_after_reads_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
