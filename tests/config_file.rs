//! The TOML config file: custom event types, overridden templates, several
//! destinations of one kind with routing globs, and a clear exit-2 error
//! naming file, line and key for every kind of mistake.

use std::path::Path;

use crate::support::{Events, RedisServer, Reply, Sink};

const ROUTED: &str = r#"
[[event]]
type = "team.invited"
fields = { email = "string", team = "string", seats = "integer" }
template = "Invite: {email} joined {team} ({seats:,} seats)"

[[event]]
type = "user.signup"
template = "Welcome aboard, {email}!"

[[destination]]
name = "billing"
kind = "slack"
url_env = "SLACK_BILLING_URL"
events = ["subscription.*"]

[[destination]]
name = "growth"
kind = "slack"
url_env = "SLACK_GROWTH_URL"
events = ["user.*", "team.*"]
"#;

fn with_config(home: &Path, redis: &RedisServer, toml: &str) -> Events {
    std::fs::write(home.join("events.toml"), toml).unwrap();
    Events::new().home(home).env("REDIS_URL", redis.url())
}

fn lines(sink: &Sink) -> Vec<String> {
    sink.accepted()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn billing_events_reach_only_the_billing_channel() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let (billing, growth) = (Sink::start(), Sink::start());
    let run = || {
        with_config(home.path(), &redis, ROUTED)
            .env("SLACK_BILLING_URL", billing.url())
            .env("SLACK_GROWTH_URL", growth.url())
    };
    run()
        .args([
            "emit",
            "subscription.started",
            "--email",
            "ada@example.com",
            "--plan",
            "pro",
        ])
        .run()
        .success();
    run()
        .args(["emit", "user.signup", "--email", "bob@example.com"])
        .run()
        .success();
    run()
        .args([
            "emit",
            "import.failed",
            "--email",
            "c@example.com",
            "--importer-name",
            "x",
            "--error",
            "y",
        ])
        .run()
        .success();
    run().args(["work", "--burst"]).run().success();
    assert_eq!(lines(&billing), ["New subscriber: ada@example.com (pro)"]);
    assert_eq!(lines(&growth), ["Welcome aboard, bob@example.com!"]);
    // Routed nowhere: acknowledged, not dead.
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");
    assert_eq!(redis.pending(), 0, "nothing left claimed");
}

#[test]
fn a_custom_event_type_is_emitted_previewed_and_delivered() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let growth = Sink::start();
    let run = || {
        with_config(home.path(), &redis, ROUTED)
            .env("SLACK_BILLING_URL", "http://127.0.0.1:9/unused")
            .env("SLACK_GROWTH_URL", growth.url())
    };
    run()
        .args([
            "templates",
            "team.invited",
            "--preview",
            "--field",
            "seats=1200",
        ])
        .run()
        .success()
        .stdout_has("Invite: ada@example.com joined example (1,200 seats)");
    run()
        .args([
            "emit",
            "team.invited",
            "--email",
            "ada@example.com",
            "-f",
            "team=Core",
            "-f",
            "seats=12",
        ])
        .run()
        .success();
    run()
        .args([
            "emit",
            "team.invited",
            "--email",
            "ada@example.com",
            "-f",
            "team=Core",
            "-f",
            "seats=many",
        ])
        .run()
        .code(2)
        .stderr_has("field 'seats' of 'team.invited' must be a non-negative integer");
    run().args(["work", "--burst"]).run().success();
    assert_eq!(
        lines(&growth),
        ["Invite: ada@example.com joined Core (12 seats)"]
    );
}

#[test]
fn one_failing_destination_does_not_resend_to_the_others() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let (ok, flaky) = (Sink::start(), Sink::start());
    flaky.script(vec![Reply::status(500, "down"), Reply::status(500, "down")]);
    let toml = "[[destination]]\nname = \"ok\"\nkind = \"slack\"\nurl_env = \"OK_URL\"\n\n[[destination]]\nname = \"flaky\"\nkind = \"webhook\"\nurl_env = \"FLAKY_URL\"\nsecret_env = \"FLAKY_SECRET\"\n";
    let run = || {
        with_config(home.path(), &redis, toml)
            .env("OK_URL", ok.url())
            .env("FLAKY_URL", flaky.url())
            .env("FLAKY_SECRET", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .env("EVENTS_RETRY_BASE_MS", "10")
    };
    for i in 0..3 {
        run()
            .args([
                "emit",
                "user.signup",
                "--email",
                &format!("u{i}@example.com"),
            ])
            .run()
            .success();
    }
    run().args(["work", "--burst"]).run().success();
    assert_eq!(
        lines(&ok).join("\n").lines().count(),
        3,
        "each event reached the healthy destination once"
    );
    assert_eq!(flaky.accepted_count(), 3);
    assert_eq!(flaky.request_count(), 5);
}

