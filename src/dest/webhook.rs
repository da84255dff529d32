//! Signed HTTP webhooks, per the Standard Webhooks specification: the event
//! JSON as the body, `webhook-id` (the event id, so receivers can drop
//! duplicates), `webhook-timestamp`, and `webhook-signature: v1,<base64
//! HMAC-SHA256 of "id.timestamp.body">` keyed with the `whsec_` secret.
//! A destination's own [`shape::Shape`] may add headers and replace the
//! body; the signature covers the body exactly as sent.

pub mod shape;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::kind::Entry;
use super::{Answer, Attempt, Destination, Item, Unsendable, http};
use crate::config::{ConfigError, Env, redact_url};
use crate::event::Event;
use crate::secret::{Secret, SigningKey};
use shape::Shape;
use shape::ShapeError;
use std::sync::Arc;

pub struct Webhook {
    name: String,
    url: Secret,
    key: SigningKey,
    shape: Shape,
    agent: ureq::Agent,
}

/// The `webhook-signature` value for one message.
pub fn sign(key: &SigningKey, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

impl Webhook {
    pub fn new(
        name: String,
        url: Secret,
        key: SigningKey,
        shape: Shape,
        timeout: Duration,
    ) -> Webhook {
        Webhook {
            name,
            url,
            key,
            shape,
            agent: http::agent(timeout),
        }
    }
}

impl Destination for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    /// The body, with the headers rendered once too: an event they cannot
    /// be made for fails here, before any request.
    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        self.shape.headers(event).map_err(Unsendable)?;
        self.shape.body(event).map_err(Unsendable)
    }

    fn send(&self, items: &[Item]) -> Answer {
        let Some(item) = items.first() else {
            return Attempt::Delivered.into();
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(&self.key, &item.event.id, timestamp, &item.body);
        let headers = match self.shape.headers(&item.event) {
            Ok(headers) => headers,
            Err(e) => return Attempt::Permanent(e).into(),
        };
        let request = headers.into_iter().fold(
            self.agent.post(self.url.expose()),
            |request, (name, value)| request.header(name, value),
        );
        let answer = http::classify(
            request
                .header("Content-Type", "application/json")
                .header("webhook-id", &item.event.id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .send(&item.body),
        );
        if answer.status == Some(410) {
            log::warn!(
                "the webhook endpoint of destination '{}' answered 410 Gone: it no longer accepts events; update or remove it",
                self.name
            );
        }
        answer
    }
}

/// The `webhook` kind: a URL (`url_env`, `EVENTS_WEBHOOK_URL`), a signing
/// secret (`secret_env`, `EVENTS_WEBHOOK_SECRET`), and its own `headers`
/// and `body` ([`Shape`]).
pub struct WebhookKind;

impl super::Kind for WebhookKind {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["url_env", "secret_env", "headers", "body"]
    }

    /// The signing key is decoded once, here: the webhook only signs.
    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn super::Settings>, ConfigError> {
        let signing = entry.secret("secret_env", "EVENTS_WEBHOOK_SECRET")?;
        let key = SigningKey::parse(signing.expose()).map_err(|e| {
            let span = entry
                .string("secret_env")
                .ok()
                .flatten()
                .map_or(entry.kind_span.clone(), |s| s.span());
            entry.at(span, "secret_env", format!("the signing secret {e}"))
        })?;
        Ok(Box::new(WebhookSettings {
            url: entry.secret("url_env", "EVENTS_WEBHOOK_URL")?,
            key,
            shape: shape(entry)?,
        }))
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn super::Settings>>, ConfigError> {
        let Some(url) = env.get("EVENTS_WEBHOOK_URL") else {
            return Ok(None);
        };
        let Some(secret) = env.get("EVENTS_WEBHOOK_SECRET") else {
            return Err(ConfigError::destination(
                "webhook",
                "EVENTS_WEBHOOK_URL is set but EVENTS_WEBHOOK_SECRET is not: webhooks are always signed (set it to a whsec_… secret)",
            ));
        };
        let key = SigningKey::parse(&secret).map_err(|e| {
            ConfigError::destination("webhook", format!("EVENTS_WEBHOOK_SECRET {e}"))
        })?;
        Ok(Some(Box::new(WebhookSettings {
            url: Secret::new(url),
            key,
            shape: Shape::default(),
        })))
    }
}

/// Its own `headers` and `body`, checked against the fields of every type
/// its `events` route; an error names the line of the header or template
/// at fault: its first appearance from where the setting starts (a
/// `[destination.headers]` table's span is its heading alone).
fn shape(entry: &Entry<'_>) -> Result<Shape, ConfigError> {
    let headers = entry.table.get::<toml::Table>("headers")?;
    let body = entry.table.get::<toml::Value>("body")?;
    Shape::compile(
        headers.as_ref().map(toml::Spanned::get_ref),
        body.as_ref().map(toml::Spanned::get_ref),
        entry.catalog,
        entry.events,
        &|name| entry.env.get(name),
    )
    .map_err(|e| {
        let (key, span) = match &e {
            ShapeError::BodyTemplate { .. } | ShapeError::NotJson { .. } => {
                ("body", body.as_ref().map(toml::Spanned::span))
            }
            _ => ("headers", headers.as_ref().map(toml::Spanned::span)),
        };
        let span = span.unwrap_or(entry.kind_span.clone());
        let text = &entry.table.source().text;
        let start = e
            .needle()
            .and_then(|needle| text.get(span.start..)?.find(needle))
            .map_or(span.start, |at| span.start + at);
        entry.at(start..start, key, e)
    })
}

/// What a webhook needs to send: the signing key decoded once, and its
/// own headers and body, if the config file sets them.
#[derive(Debug)]
pub struct WebhookSettings {
    pub url: Secret,
    pub key: SigningKey,
    pub shape: Shape,
}

impl super::Settings for WebhookSettings {
    fn target(&self) -> String {
        redact_url(self.url.expose())
    }

    fn url(&self) -> Option<&str> {
        Some(self.url.expose())
    }

    fn build(
        &self,
        name: String,
        _: &crate::catalog::Catalog,
        timeout: Duration,
    ) -> Arc<dyn Destination> {
        Arc::new(Webhook::new(
            name,
            self.url.clone(),
            self.key.clone(),
            self.shape.clone(),
            timeout,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's published test vector.
    #[test]
    fn signature_matches_the_spec_test_vector() {
        let key = SigningKey::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                r#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }
}
