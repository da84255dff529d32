//! Slack through a bot token: `chat.postMessage` to one channel, so one
//! token serves many destinations, one per channel. Messages are escaped,
//! paced and joined as for an incoming webhook. Slack's Web API answers
//! `200` even when it refuses: the JSON `ok` is the verdict, and its `error`
//! decides whether to wait, retry or give up.

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{self, ErrorBody};
use super::{Answer, Attempt, BatchLimit, Destination, Item, Unsendable};
use crate::catalog::Catalog;
use crate::event::Event;
use crate::secret::Secret;
use crate::template::Style;

/// As for an incoming webhook: Slack truncates long messages on display.
const MAX_MESSAGE_BYTES: usize = 3500;
const MAX_LINES: usize = 40;

pub struct SlackBot {
    name: String,
    token: Secret,
    channel: String,
    /// `…/chat.postMessage`.
    endpoint: String,
    catalog: Catalog,
    agent: ureq::Agent,
}

impl SlackBot {
    pub fn new(
        name: String,
        token: Secret,
        channel: String,
        api_url: &str,
        catalog: Catalog,
        timeout: Duration,
    ) -> SlackBot {
        SlackBot {
            name,
            token,
            channel,
            endpoint: format!("{}/chat.postMessage", api_url.trim_end_matches('/')),
            catalog,
            agent: http::agent(timeout),
        }
    }
}

impl Destination for SlackBot {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        self.catalog
            .render(event, self.style())
            .map_err(Unsendable::from)
    }

    fn style(&self) -> Style {
        Style::Slack
    }

    fn batch_limit(&self) -> BatchLimit {
        BatchLimit {
            items: MAX_LINES,
            bytes: MAX_MESSAGE_BYTES,
        }
    }

    fn send(&self, items: &[Item]) -> Answer {
        let text = super::join_lines(items);
        let body = json!({ "channel": self.channel, "text": text }).to_string();
        let result = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Authorization", format!("Bearer {}", self.token.expose()))
            .send(&body);
        match result {
            Ok(mut response) if response.status().is_success() => {
                let wait = http::retry_after_header(&response);
                let body = http::read_bounded(response.body_mut());
                Answer {
                    attempt: verdict(&String::from_utf8_lossy(&body), wait),
                    status: Some(response.status().as_u16()),
                }
            }
            other => http::classify_with(other, |body| ErrorBody {
                retry_after: None,
                text: slack_error(body),
            }),
        }
    }
}

/// `error` of a Web API answer `{"ok": false, "error": "channel_not_found"}`.
fn slack_error(body: &str) -> Option<String> {
    let answer: Value = serde_json::from_str(body).ok()?;
    Some(answer.get("error")?.as_str()?.to_owned())
}

/// The outcome of a `2xx`: delivered when `ok` is true; otherwise decided
/// by Slack's `error`. `wait` is the `Retry-After` header, if any.
fn verdict(body: &str, wait: Option<Duration>) -> Attempt {
    let ok = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|answer| answer.get("ok").and_then(Value::as_bool));
    match ok {
        Some(true) => Attempt::Delivered,
        Some(false) => refused(
            slack_error(body).as_deref().unwrap_or("unknown_error"),
            wait,
        ),
        None => Attempt::Transient(http::error_text(200, "the answer is not Slack's JSON")),
    }
}

/// What an `"ok": false` means. Slack's own trouble is retried, a rate
/// limit waited for; every other error (a channel that does not exist or
/// the bot is not in, a revoked or wrong token, a deactivated account, a
/// bad argument) will not change by sending again.
fn refused(error: &str, wait: Option<Duration>) -> Attempt {
    let text = http::error_text(200, error);
    match error {
        "ratelimited" => http::rate_limited(wait, text),
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            Attempt::Transient(text)
        }
        _ => Attempt::Permanent(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_false_is_classified_by_slacks_error() {
        assert_eq!(
            verdict(r#"{"ok":true,"ts":"1.2"}"#, None),
            Attempt::Delivered
        );
        for error in [
            "channel_not_found",
            "not_in_channel",
            "invalid_auth",
            "account_inactive",
        ] {
            let body = format!(r#"{{"ok":false,"error":"{error}"}}"#);
            assert_eq!(
                verdict(&body, None),
                Attempt::Permanent(format!("HTTP 200 {error}"))
            );
        }
        assert_eq!(
            verdict(
                r#"{"ok":false,"error":"ratelimited"}"#,
                Some(Duration::from_secs(3))
            ),
            Attempt::RetryAfter(Duration::from_secs(3), "HTTP 200 ratelimited".into())
        );
        assert_eq!(
            verdict(r#"{"ok":false,"error":"ratelimited"}"#, None),
            Attempt::RetryAfter(Duration::from_secs(1), "HTTP 200 ratelimited".into())
        );
        assert_eq!(
            verdict(r#"{"ok":false,"error":"internal_error"}"#, None),
            Attempt::Transient("HTTP 200 internal_error".into())
        );
    }

    #[test]
    fn an_answer_that_is_not_slacks_json_is_retried() {
        for body in ["", "ok", "<html></html>", r#"{"ok":"yes"}"#] {
            assert!(
                matches!(verdict(body, None), Attempt::Transient(_)),
                "{body}"
            );
        }
    }
}