#[test]
fn the_environment_defines_destinations_when_the_file_declares_none() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let toml = "[[event]]\ntype = \"user.signup\"\ntemplate = \"Hello {email}\"\n";
    with_config(home.path(), &redis, toml)
        .args(["emit", "user.signup", "--email", "a@b.c"])
        .run()
        .success();
    with_config(home.path(), &redis, toml)
        .env("SLACK_WEBHOOK_URL", sink.url())
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(lines(&sink), ["Hello a@b.c"]);
}

/// Each mistake, and the start of the one-line error it must give.
const MISTAKES: &[(&str, &str)] = &[
    (
        "[[event]]\ntype = \"a.b\"\ntemplate = \"x\"\ncolour = \"red\"\n",
        "events.toml:4: unknown field `colour`",
    ),
    (
        "[[event]]\ntype = \"a.b\"\ntemplate = \"x\n",
        "events.toml:3: ",
    ),
    (
        "[[event]]\ntype = \"a.b\"\nfields = { n = \"int\" }\ntemplate = \"{n}\"\n",
        "events.toml:3: fields.n: unknown field type \"int\"",
    ),
    (
        "[[event]]\ntype = \"a.b\"\nfields = { n = \"integer\" }\ntemplate = \"{count}\"\n",
        "events.toml:4: template: template \"{count}\" uses the undeclared field 'count' at column 1",
    ),
    (
        "[[event]]\ntype = \"a.b\"\nfields = { n = \"integer\" }\ntemplate = \"{n:>5}\"\n",
        "events.toml:4: template: ",
    ),
    (
        "[[event]]\ntype = \"a.b\"\nfields = { n = \"integer\", s = \"string\" }\ntemplate = \"{n:,} {s:,}\"\n",
        "events.toml:4: template: template \"{n:,} {s:,}\" uses ',' (thousands separator) on field 's' at column 7, which is a string; ',' applies only to integer, signed and number fields",
    ),
    (
        "[[event]]\ntype = \"a.b\"\nfields = { b = \"boolean\" }\ntemplate = \"{b:,}\"\n",
        "events.toml:4: template: template \"{b:,}\" uses ',' (thousands separator) on field 'b' at column 1, which is true or false;",
    ),
    (
        "[[event]]\ntype = \"user.signup\"\ntemplate = \"New: {email:,}\"\n",
        "events.toml:3: template: template \"New: {email:,}\" uses ',' (thousands separator) on field 'email' at column 6, which is a string;",
    ),
    (
        "[[event]]\ntype = \"has space\"\ntemplate = \"x\"\n",
        "events.toml:2: type: \"has space\" is not a valid event type name",
    ),
    (
        "[[event]]\ntemplate = \"x\"\n",
        "events.toml:1: missing field `type`",
    ),
];

#[test]
fn every_config_mistake_is_exit_2_naming_file_line_and_key() {
    let redis = RedisServer::start();
    for (toml, expected) in MISTAKES {
        let home = tempfile::tempdir().unwrap();
        let out = with_config(home.path(), &redis, toml)
            .args(["templates"])
            .run()
            .code(2);
        assert!(
            out.stderr.starts_with("events: error: "),
            "{toml}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(expected),
            "{toml}\nexpected {expected:?} in:\n{}",
            out.stderr
        );
        assert_eq!(out.stdout, "");
    }
}

