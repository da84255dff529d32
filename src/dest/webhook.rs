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

use super::{Answer, Attempt, Destination, Item, Unsendable, http};
use crate::event::Event;
use crate::secret::{Secret, SigningKey};
use shape::Shape;

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
