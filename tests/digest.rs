//! `events digest`: the arithmetic of a window's summary, checked against
//! Python's `{:,}`, printed with `--dry-run` and posted to each kind of chat
//! destination through its own path.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Events, LONG, Reply, Sink};

/// Python's `f"{n:,}"` for an integer.
fn python_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_local_grouping_is_pythons() {
    // Printed by Python 3: [f"{n:,}" for n in (0, 999, 1000, 1234567, 10**18)].
    let expected = [
        "0",
        "999",
        "1,000",
        "1,234,567",
        "1,000,000,000,000,000,000",
    ];
    for (n, text) in [0, 999, 1000, 1_234_567, 10u64.pow(18)]
        .iter()
        .zip(expected)
    {
        assert_eq!(python_thousands(*n), text);
    }
}

/// Emits `n` imports with varied row counts (some in the millions) and
/// importers, and a few signups; returns the sum of the row counts.
fn emit_window(home: &Path, n: u64) -> u64 {
    let mut input = String::new();
    let mut sum = 0;
    for i in 0..n {
        let rows = (i * 7_919 + 13) % 4_000_000;
        sum += rows;
        let importer = match i {
            5 => "Once",
            i if i.is_multiple_of(7) => "Sheets",
            _ => "CRM",
        };
        input.push_str(
            &json!({"type": "import.completed", "payload": {
                "email": format!("user{i}@example.com"), "importer_name": importer, "row_count": rows}})
            .to_string(),
        );
        input.push('\n');
    }
    for i in 0..3 {
        input.push_str(
            &json!({"type": "user.signup", "payload": {"email": format!("s{i}@x.io")}}).to_string(),
        );
        input.push('\n');
    }
    Events::new()
        .home(home)
        .args(["emit", "--stdin"])
        .stdin(input)
        .run()
        .success();
    sum
}

#[test]
fn dry_run_prints_counts_and_sums_as_python_groups_them() {
    let home = tempfile::tempdir().unwrap();
    let n = 1_203;
    let sum = emit_window(home.path(), n);
    let crm = (0..n).filter(|i| !i.is_multiple_of(7)).count() as u64;
    let sheets = (0..n).filter(|i| i.is_multiple_of(7)).count() as u64;
    let out = Events::new()
        .home(home.path())
        .args(["digest", "--since", "1h", "--dry-run"])
        .run()
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].starts_with("Digest "), "{}", lines[0]);
    assert!(lines[0].ends_with(&format!(" UTC: {} events", python_thousands(n + 3))));
    assert_eq!(
        lines[1],
        format!(
            "import.completed: {} ({} rows); top importer_name: CRM ({}), Sheets ({})",
            python_thousands(n),
            python_thousands(sum),
            python_thousands(crm - 1),
            python_thousands(sheets),
        )
    );
    assert_eq!(lines[2], "user.signup: 3");
}

#[test]
fn sums_past_64_bits_print_exactly() {
    let home = tempfile::tempdir().unwrap();
    let max = u64::MAX.to_string();
    for _ in 0..3 {
        Events::new()
            .home(home.path())
            .args(["emit", "import.completed", "--email", "a@x.io"])
            .args(["--importer-name", "CRM", "--row-count", &max])
            .run()
            .success();
    }
    // Printed by Python 3: f"{3 * (2**64 - 1):,}".
    Events::new()
        .home(home.path())
        .args(["digest", "--since", "1h", "--dry-run"])
        .run()
        .success()
        .stdout_has("import.completed: 3 (55,340,232,221,128,654,845 rows)");
}

#[test]
fn a_window_before_the_events_is_empty() {
    let home = tempfile::tempdir().unwrap();
    emit_window(home.path(), 2);
    Events::new()
        .home(home.path())
        .args(["digest", "--since", "3h", "--until", "2h", "--dry-run"])
        .run()
        .success()
        .stdout_has(" UTC: 0 events\n")
        .stdout_lacks("import.completed");
}

const CHAT: &str = r##"
[[destination]]
name = "slack"
kind = "slack"
url_env = "SLACK_URL"

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
api_url = "{api}"

[[destination]]
name = "segment"
kind = "segment"
endpoint = "http://127.0.0.1:9"
"##;

struct Chat {
    home: tempfile::TempDir,
    slack: Sink,
    discord: Sink,
    teams: Sink,
    bot: Sink,
}