const DESTINATION_MISTAKES: &[(&str, &str)] = &[
    (
        "[[destination]]\nname = \"a|b\"\nkind = \"console\"\n",
        "events.toml:2: name: \"a|b\" is not a valid destination name",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"sms\"\n",
        "events.toml:3: kind: unknown destination kind \"sms\" (expected slack, discord, teams, segment, posthog, mixpanel, webhook, pagerduty, email or console)",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"discord\"\n",
        "events.toml:3: url_env: destination \"a\" reads its secret from the environment variable DISCORD_WEBHOOK_URL, which is not set",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"slack\"\ntoken_env = \"HOOK\"\n",
        "events.toml:4: channel: destination \"a\" posts with a bot token and needs the channel to post to",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"slack\"\ntoken_env = \"HOOK\"\nchannel = \"#x\"\nurl_env = \"HOOK\"\n",
        "events.toml:6: url_env: a Slack destination posts either through an incoming webhook (url_env) or with a bot token",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"slack\"\ntoken_env = \"HOOK\"\nchannel = \" \"\n",
        "events.toml:5: channel: the channel must be a channel name or id",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"slack\"\nurl_env = \"NOT_SET_ANYWHERE\"\n",
        "events.toml:4: url_env: destination \"a\" reads its secret from the environment variable NOT_SET_ANYWHERE, which is not set",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"console\"\n[[destination]]\nname = \"a\"\nkind = \"console\"\n",
        "events.toml:5: name: destination \"a\" is declared twice",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"console\"\nrate = \"fast\"\n",
        "events.toml:4: rate: \"fast\" is not a rate: expected N/duration",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"console\"\nrate = \"0/s\"\n",
        "events.toml:4: rate: \"0/s\" is not a rate: a rate of nothing sends nothing",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"console\"\nevents = []\n",
        "events.toml:4: events: an empty list routes nothing",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"webhook\"\nurl_env = \"HOOK\"\nsecret_env = \"HOOK_SECRET\"\n",
        "events.toml:5: secret_env: the signing secret is not a valid signing secret",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"console\"\ncolour = \"red\"\n",
        "events.toml:4: unknown field `colour`, expected one of `name`, `kind`, `events`, `rate`, `when`, `template`",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"discord\"\nurl_env = \"HOOK\"\nchannel = \"#x\"\n",
        "events.toml:5: channel: only slack destinations take channel; \"a\" is a discord destination",
    ),
    (
        "[[destination]]\nname = \"a\"\nkind = \"segment\"\nwrite_key_env = \"HOOK\"\nurl_env = \"HOOK\"\n",
        "events.toml:5: url_env: only slack, discord, teams or webhook destinations take url_env; \"a\" is a segment destination",
    ),
];

#[test]
fn destination_mistakes_fail_the_worker_but_not_emit() {
    let redis = RedisServer::start();
    for (toml, expected) in DESTINATION_MISTAKES {
        let home = tempfile::tempdir().unwrap();
        let run = || {
            with_config(home.path(), &redis, toml)
                .env("HOOK", "http://127.0.0.1:9/")
                .env("HOOK_SECRET", "whsec_***not-base64")
        };
        run()
            .args(["emit", "user.signup", "--email", "a@b.c"])
            .run()
            .success();
        let out = run().args(["work", "--burst"]).run().code(2);
        assert!(
            out.stderr.contains(expected),
            "{toml}\nexpected {expected:?} in:\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("not-base64"),
            "a secret leaked: {}",
            out.stderr
        );
    }
}

#[test]
fn an_explicit_config_path_that_does_not_exist_is_exit_2() {
    Events::new()
        .args(["--config", "/nonexistent/events.toml", "templates"])
        .run()
        .code(2)
        .stderr_has("cannot read the config file /nonexistent/events.toml");
}

#[test]
fn a_dotenv_syntax_error_names_the_line_and_never_shows_the_content() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".env"),
        "EVENTS_CONSOLE=1\n\
         REDIS_URL=redis://:s3cr3tPASS@127.0.0.1:6379\n\
         BROKEN LINE=\"oops\n\
         EVENTS_WEBHOOK_URL=https://hooks.example.com/T0/B0/hookpath\n\
         EVENTS_WEBHOOK_SECRET=whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\n",
    )
    .unwrap();
    let out = Events::new()
        .home(home.path())
        .args(["templates"])
        .run()
        .code(2);
    assert_eq!(
        out.stderr.trim_end(),
        "events: error: .env:3: syntax error (expected KEY=VALUE, with quotes closed on the same entry)"
    );
    for secret in ["s3cr3tPASS", "hookpath", "C2FVsBQ", "oops"] {
        assert!(
            !out.stderr.contains(secret),
            "{secret} leaked: {}",
            out.stderr
        );
    }
}

