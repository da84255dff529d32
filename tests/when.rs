//! A destination's own `when` and `template`: the CEL filter that narrows
//! what its globs match, in `work` and `replay --to`, with a bad expression
//! refused at load and a failing one reported once; and the message that
//! replaces the catalog's for that destination only, checked at load.

use std::path::Path;

use crate::support::{Events, RedisServer, Sink};

const CHANNELS: &str = r#"
[[event]]
type = "import.completed"
fields = { email = "string", row_count = "integer", plan = "string" }
template = "Import: {row_count:,} rows by {email} ({plan})"

[[destination]]
name = "sales"
kind = "slack"
url_env = "SLACK_SALES_URL"
events = ["import.completed"]
when = 'payload.row_count >= 100000 && payload.plan in ["pro", "team"]'

[[destination]]
name = "growth"
kind = "slack"
url_env = "SLACK_GROWTH_URL"
when = 'type != "subscription.cancelled"'
template = "Growth: *{email}*"
"#;

fn with_config(home: &Path, redis: &RedisServer, toml: &str) -> Events {
    std::fs::write(home.join("events.toml"), toml).unwrap();
    Events::new().home(home).env("REDIS_URL", redis.url())
}

/// Each message line received: Slack joins a burst into one message.
fn lines(sink: &Sink) -> Vec<String> {
    sink.accepted()
        .iter()
        .flat_map(|r| {
            let text = r.json()["text"].as_str().unwrap().to_owned();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

fn import(events: Events, email: &str, rows: &str, plan: &str) {
    events
        .args(["emit", "import.completed", "--email", email])
        .args(["--row-count", rows, "--plan", plan])
        .run()
        .success();
}

#[test]
fn only_big_imports_on_paid_plans_reach_sales() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let (sales, growth) = (Sink::start(), Sink::start());
    let run = || {
        with_config(home.path(), &redis, CHANNELS)
            .env("SLACK_SALES_URL", sales.url())
            .env("SLACK_GROWTH_URL", growth.url())
    };
    import(run(), "big@example.com", "250000", "pro");
    import(run(), "free@example.com", "250000", "free");
    import(run(), "small@example.com", "99999", "team");
    run()
        .args(["emit", "subscription.cancelled", "--email", "c@example.com"])
        .args(["--plan", "pro"])
        .run()
        .success();
    run().args(["work", "--burst"]).run().success();
    assert_eq!(
        lines(&sales),
        ["Import: 250,000 rows by big@example.com (pro)"]
    );
    assert_eq!(
        lines(&growth),
        [
            "Growth: *big@example.com*",
            "Growth: *free@example.com*",
            "Growth: *small@example.com*",
        ]
    );
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");
    assert_eq!(redis.pending(), 0, "nothing left claimed");

    // Replaying history to sales alone keeps its filter.
    let again = Sink::start();
    let rerun = || {
        with_config(home.path(), &redis, CHANNELS)
            .env("SLACK_SALES_URL", again.url())
            .env("SLACK_GROWTH_URL", growth.url())
    };
    rerun()
        .args(["replay", "--since", "1h", "--to", "sales", "--yes"])
        .run()
        .success();
    rerun().args(["work", "--burst"]).run().success();
    assert_eq!(lines(&growth).len(), 3, "growth got nothing again");
    assert_eq!(
        lines(&again),
        ["Import: 250,000 rows by big@example.com (pro)"]
    );
}

#[test]
fn a_when_that_fails_at_run_time_routes_nowhere_and_warns_once_per_destination() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let toml = r#"
[[destination]]
name = "sales"
kind = "slack"
url_env = "SLACK_SALES_URL"
when = 'payload.row_count >= 100000'

[[destination]]
name = "typed"
kind = "slack"
url_env = "SLACK_SALES_URL"
when = 'payload.email > 3'
"#;
    let run = || with_config(home.path(), &redis, toml).env("SLACK_SALES_URL", sink.url());
    let signup = |email: &str| {
        run()
            .args(["emit", "user.signup", "--email", email])
            .run()
            .success();
    };
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        signup(email);
    }
    let out = run().args(["work", "--burst"]).run().success();
    assert_eq!(sink.accepted().len(), 0);
    let warned = |stderr: &str, dest: &str| {
        stderr
            .lines()
            .filter(|l| l.contains(&format!(": {dest}: when ")))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let sales = warned(&out.stderr, "sales");
    assert_eq!(sales.len(), 1, "{}", out.stderr);
    assert!(
        sales[0].starts_with(
            "events: warning: sales: when \"payload.row_count >= 100000\" failed on a user.signup event, which goes nowhere by this route: "
        ) && sales[0].contains("row_count")
            && sales[0].ends_with("; the next failures are shown at -v"),
        "{}",
        out.stderr
    );
    let typed = warned(&out.stderr, "typed");
    assert_eq!(typed.len(), 1, "{}", out.stderr);
    assert!(
        typed[0].starts_with("events: warning: typed: when \"payload.email > 3\" failed"),
        "{}",
        out.stderr
    );
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");
    assert_eq!(redis.pending(), 0, "nothing left claimed");

    // At -v, every failure is said: the first as a warning, the next below.
    signup("d@example.com");
    signup("e@example.com");
    let out = run().args(["-v", "work", "--burst"]).run().success();
    assert_eq!(warned(&out.stderr, "sales").len(), 2, "{}", out.stderr);
    assert_eq!(sink.accepted().len(), 0);
}

#[test]
fn a_template_that_does_not_fit_a_routed_type_is_exit_2_naming_it() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let toml = "[[destination]]\nname = \"a\"\nkind = \"console\"\nevents = [\"subscription.*\"]\ntemplate = \"{email} ({plan})\"\n";
    let out = with_config(home.path(), &redis, toml)
        .args(["work", "--burst"])
        .run()
        .code(2);
    assert!(
        out.stderr.contains(
            "events.toml:5: template: for event type subscription.payment_failed: template \"{email} ({plan})\" uses the undeclared field 'plan'"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_when_that_does_not_parse_is_exit_2_naming_file_and_line() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let toml = "[[destination]]\nname = \"a\"\nkind = \"console\"\nwhen = 'payload.row_count >='\n";
    let out = with_config(home.path(), &redis, toml)
        .args(["work", "--burst"])
        .run()
        .code(2);
    assert!(
        out.stderr
            .contains("events.toml:4: when: CEL expression at 1:21: Syntax error"),
        "{}",
        out.stderr
    );
}

/// A config whose one console destination has `when` = `source`, as a TOML
/// basic string on line 4.
fn console_when(source: &str) -> String {
    let quoted = serde_json::to_string(source).unwrap();
    format!("[[destination]]\nname = \"a\"\nkind = \"console\"\nwhen = {quoted}\n")
}

#[test]
fn a_when_nested_thousands_deep_is_exit_2_naming_file_and_line() {
    let home = tempfile::tempdir().unwrap();
    let deep = [
        format!("payload{} == 1", ".a".repeat(20_000)),
        format!("{}1{} == 1", "(".repeat(1_000), ")".repeat(1_000)),
        format!("{}{} == []", "[".repeat(1_000), "]".repeat(1_000)),
        format!("1{} == 1", " + 1".repeat(1_000)),
        format!("{}true", "!".repeat(1_000)),
    ];
    for source in deep {
        std::fs::write(home.path().join("events.toml"), console_when(&source)).unwrap();
        let out = Events::new()
            .home(home.path())
            .args(["work", "--burst"])
            .run()
            .code(2);
        assert!(
            out.stderr
                .starts_with("events: error: events.toml:4: when: CEL expression "),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(" allowed"), "{}", out.stderr);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever a `when` holds, loading it and judging an event with it
    /// ends in exit 0 or 2, never in a signal.
    #[test]
    fn any_when_text_exits_0_or_2(source in cel_like()) {
        let home = tempfile::tempdir().unwrap();
        let events = || Events::new().home(home.path());
        events()
            .args(["emit", "user.signup", "--email", "a@example.com"])
            .run()
            .success();
        std::fs::write(home.path().join("events.toml"), console_when(&source)).unwrap();
        let out = events().args(["work", "--burst"]).run();
        proptest::prop_assert!(
            matches!(out.status, Some(0 | 2)),
            "{source:?}: {:?} {:?}\n{}",
            out.status,
            out.signal(),
            out.stderr
        );
    }
}

/// Text made of CEL's tokens, each repeated up to hundreds of times.
fn cel_like() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let token = proptest::sample::select(vec![
        "(", ")", "[", "]", "{", "}", ".a", "!", "-", "+", "1", "payload", "\"", "'", "r\"", "\\",
        "&&", "||", "?", ":", ",", "//", "\n", " in ", " ", "==", "size(", "[0]",
    ]);
    let run = (token, 1..2_000usize).prop_map(|(t, n)| t.repeat(n));
    let pair = proptest::sample::select(vec![
        ("(", ")"),
        ("[", "]"),
        ("{1: ", "}"),
        ("size(", ")"),
        ("payload.a", ".a"),
        ("!", ""),
        ("1 + ", ""),
        ("true ? 1 : ", ""),
        ("[1].all(x, ", ")"),
    ]);
    let nested = (pair, 1..3_000usize)
        .prop_map(|((open, close), n)| format!("{}1{} == 1", open.repeat(n), close.repeat(n)));
    prop_oneof![
        nested,
        proptest::collection::vec(run, 0..8).prop_map(|runs| runs.concat()),
        any::<String>(),
    ]
}

#[test]
fn integer_fields_take_arithmetic_as_in_python_or_js() {
    let home = tempfile::tempdir().unwrap();
    let toml = r#"
[[destination]]
name = "plus"
kind = "console"
events = ["import.completed"]
when = 'payload.row_count + 1 > 5'

[[destination]]
name = "times"
kind = "console"
events = ["import.completed"]
when = 'payload.row_count * 2 >= 10'

[[destination]]
name = "minus"
kind = "console"
events = ["import.completed"]
when = 'payload.row_count - 10 < 0'
"#;
    std::fs::write(home.path().join("events.toml"), toml).unwrap();
    let events = || Events::new().home(home.path());
    let emit = |rows: &str| {
        let out = events()
            .args(["emit", "import.completed", "--email", "a@example.com"])
            .args(["--row-count", rows, "--importer-name", "csv"])
            .run()
            .success();
        out.stdout.trim().to_owned()
    };
    let (five, four) = (emit("5"), emit("4"));
    let out = events().args(["work", "--burst"]).run().success();
    let to = |id: &str| {
        let mut names: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains(&format!("delivered import.completed {id} to ")))
            .filter_map(|l| l.split(" to ").nth(1)?.split(' ').next())
            .collect();
        names.sort_unstable();
        names
    };
    assert_eq!(to(&five), ["minus", "plus", "times"], "{}", out.stderr);
    assert_eq!(to(&four), ["minus"], "{}", out.stderr);
    assert!(!out.stderr.contains("when "), "{}", out.stderr);
}
