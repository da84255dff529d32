//! Signed webhooks: every request verified on receipt the way a receiver
//! following the Standard Webhooks specification verifies it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::support::{Events, RedisServer, Reply, Request, Sink, WEBHOOK_SECRET as SECRET};

/// Verifies a request as a Standard Webhooks receiver does.
fn verify(secret: &str, request: &Request) -> bool {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let id = request.header("webhook-id").unwrap();
    let timestamp = request.header("webhook-timestamp").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{}", request.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    request
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .any(|candidate| candidate == expected)
}

fn webhook(redis: &RedisServer, sink: &Sink) -> Events {
    Events::new()
        .env("REDIS_URL", redis.url())
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", SECRET)
        .env("EVENTS_RETRY_BASE_MS", "10")
}

#[test]
fn the_verifier_accepts_the_specifications_test_vector() {
    let request = Request {
        method: "POST".into(),
        path: "/".into(),
        headers: vec![
            (
                "webhook-id".into(),
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk".into(),
            ),
            ("webhook-timestamp".into(), "1649367553".into()),
            (
                "webhook-signature".into(),
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=".into(),
            ),
        ],
        body: r#"{"email":"test@example.com","username":"test_user"}"#.into(),
        at: std::time::Instant::now(),
    };
    assert!(verify(SECRET, &request));
    assert!(!verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &request));
    assert_eq!(
        events::dest::webhook::sign(
            &events::secret::SigningKey::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap(),
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            r#"{"email":"test@example.com","username":"test_user"}"#
        ),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[test]
fn every_delivery_is_signed_and_carries_the_event_id() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    let id = Events::new()
        .env("REDIS_URL", redis.url())
        .args([
            "emit",
            "subscription.started",
            "--email",
            "ada@example.com",
            "--plan",
            "pro",
        ])
        .run()
        .success()
        .stdout;
    webhook(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(
        verify(SECRET, request),
        "signature does not verify: {request:?}"
    );
    assert_eq!(request.header("webhook-id"), Some(id.trim()));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["id"], id.trim());
    assert_eq!(body["type"], "subscription.started");
    assert_eq!(body["payload"]["plan"], "pro");
    let now = chrono::Utc::now().timestamp();
    let sent: i64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert!((now - sent).abs() < 300);
}

#[test]
fn debug_logging_never_shows_the_webhook_url_or_secret() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.script(vec![Reply::status(500, "oops")]);
    Events::new()
        .env("REDIS_URL", redis.url())
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .success();
    let out = webhook(&redis, &sink)
        .env(
            "EVENTS_WEBHOOK_URL",
            format!("{}/T000/SECRETPATH", sink.base_url()),
        )
        .env("RUST_LOG", "trace")
        .args(["-v", "work", "--burst"])
        .run()
        .success()
        .stderr_has("delivered user.signup");
    for secret in ["SECRETPATH", "C2FVsBQIhrscChlQIMV"] {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "{secret} shown:\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_retried_delivery_keeps_its_id_and_is_signed_afresh() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.script(vec![Reply::status(502, "bad gateway")]);
    Events::new()
        .env("REDIS_URL", redis.url())
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .success();
    webhook(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    let requests = sink.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    assert!(requests.iter().all(|r| verify(SECRET, r)));
}

#[test]
fn a_410_means_the_endpoint_is_gone() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    sink.set_default(Reply::status(410, "gone"));
    Events::new()
        .env("REDIS_URL", redis.url())
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .success();
    webhook(&redis, &sink)
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("answered 410 Gone")
        .stderr_has("dead: user.signup");
    assert_eq!(sink.request_count(), 1);
}

#[test]
fn a_destination_url_that_is_not_http_is_a_configuration_error_that_hides_it() {
    let redis = RedisServer::start();
    Events::new()
        .env("REDIS_URL", redis.url())
        .env(
            "SLACK_WEBHOOK_URL",
            "hooks.slack.com/services/T0/B0/SECRETPATH",
        )
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("destination 'slack' has a URL that does not start with http:// or https://")
        .stderr_lacks("SECRETPATH");
}

#[test]
fn a_webhook_without_a_valid_secret_is_a_configuration_error() {
    let redis = RedisServer::start();
    let sink = Sink::start();
    Events::new()
        .env("REDIS_URL", redis.url())
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("EVENTS_WEBHOOK_SECRET is not");
    Events::new()
        .env("REDIS_URL", redis.url())
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", "whsec_%%%%secretish")
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("is not a valid signing secret")
        .stderr_lacks("secretish");
}