/// Settings that would break the delivery guarantees, and the rule each
/// message must state.
const TUNING_MISTAKES: &[(&str, &str, &str)] = &[
    (
        "EVENTS_CLAIM_LEASE_MS",
        "0",
        "more than three HTTP timeouts (3 × EVENTS_HTTP_TIMEOUT_MS = 30000 ms)",
    ),
    (
        "EVENTS_CLAIM_LEASE_MS",
        "30000",
        "more than three HTTP timeouts",
    ),
    (
        "EVENTS_HTTP_TIMEOUT_MS",
        "0",
        "EVENTS_HTTP_TIMEOUT_MS must be a whole number of milliseconds from 100 to 600000",
    ),
    ("EVENTS_HTTP_TIMEOUT_MS", "600001", "from 100 to 600000"),
    (
        "EVENTS_HTTP_TIMEOUT_MS",
        "99999999999999999999",
        "from 100 to 600000",
    ),
    (
        "EVENTS_RETRY_BASE_MS",
        "0",
        "EVENTS_RETRY_BASE_MS must be a whole number of milliseconds from 1 to",
    ),
    (
        "EVENTS_MAX_ATTEMPTS",
        "0",
        "EVENTS_MAX_ATTEMPTS must be a whole number from 1 to 100",
    ),
    (
        "EVENTS_MAX_ATTEMPTS",
        "99999999999999999999",
        "from 1 to 100",
    ),
    (
        "EVENTS_CLAIM_LEASE_MS",
        "99999999999999999999",
        "at most 86400000 ms",
    ),
    (
        "EVENTS_RETENTION",
        "300000000y",
        "EVENTS_RETENTION must be a duration such as 30d or 12h, at most 36500d",
    ),
    (
        "EVENTS_DEAD_RETENTION",
        "a week",
        "EVENTS_DEAD_RETENTION must be a duration such as 30d or 12h, at most 36500d",
    ),
    (
        "EVENTS_ALERT_WINDOW",
        "500ms",
        "EVENTS_ALERT_WINDOW must be a duration from 1s to 1d, such as 5m or 1h",
    ),
    ("EVENTS_ALERT_WINDOW", "2d", "from 1s to 1d"),
    ("EVENTS_ALERT_WINDOW", "-5m", "from 1s to 1d"),
];

#[test]
fn tuning_that_breaks_the_guarantees_is_exit_2_with_the_rule() {
    for (name, value, expected) in TUNING_MISTAKES {
        let out = Events::new()
            .env(name, value)
            .args(["work", "--burst"])
            .run()
            .code(2);
        assert!(
            out.stderr.starts_with("events: error: ") && out.stderr.contains(expected),
            "{name}={value}: expected {expected:?} in:\n{}",
            out.stderr
        );
    }
    // The lease is checked against the timeout actually set.
    Events::new()
        .env("EVENTS_HTTP_TIMEOUT_MS", "200")
        .env("EVENTS_CLAIM_LEASE_MS", "601")
        .args(["work", "--burst"])
        .run()
        .success();
}

#[test]
fn a_prefix_without_a_hash_tag_is_exit_2_with_the_fix() {
    let redis = RedisServer::start();
    for command in [
        &["emit", "user.signup", "--email", "a@example.com"][..],
        &["status"],
    ] {
        Events::new()
            .env("REDIS_URL", redis.url())
            .env("EVENTS_PREFIX", "myapp:events")
            .args(command)
            .run()
            .code(2)
            .stderr_has(
                r#"EVENTS_PREFIX "myapp:events" has no {hash tag}: Redis Cluster needs every key in one slot; use "{myapp:events}""#,
            );
    }
    assert_eq!(redis.cli(&["DBSIZE"]).trim(), "0", "nothing written");
    let id = Events::new()
        .env("REDIS_URL", redis.url())
        .env("EVENTS_PREFIX", "{myapp:events}")
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .success()
        .stdout;
    assert!(!id.trim().is_empty());
    assert_eq!(redis.cli(&["XLEN", "{myapp:events}:stream"]).trim(), "1");
}
