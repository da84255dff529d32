//! `events templates --preview --to DEST`: each message exactly as that
//! destination would receive it — its own template, its escaping, its
//! `when` — through its own sender, with no request made and no secret shown.

use serde_json::Value;

use crate::support::{Events, WEBHOOK_SECRET};

const CONFIG: &str = r##"
[[destination]]
name = "sales"
kind = "slack"
url_env = "SLACK_URL"
events = ["import.completed"]
when = 'payload.row_count >= 100000 && payload.plan in ["pro", "team"]'
template = "*Big import*: {row_count:,} rows by {email} via {importer_name}"

[[destination]]
name = "discord"
kind = "discord"
url_env = "DISCORD_URL"

[[destination]]
name = "teams"
kind = "teams"
url_env = "TEAMS_URL"

[[destination]]
name = "bot"
kind = "slack"
channel = "#growth"

[[destination]]
name = "crm"
kind = "webhook"
url_env = "CRM_URL"
secret_env = "CRM_SECRET"
events = ["import.completed"]
body = { rows = "{row_count}", text = "{importer_name}" }

[[destination]]
name = "seats"
kind = "console"
when = 'payload.seats > 3'

[[event]]
type = "import.completed"
fields = { email = "string", importer_name = "string", row_count = "integer", plan = "string" }
template = "Import: {row_count:,} rows by {email}"
"##;

/// The previews of `types` to `dest`, by type, with `fields` as samples.
fn preview(dest: &str, types: &[&str], fields: &[&str]) -> Vec<(String, String)> {
    let events = Events::new();
    std::fs::write(events.home_dir().join("events.toml"), CONFIG).unwrap();
    let mut events = events
        .env("SLACK_URL", "https://hooks.slack.com/services/T0/B0/HIDDEN")
        .env("DISCORD_URL", "https://discord.com/api/webhooks/1/HIDDEN")
        .env(
            "TEAMS_URL",
            "https://x.logic.azure.com/workflows/1?sig=HIDDEN",
        )
        .env("SLACK_BOT_TOKEN", "xoxb-HIDDEN")
        .env("CRM_URL", "https://crm.example/HIDDEN")
        .env("CRM_SECRET", WEBHOOK_SECRET)
        .args(["templates", "--preview", "--to", dest, "--format", "json"])
        .args(types);
    for field in fields {
        events = events.args(["--field", field]);
    }
    let out = events.run().success();
    assert!(!out.stdout.contains("HIDDEN") && !out.stderr.contains("HIDDEN"));
    out.stdout_json()
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["type"].as_str().unwrap().to_owned(),
                item["preview"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const HOSTILE: &str = "importer_name=<!channel> *CRM* [x](http://e.vil)";

#[test]
fn slack_gets_its_own_template_escaped_when_its_when_is_true() {
    let shown = preview(
        "sales",
        &["import.completed", "user.signup"],
        &[HOSTILE, "row_count=250000", "plan=pro"],
    );
    assert_eq!(
        shown[0].1,
        "*Big import*: 250,000 rows by ada@example.com via &lt;!channel&gt; *CRM* [x](http://e.vil)"
    );
    assert_eq!(
        shown[1].1,
        "(not routed to sales: its events globs do not match this type)"
    );
}

#[test]
fn a_false_or_failing_when_says_the_event_would_not_be_routed() {
    let shown = preview("sales", &["import.completed"], &["plan=free"]);
    assert_eq!(
        shown[0].1,
        r#"(not routed to sales: when "payload.row_count >= 100000 && payload.plan in [\"pro\", \"team\"]" is false)"#
    );
    let shown = preview("seats", &["user.signup"], &[]);
    assert!(
        shown[0]
            .1
            .starts_with(r#"(not routed to seats: when "payload.seats > 3" failed: "#),
        "{shown:?}"
    );
}

#[test]
fn discord_teams_and_the_slack_bot_escape_their_own_way() {
    let fields = [HOSTILE, "email=a@x.io"];
    assert_eq!(
        preview("discord", &["import.completed"], &fields)[0].1,
        r"Import: 1,234,567 rows by a@x.io"
    );
    assert_eq!(
        preview("discord", &["importer.created"], &fields)[0].1,
        r"New importer: \<!channel\> \*CRM\* \[x\]\(http://e.vil\) by a@x.io"
    );
    assert_eq!(
        preview("teams", &["importer.created"], &fields)[0].1,
        r"New importer: \<\!channel\> \*CRM\* \[x\]\(http://e.vil\) by a@x.io"
    );
    assert_eq!(
        preview("bot", &["importer.created"], &fields)[0].1,
        "New importer: &lt;!channel&gt; *CRM* [x](http://e.vil) by a@x.io"
    );
}

#[test]
fn a_webhook_preview_is_the_body_it_would_sign() {
    let shown = preview("crm", &["import.completed"], &["importer_name=CRM"]);
    let body: Value = serde_json::from_str(&shown[0].1).unwrap();
    assert_eq!(body, serde_json::json!({"rows": 1_234_567, "text": "CRM"}));
}

#[test]
fn to_must_name_a_destination_and_needs_preview() {
    Events::new()
        .args(["templates", "--preview", "--to", "nope"])
        .run()
        .code(2)
        .stderr_has("--to nope: no such destination (configured: console)");
    Events::new()
        .args(["templates", "--to", "console"])
        .run()
        .code(2)
        .stderr_has("--preview");
}

/// The README's example for "big imports to #sales, churn to #billing,
/// everything to Discord" loads and routes as it says.
#[test]
fn the_readmes_routing_example_routes_as_it_says() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### Big imports to #sales, churn to #billing, everything to Discord")
        .nth(1)
        .expect("the README section");
    let toml = section
        .split("```toml\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("its config");
    let run = |dest: &str, field: &str| {
        let events = Events::new();
        std::fs::write(events.home_dir().join("events.toml"), toml).unwrap();
        let out = events
            .env("SLACK_BOT_TOKEN", "xoxb-HIDDEN")
            .env(
                "DISCORD_WEBHOOK_URL",
                "https://discord.com/api/webhooks/1/HIDDEN",
            )
            .args(["templates", "import.completed", "--preview", "--to", dest])
            .args(["--field", field, "--format", "json"])
            .run()
            .success();
        out.stdout_json()[0]["preview"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        run("sales", "row_count=250000"),
        "Big import: 250,000 rows by ada@example.com via CRM contacts"
    );
    assert!(run("sales", "row_count=5").contains("is false"));
    assert!(run("billing", "row_count=5").contains("globs do not match"));
    assert_eq!(
        run("everything", "row_count=5"),
        "Import: 5 rows by ada@example.com"
    );
}
