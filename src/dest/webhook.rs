//! Signed HTTP webhooks, per the Standard Webhooks specification: the event
//! JSON as the body, `webhook-id` (the event id, so receivers can drop
//! duplicates), `webhook-timestamp`, and `webhook-signature: v1,<base64
//! HMAC-SHA256 of "id.timestamp.body">` keyed with the `whsec_` secret.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Attempt, Destination, Item, http};
use crate::config::Secret;
use crate::event::Event;

pub struct Webhook {
    name: String,
    url: Secret,
    key: Vec<u8>,
    agent: ureq::Agent,
}

/// Checks a `whsec_…` secret; the error says what is wrong without showing it.
pub fn check_secret(secret: &str) -> Result<(), String> {
    decode_secret(secret).map(|_| ())
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    match STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err("is not a valid signing secret: expected whsec_ followed by base64".into()),
    }
}

/// The `webhook-signature` value for one message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

impl Webhook {
    pub fn new(
        name: String,
        url: Secret,
        secret: &Secret,
        timeout: Duration,
    ) -> Result<Webhook, String> {
        Ok(Webhook {
            name,
            url,
            key: decode_secret(secret.expose())?,
            agent: http::agent(timeout),
        })
    }
}

impl Destination for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, String> {
        Ok(event.to_json_line())
    }

    fn send(&self, items: &[Item]) -> Attempt {
        let Some(item) = items.first() else {
            return Attempt::Delivered;
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(&self.key, &item.event.id, timestamp, &item.body);
        let answer = http::classify(
            self.agent
                .post(self.url.expose())
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
        answer.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's published test vector.
    #[test]
    fn signature_matches_the_spec_test_vector() {
        let key = decode_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
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

    #[test]
    fn bad_secrets_are_refused_without_showing_them() {
        let err = check_secret("whsec_!!!not-base64").unwrap_err();
        assert!(!err.contains("not-base64"));
    }
}
