//! A webhook's own `headers` and JSON `body` template: what the receiver
//! gets, signed over the exact bytes sent; what is refused at load, with
//! the file and line; and the header secret that never shows.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::support::{Events, Reply, Request, Sink, WEBHOOK_SECRET as SECRET};

const SHAPED: &str = r#"
[[event]]
type = "import.completed"
fields = { email = "string", row_count = "integer", plan = "string" }
template = "Import: {row_count:,} rows by {email} ({plan})"

[[destination]]
name = "crm"
kind = "webhook"
url_env = "CRM_URL"
secret_env = "CRM_SECRET"
events = ["import.completed"]
headers = { "X-Plan" = "plan-{plan}", Authorization = { env = "CRM_TOKEN" } }

[destination.body]
text = "{row_count:,} rows by {email}"
rows = "{row_count}"
source = "events"
priority = 2
user = { email = "{email}", paid = true }
"#;

fn with_config(home: &Path, toml: &str) -> Events {
    std::fs::write(home.join("events.toml"), toml).unwrap();
    Events::new().home(home)
}

/// Checks the signature over the body exactly as received.
fn signed_over_body(request: &Request) -> bool {
    let key = STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let id = request.header("webhook-id").unwrap();
    let timestamp = request.header("webhook-timestamp").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{}", request.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    request.header("webhook-signature") == Some(expected.as_str())
}

fn emit_import(home: &Path) -> String {
    with_config(home, SHAPED)
        .args(["emit", "import.completed", "--email", "ada@example.com"])
        .args(["--row-count", "250000", "--plan", "pro"])
        .run()
        .success()
        .stdout
        .trim()
        .to_owned()
}

#[test]
fn the_receiver_gets_its_headers_and_body_signed_as_sent() {
    let home = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let id = emit_import(home.path());
    with_config(home.path(), SHAPED)
        .env("CRM_URL", sink.url())
        .env("CRM_SECRET", SECRET)
        .env("CRM_TOKEN", "Bearer tok_HIDDEN")
        .args(["work", "--burst"])
        .run()
        .success();
    let requests = sink.accepted();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.header("x-plan"), Some("plan-pro"));
    assert_eq!(request.header("authorization"), Some("Bearer tok_HIDDEN"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("webhook-id"), Some(id.as_str()));
    assert!(signed_over_body(request), "{request:?}");
    assert_eq!(
        request.json(),
        serde_json::json!({
            "text": "250,000 rows by ada@example.com",
            "rows": 250_000,
            "source": "events",
            "priority": 2,
            "user": {"email": "ada@example.com", "paid": true},
        })
    );
}

#[test]
fn the_header_secret_never_shows() {
    let home = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    sink.script(vec![Reply::status(500, "oops")]);
    emit_import(home.path());
    let run = || {
        with_config(home.path(), SHAPED)
            .env("CRM_URL", sink.url())
            .env("CRM_SECRET", SECRET)
            .env("CRM_TOKEN", "Bearer tok_HIDDEN")
            .env("EVENTS_RETRY_BASE_MS", "10")
            .env("RUST_LOG", "trace")
    };
    let outs = [
        run().args(["-v", "work", "--burst"]).run().success(),
        run().args(["status"]).run().success(),
        run().args(["status", "--format", "json"]).run().success(),
    ];
    for out in outs {
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains("tok_HIDDEN"), "shown:\n{text}");
        }
    }
    assert_eq!(sink.accepted().len(), 1);
}

/// The config with `line` in place of the destination's `headers` line.
fn refused(line: &str) -> String {
    refused_with(&[(HEADERS, line)])
}

const HEADERS: &str =
    r#"headers = { "X-Plan" = "plan-{plan}", Authorization = { env = "CRM_TOKEN" } }"#;

/// The error of the config with each `from` replaced by its `to`.
fn refused_with(changes: &[(&str, &str)]) -> String {
    let home = tempfile::tempdir().unwrap();
    let toml = changes
        .iter()
        .fold(SHAPED.to_owned(), |toml, (from, to)| toml.replace(from, to));
    with_config(home.path(), &toml)
        .env("CRM_URL", "http://127.0.0.1:9/")
        .env("CRM_SECRET", SECRET)
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr
}

#[test]
fn bad_headers_are_refused_at_load_naming_file_and_line() {
    let err = refused(r#"headers = { "X Plan" = "pro" }"#);
    assert!(
        err.contains(r#"events.toml:13: headers: "X Plan" is not a valid HTTP header name"#),
        "{err}"
    );
    let err = refused(r#"headers = { "Content-Type" = "text/plain" }"#);
    assert!(
        err.contains(
            "events.toml:13: headers: the header Content-Type is set by the webhook itself"
        ),
        "{err}"
    );
    let err = refused("[destination.headers]\nX-Plan = \"x\"\nwebhook-signature = \"v1,forged\"");
    assert!(
        err.contains(
            "events.toml:15: headers: the header webhook-signature is set by the webhook itself"
        ),
        "{err}"
    );
    let err = refused(r#"headers = { Authorization = { env = "CRM_TOKEN" } }"#);
    assert!(
        err.contains("events.toml:13: headers: the value of header Authorization is read from the environment variable CRM_TOKEN, which is not set"),
        "{err}"
    );
    let err = refused(r#"headers = { "X-Seats" = "{seats}" }"#);
    assert!(
        err.contains("events.toml:13: headers: header X-Seats: for event type import.completed: template \"{seats}\" uses the undeclared field 'seats'"),
        "{err}"
    );
}

#[test]
fn a_body_field_no_routed_type_has_is_refused_at_load_naming_its_line() {
    let err = refused_with(&[
        (HEADERS, ""),
        ("priority = 2", r#"seats = "{seats} seats""#),
    ]);
    assert!(
        err.contains("events.toml:19: body: body.seats: for event type import.completed: template \"{seats} seats\" uses the undeclared field 'seats'"),
        "{err}"
    );
}

#[test]
fn only_webhooks_take_headers_and_a_body() {
    let home = tempfile::tempdir().unwrap();
    let toml =
        "[[destination]]\nname = \"log\"\nkind = \"console\"\nbody = { text = \"{email}\" }\n";
    with_config(home.path(), toml)
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("events.toml:4: body: only webhook destinations take body; \"log\" is a console destination");
}
