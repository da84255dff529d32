//! Tests of `templates`: the catalog as a table and as JSON (snapshots), the
//! preview with sample and overridden values, custom types from a config
//! file, and a quiet exit when the reader of stdout goes away.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Events, bin};

fn templates(args: &[&str]) -> crate::support::Outcome {
    Events::new().arg("templates").args(args).run()
}

const CUSTOM_TYPE: &str = r#"[[event]]
type = "team.invited"
fields = { email = "string", team = "string", seats = "integer" }
template = "Invite: {email} joined {team} ({seats:,} seats)"
"#;

/// `events --config HOME/events.toml templates ARGS...` with the custom type
/// `team.invited` declared in that file.
fn templates_with_custom_type(args: &[&str]) -> crate::support::Outcome {
    let events = Events::new();
    let path = events.home_dir().join("events.toml");
    std::fs::write(&path, CUSTOM_TYPE).expect("write events.toml");
    events
        .arg("--config")
        .arg(&path)
        .arg("templates")
        .args(args)
        .run()
}

#[test]
fn table_lists_every_builtin_type_with_fields_and_template() {
    let outcome = templates(&[]).success();
    assert_eq!(outcome.stderr, "");
    insta::assert_snapshot!(outcome.stdout);
}

#[test]
fn json_format_lists_every_builtin_type_with_typed_fields() {
    let outcome = templates(&["--format", "json"]).success();
    let items = outcome.stdout_json();
    assert_eq!(items.as_array().map(Vec::len), Some(10), "{items}");
    insta::assert_snapshot!(outcome.stdout);
}

#[test]
fn type_filter_lists_only_the_named_types_in_the_order_given() {
    templates(&["import.completed", "user.signup"])
        .success()
        .stdout_is(concat!(
            "TYPE              FIELDS                           TEMPLATE\n",
            "import.completed  email, importer_name, row_count  Import: {row_count:,} rows by {email}\n",
            "user.signup       email                            New signup: {email}\n",
        ));
}

#[test]
fn unknown_type_filter_is_rejected_with_a_suggestion() {
    templates(&["user.sigup"])
        .code(2)
        .stdout_is("")
        .stderr_has("events: error: unknown event type 'user.sigup'; did you mean 'user.signup'?");
}

#[test]
fn preview_renders_every_message_with_sample_values() {
    let outcome = templates(&["--preview"])
        .success()
        .stdout_has("New signup: ada@example.com")
        .stdout_has("First import: ada@example.com via CRM contacts")
        .stdout_has("Import: 1,234,567 rows by ada@example.com")
        .stdout_has("Import failed: ada@example.com - row 12: invalid date")
        .stdout_has("Dead letters: 3 deliveries to segment failed: ")
        .stdout_has("Destination down: segment (row 12: invalid date); holding deliveries");
    // One header and one row per built-in type.
    assert_eq!(outcome.stdout.lines().count(), 11, "{outcome:?}");
    insta::assert_snapshot!(outcome.stdout);
}

#[test]
fn preview_field_overrides_replace_the_sample_values() {
    templates(&[
        "--preview",
        "--field",
        "row_count=1000",
        "--field",
        "email=x@y",
    ])
    .success()
    .stdout_has("Import: 1,000 rows by x@y")
    .stdout_has("New signup: x@y")
    .stdout_has("New importer: CRM contacts by x@y")
    .stdout_lacks("ada@example.com");
}

#[test]
fn preview_as_json_carries_each_message() {
    let outcome = templates(&["import.completed", "--preview", "--format", "json"]).success();
    let items = outcome.stdout_json();
    assert_eq!(
        items[0]["preview"],
        json!("Import: 1,234,567 rows by ada@example.com"),
        "{items}"
    );
}

#[test]
fn preview_field_of_the_wrong_type_is_rejected() {
    templates(&["--preview", "--field", "row_count=abc"])
        .code(2)
        .stdout_is("")
        .stderr_has("events: error: ")
        .stderr_has("'row_count'")
        .stderr_has("abc");
}

#[test]
fn preview_field_without_equals_is_rejected() {
    templates(&["--preview", "--field", "row_count"])
        .code(2)
        .stderr_has("--field expects KEY=VALUE");
}

/// `events templates | head -1`: the reader is gone before anything is
/// written; the command must exit 0 without a word (DESIGN §3 and ripgrep's
/// `main`).
#[test]
fn closed_stdout_exits_quietly() {
    let home = tempfile::tempdir().expect("a temporary HOME");
    let (reader, writer) = std::io::pipe().expect("create a pipe");
    // Closed before the child starts, so its first write fails with EPIPE.
    drop(reader);
    let output = Command::new(bin())
        .env_clear()
        .env("NO_COLOR", "1")
        .env("HOME", home.path())
        .current_dir(home.path())
        .arg("templates")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run events templates");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "a closed stdout is not an error worth a message"
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn closed_stdout_in_a_shell_pipeline_exits_zero() {
    let home = tempfile::tempdir().expect("a temporary HOME");
    let script = r#"set -o pipefail; "$0" templates --preview | head -1"#;
    let output = Command::new("bash")
        .args(["-c", script])
        .arg(bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("HOME", home.path())
        .current_dir(home.path())
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "TYPE                         PREVIEW\n"
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn custom_type_from_the_config_file_is_listed() {
    templates_with_custom_type(&[])
        .success()
        .stdout_has("user.signup")
        .stdout_has(
            "team.invited                 email, team, seats               Invite: {email} joined {team} ({seats:,} seats)\n",
        );
}

#[test]
fn custom_type_preview_renders_with_overridden_fields() {
    templates_with_custom_type(&["--preview", "--field", "seats=1200", "team.invited"])
        .success()
        .stdout_is(concat!(
            "TYPE          PREVIEW\n",
            "team.invited  Invite: ada@example.com joined example (1,200 seats)\n",
        ));
}

#[test]
fn custom_type_in_json_is_marked_custom_with_typed_fields() {
    let outcome = templates_with_custom_type(&["--format", "json"]).success();
    let items = outcome.stdout_json();
    let items = items.as_array().expect("an array");
    let custom: Vec<&Value> = items
        .iter()
        .filter(|i| i["custom"] == json!(true))
        .collect();
    assert_eq!(custom.len(), 1, "{items:?}");
    assert_eq!(custom[0]["type"], "team.invited");
    assert_eq!(
        custom[0]["fields"],
        json!({"email": "string", "team": "string", "seats": "integer"})
    );
    assert_eq!(
        custom[0]["template"],
        "Invite: {email} joined {team} ({seats:,} seats)"
    );
}