impl Chat {
    fn new() -> Chat {
        let chat = Chat {
            home: tempfile::tempdir().unwrap(),
            slack: Sink::start(),
            discord: Sink::start(),
            teams: Sink::start(),
            bot: Sink::start(),
        };
        chat.discord.set_default(Reply::status(204, ""));
        chat.teams.set_default(Reply::status(202, ""));
        chat.bot.set_default(
            Reply::status(200, r#"{"ok": true}"#).header("Content-Type", "application/json"),
        );
        let toml = CHAT.replace("{api}", &chat.bot.base_url());
        std::fs::write(chat.home.path().join("events.toml"), toml).unwrap();
        chat
    }

    fn events(&self) -> Events {
        Events::new()
            .home(self.home.path())
            .env("SLACK_URL", self.slack.url())
            .env("DISCORD_URL", self.discord.url())
            .env("TEAMS_URL", self.teams.url())
            .env("SLACK_BOT_TOKEN", "xoxb-HIDDEN")
            .env("SEGMENT_WRITE_KEY", "wk-HIDDEN")
    }

    fn emit_hostile_imports(&self) {
        for _ in 0..2 {
            self.events()
                .args(["emit", "import.completed", "--email", "a@x.io"])
                .args([
                    "--importer-name",
                    "<!channel> *@everyone*",
                    "--row-count",
                    "1500",
                ])
                .run()
                .success();
        }
    }
}

#[test]
fn every_chat_destination_gets_one_message_escaped_its_own_way() {
    let chat = Chat::new();
    chat.emit_hostile_imports();
    let out = chat
        .events()
        .args(["digest", "--since", "1h"])
        .run()
        .success();
    assert!(!out.stderr.contains("HIDDEN"), "{}", out.stderr);
    let line = "import.completed: 2 (3,000 rows); top email: a@x.io (2); top importer_name:";
    let slack = chat.slack.accepted();
    assert_eq!(slack.len(), 1);
    let text = slack[0].json()["text"].as_str().unwrap().to_owned();
    assert_eq!(
        text.lines().nth(1).unwrap(),
        format!("{line} &lt;!channel&gt; *@everyone* (2)")
    );
    assert!(
        text.starts_with("Digest ") && text.lines().count() == 2,
        "{text}"
    );
    let bot = chat.bot.accepted();
    assert_eq!(bot[0].header("authorization"), Some("Bearer xoxb-HIDDEN"));
    assert_eq!(bot[0].json()["channel"], "#growth");
    assert_eq!(bot[0].json()["text"], text);
    let discord = chat.discord.accepted()[0].json();
    assert_eq!(discord["allowed_mentions"], json!({"parse": []}));
    assert!(
        discord["content"]
            .as_str()
            .unwrap()
            .contains(r"top importer\_name: \<!channel\> \*@everyone\* (2)"),
        "{discord}"
    );
    let teams = chat.teams.accepted()[0].json();
    let blocks = &teams["attachments"][0]["content"]["body"];
    assert_eq!(blocks.as_array().unwrap().len(), 2, "{teams}");
    assert!(
        blocks[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("import.completed: 2 (3,000 rows)")
    );
}

#[test]
fn to_narrows_to_the_named_chat_destinations_and_refuses_others() {
    let chat = Chat::new();
    chat.emit_hostile_imports();
    chat.events()
        .args(["digest", "--since", "1h", "--to", "discord"])
        .run()
        .success();
    assert_eq!(chat.discord.accepted().len(), 1);
    assert_eq!(chat.slack.request_count() + chat.teams.request_count(), 0);
    chat.events()
        .args(["digest", "--since", "1h", "--to", "segment"])
        .run()
        .code(2)
        .stderr_has("--to segment: a digest goes to chat destinations (Slack, Discord, Teams), and this is a segment destination")
        .stderr_lacks("HIDDEN");
    chat.events()
        .args(["digest", "--since", "1h", "--to", "nope"])
        .run()
        .code(2)
        .stderr_has("--to nope: no such destination");
}

#[test]
fn a_refused_digest_fails_the_job() {
    let chat = Chat::new();
    chat.slack.set_default(Reply::status(404, "no_service"));
    chat.events()
        .args(["digest", "--since", "1h", "--to", "slack"])
        .run()
        .code(1)
        .stderr_has("the digest was not delivered to slack");
}

#[test]
fn without_a_chat_destination_it_asks_for_dry_run() {
    Events::new()
        .env("SEGMENT_WRITE_KEY", "wk")
        .args(["digest", "--since", "24h"])
        .run()
        .code(2)
        .stderr_has("no chat destination (Slack, Discord, Teams) is configured to send the digest to; pass --dry-run to print it");
}

/// A home whose `events.toml` posts to Slack at `SLACK_URL` and declares
/// 45 event types, one event of each emitted: a digest of 46 lines, more
/// than one Slack message carries (40), goes in two parts.
fn a_two_part_window() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let mut toml = String::from(
        "[[destination]]\nname = \"slack\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\n",
    );
    let mut input = String::new();
    for i in 0..45 {
        toml.push_str(&format!(
            "\n[[event]]\ntype = \"report.part{i}\"\nfields = {{}}\ntemplate = \"Part {i}\"\n"
        ));
        input.push_str(&format!(
            "{{\"type\": \"report.part{i}\", \"payload\": {{}}}}\n"
        ));
    }
    std::fs::write(home.path().join("events.toml"), toml).unwrap();
    Events::new()
        .home(home.path())
        .args(["emit", "--stdin"])
        .stdin(input)
        .run()
        .success();
    home
}

/// How far apart the sink received requests `a` and `b`.
fn apart(requests: &[crate::support::Request], a: usize, b: usize) -> Duration {
    requests[b].at.duration_since(requests[a].at)
}

#[test]
fn a_digest_in_two_parts_keeps_slacks_one_message_a_second() {
    let home = a_two_part_window();
    let slack = Sink::start();
    Events::new()
        .home(home.path())
        .env("SLACK_URL", slack.url())
        .args(["digest", "--since", "1h"])
        .run()
        .success();
    let parts = slack.accepted();
    assert_eq!(parts.len(), 2, "the digest is split in two");
    assert!(
        parts[0].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("Digest ")
    );
    // Slack's default rate: one message a second, taken before each send;
    // the margin is for the first request's connection set-up.
    let gap = apart(&parts, 0, 1);
    assert!(gap >= Duration::from_millis(900), "parts {gap:?} apart");
}

#[test]
fn a_digest_waits_for_the_sends_a_worker_took() {
    let home = tempfile::tempdir().unwrap();
    let slack = Sink::start();
    let toml = "[[destination]]\nname = \"slack\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\nrate = \"1/2s\"\n";
    std::fs::write(home.path().join("events.toml"), toml).unwrap();
    let events = || {
        Events::new()
            .home(home.path())
            .env("SLACK_URL", slack.url())
    };
    let worker = events().arg("work").spawn();
    events()
        .args(["emit", "user.signup", "--email", "a@x.io"])
        .run()
        .success();
    assert_eq!(slack.wait_accepted(1, LONG).len(), 1, "the worker sent it");
    events().args(["digest", "--since", "1h"]).run().success();
    worker.signal("TERM");
    worker.wait(LONG).success();
    let sent = slack.accepted();
    assert_eq!(sent.len(), 2, "the worker's message, then the digest");
    assert!(
        sent[1].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("Digest ")
    );
    // The worker took the send at most a few milliseconds before its
    // request arrived: the digest waited out the rest of the two seconds.
    let gap = apart(&sent, 0, 1);
    assert!(gap >= Duration::from_millis(1_800), "sent {gap:?} apart");
}

#[test]
fn a_slack_that_always_answers_429_ends_the_digest_after_max_wait() {
    let chat = Chat::new();
    chat.emit_hostile_imports();
    // A day's wait (clamped to an hour), none that parses, and one second.
    for (retry_after, at_most) in [("999999999", 1), ("-5", 4), ("soon", 4), ("1", 4)] {
        let slack = Sink::start();
        slack.set_default(Reply::status(429, "rate_limited").header("Retry-After", retry_after));
        let started = Instant::now();
        chat.events()
            .env("SLACK_URL", slack.url())
            .args(["digest", "--since", "1h", "--to", "slack", "--max-wait", "2s"])
            // Only a hang guard: it used to run forever.
            .timeout(Duration::from_secs(30))
            .run()
            .code(1)
            .stderr_has("the digest was not delivered to slack")
            .stderr_has("still refused after waiting as long as --max-wait 2s allows; the last answer: HTTP 429 rate_limited");
        let asked = slack.request_count();
        assert!(
            (1..=at_most).contains(&asked),
            "Retry-After {retry_after}: {asked} requests in {:?}",
            started.elapsed()
        );
    }
}
