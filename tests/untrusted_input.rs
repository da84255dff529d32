//! Tests of input nobody vetted: JSON Lines with bytes that are not UTF-8,
//! ids and types with control characters, values with terminal escapes and
//! line separators. One bad line is one rejected line; nothing from outside
//! reaches a message or a log line as a raw control character.

use proptest::prelude::*;
use serde_json::Value;

use crate::replay::{WEBHOOK_SECRET, status};
use crate::support::sentinel::{FakeSentinel, Trick};
use crate::support::{Backend, Events, RedisServer, on_both_backends};

/// How many good lines surround the bad one: more than one batch of
/// `emit --stdin` (1,000), so a failure after the first batch shows.
const GOOD: usize = 1501;

/// The line number of the line that is not UTF-8, inside the second batch.
const BAD_LINE: usize = 1201;

/// `GOOD` valid JSON lines with one line of invalid UTF-8 as line `BAD_LINE`.
fn lines_around_invalid_utf8() -> Vec<u8> {
    let mut input = Vec::new();
    for i in 0..GOOD {
        if i + 1 == BAD_LINE {
            input.extend_from_slice(
                b"{\"type\":\"user.signup\",\"payload\":{\"email\":\"\xc3\x28\"}}\n",
            );
        }
        input.extend_from_slice(
            format!(r#"{{"id":"evt-{i}","type":"user.signup","payload":{{"email":"u{i}@example.com"}}}}"#)
                .as_bytes(),
        );
        input.push(b'\n');
    }
    input
}

fn expected_ids() -> Vec<String> {
    (0..GOOD).map(|i| format!("evt-{i}")).collect()
}

fn printed_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).expect("a JSON line");
            event["id"].as_str().expect("an id").to_owned()
        })
        .collect()
}

on_both_backends!(
    emit_stdin_writes_every_good_line_around_one_that_is_not_utf8,
    replay_file_replays_every_good_line_around_one_that_is_not_utf8,
);

fn emit_stdin_writes_every_good_line_around_one_that_is_not_utf8(backend: Backend) {
    backend
        .events()
        .args(["emit", "--stdin"])
        .stdin_bytes(lines_around_invalid_utf8())
        .run()
        .code(2)
        .stderr_has(&format!(
            "line {BAD_LINE}: not valid UTF-8 (the first bad byte is byte 43 of the line)"
        ))
        .stderr_has("wrote 1501 events, rejected 1 lines")
        .stderr_has("1 input lines were rejected (see above); the others were written");
    let out = backend
        .events()
        .args(["replay", "--since", "1h", "--dry-run"])
        .run()
        .success();
    assert_eq!(printed_ids(&out.stdout), expected_ids());

    // The same input as --dry-run prints every good line and rejects the bad one.
    let out = backend
        .events()
        .args(["emit", "--stdin", "--dry-run"])
        .stdin_bytes(lines_around_invalid_utf8())
        .run()
        .code(2)
        .stderr_has(&format!("line {BAD_LINE}: not valid UTF-8"));
    assert_eq!(printed_ids(&out.stdout), expected_ids());
}

fn replay_file_replays_every_good_line_around_one_that_is_not_utf8(backend: Backend) {
    let webhook = |events: Events| {
        events
            .env("EVENTS_WEBHOOK_URL", "http://127.0.0.1:9/hook")
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), lines_around_invalid_utf8()).unwrap();
    webhook(backend.events())
        .args(["replay", "--to", "webhook", "--file"])
        .arg(file.path())
        .run()
        .code(2)
        .stderr_has(&format!("line {BAD_LINE}: not valid UTF-8"))
        .stderr_has("replayed 1501 events (1501 deliveries), skipped 0, failed 1");
    assert_eq!(
        status(webhook(backend.events()))["retries"]["scheduled"],
        1501
    );

    // From stdin, which replay reads twice (to count, then to replay).
    let out = webhook(backend.events())
        .args(["replay", "--to", "webhook", "--file", "-", "--dry-run"])
        .stdin_bytes(lines_around_invalid_utf8())
        .run()
        .code(2)
        .stderr_has(&format!("line {BAD_LINE}: not valid UTF-8"))
        .stderr_has("would replay 1501 events (1501 deliveries), skipped 0, failed 1");
    assert_eq!(printed_ids(&out.stdout), expected_ids());
}

/// Whether `text` holds a character that must never reach a terminal raw.
fn has_control(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_control() && c != '\n'
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    })
}

#[test]
fn emit_stdin_rejects_ids_and_types_that_are_not_one_printable_word() {
    let server = RedisServer::start();
    let long = "x".repeat(129);
    let input = [
        r#"{"id":"evt-1\nevents: delivered user.signup FORGED","type":"user.signup","payload":{"email":"a@b"}}"#.to_owned(),
        r#"{"id":"evt 2","type":"user.signup","payload":{"email":"a@b"}}"#.to_owned(),
        format!(r#"{{"id":"{long}","type":"user.signup","payload":{{"email":"a@b"}}}}"#),
        r#"{"type":"user.sig\u001b[2Kup","payload":{"email":"a@b"}}"#.to_owned(),
        r#"{"id":"evt-5","type":"user.signup","payload":{"email":"a@b"}}"#.to_owned(),
        r#"{"id":"","type":"user.signup","payload":{"email":"a@b"}}"#.to_owned(),
    ]
    .join("\n");
    let out = Events::new()
        .env("REDIS_URL", server.url())
        .args(["emit", "--stdin"])
        .stdin(input)
        .run()
        .code(2)
        .stderr_has(
            "line 1: 'id' has '\\u{a}' at byte 5; only printable ASCII without spaces is allowed",
        )
        .stderr_has("line 2: 'id' has '\\u{20}' at byte 3")
        .stderr_has("line 3: 'id' is 129 bytes long; at most 128 are allowed")
        .stderr_has("line 4: 'type' has '\\u{1b}' at byte 8")
        .stderr_has("line 6: 'id' is empty")
        .stderr_lacks("line 5:");
    assert!(!has_control(&out.stderr), "{:?}", out.stderr);
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.starts_with("events: delivered")),
        "{}",
        out.stderr
    );
    let ids = server.cli(&[
        "EVAL",
        "local e = redis.call('XRANGE', KEYS[1], '-', '+'); return #e",
        "1",
        "{events}:stream",
    ]);
    assert_eq!(ids.trim(), "1", "only the good line is written");
}

#[test]
fn a_stream_entry_with_a_forged_id_is_poison_and_never_forges_a_log_line() {
    let server = RedisServer::start();
    server.cli(&[
        "XADD",
        "{events}:stream",
        "*",
        "id",
        "evt-1\nevents: delivered user.signup FORGED",
        "type",
        "user.signup",
        "payload",
        r#"{"email":"a@b"}"#,
    ]);
    server.cli(&[
        "XADD",
        "{events}:stream",
        "*",
        "type",
        "user.sig\x1b[1A\x1b[2Kup",
        "payload",
        r#"{"email":"a@b"}"#,
    ]);
    let out = Events::new()
        .env("REDIS_URL", server.url())
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("cannot be delivered: 'id' has '\\u{a}' at byte 5; only printable ASCII without spaces is allowed")
        .stderr_has("cannot be delivered: 'type' has '\\u{1b}' at byte 8");
    assert!(!has_control(&out.stderr), "{:?}", out.stderr);
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.starts_with("events: delivered")),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "", "nothing was delivered");
}

#[test]
fn unknown_type_with_control_characters_is_named_escaped() {
    let out = Events::new()
        .args(["emit", "user.sig\u{1b}[2Kup\u{2028}", "--email", "a@b"])
        .run()
        .code(2)
        .stderr_has("unknown event type 'user.sig\\u{1b}[2Kup\\u{2028}'");
    assert!(!has_control(&out.stderr), "{:?}", out.stderr);
}

#[test]
fn values_reach_the_console_on_one_line_without_terminal_controls() {
    let home = tempfile::tempdir().unwrap();
    let email = "ada\u{1b}[1A\u{1b}[2K\u{2028}x\u{85}y\u{b}z\u{202e}moc.evil\r\nq";
    Events::new()
        .home(home.path())
        .args(["emit", "user.signup", "--email", email])
        .run()
        .success();
    let out = Events::new()
        .home(home.path())
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(
        out.stdout, "New signup: ada [1A [2K x y z moc.evil q\n",
        "one line, every control character a space"
    );
    let out = Events::new()
        .args(["emit", "user.signup", "--dry-run", "--email", email])
        .run()
        .success();
    let message = out.stdout.lines().nth(1).expect("the message line");
    assert_eq!(message, "New signup: ada [1A [2K x y z moc.evil q");
    assert_eq!(out.stdout.lines().count(), 2, "{:?}", out.stdout);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any `--field` value renders as one line without a control character.
    #[test]
    fn any_field_value_previews_as_one_line(value in "[^\0]{0,60}") {
        let out = Events::new()
            .args(["templates", "user.signup", "--preview", "--format", "json", "--field"])
            .arg(format!("email={value}"))
            .run()
            .success();
        let previews: Value = serde_json::from_str(&out.stdout).expect("JSON");
        let message = previews[0]["preview"].as_str().expect("a message").to_owned();
        prop_assert!(message.starts_with("New signup: "), "{:?}", message);
        prop_assert!(!has_control(&message) && !message.contains('\n'), "{:?}", message);
    }

    /// Any bytes on a line of `emit --stdin` give an accepted event or a
    /// clear, printable error for that line, never a crash.
    #[test]
    fn any_bytes_on_stdin_are_accepted_or_rejected_by_line(
        bytes in proptest::collection::vec(any::<u8>(), 1..80)
    ) {
        let mut line: Vec<u8> = bytes.into_iter().filter(|&b| b != b'\n').collect();
        line.push(b'\n');
        let out = Events::new()
            .args(["emit", "--stdin", "--dry-run"])
            .stdin_bytes(line.clone())
            .run();
        let text = String::from_utf8_lossy(&line);
        let blank = std::str::from_utf8(&line).is_ok_and(|t| t.trim().is_empty());
        match out.status {
            Some(0) => prop_assert!(blank || out.stdout.lines().count() == 1, "{:?}: {:?}", text, out),
            Some(2) => {
                prop_assert!(out.stderr.contains("line 1: "), "{:?}: {:?}", text, out);
                prop_assert!(!has_control(&out.stderr), "{:?}: {:?}", text, out.stderr);
            }
            _ => prop_assert!(false, "{:?}: {:?}", text, out),
        }
    }
}

/// A server at `REDIS_URL` that is not the Redis it should be, refusing
/// every command with a long error full of terminal controls: the error
/// message echoes a short excerpt of it, escaped.
#[test]
fn a_redis_servers_long_error_is_echoed_short_and_escaped() {
    let mut said = b"-ERR \x1b[2Kforged\x07 ".to_vec();
    said.extend(b"x".repeat(100_000));
    said.extend(b"\r\n");
    let server = FakeSentinel::start(Trick::Refuse(said));
    let out = Events::new()
        .env("REDIS_URL", format!("redis://127.0.0.1:{}", server.port()))
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .code(1)
        .stderr_has("answered with an error: ")
        .stderr_has("\\u{1b}[2Kforged\\u{7} xxx");
    assert!(out.stderr.len() < 1024, "{} bytes", out.stderr.len());
    assert!(out.stderr.ends_with("x…\n"), "{}", out.stderr);
    assert!(!has_control(out.stderr.trim_end()), "{:?}", out.stderr);
}

#[test]
fn an_absurd_concurrency_is_refused_before_any_thread_starts() {
    // Each unit of concurrency is a thread and a connection per destination:
    // 65,535 of them exhausted memory and crashed the worker.
    for n in ["0", "257", "65535", "99999999999"] {
        Events::new()
            .env("EVENTS_WEBHOOK_URL", "http://127.0.0.1:9/hook")
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .args(["work", "--burst", "--concurrency", n])
            .run()
            .code(2)
            .stderr_has("1..=256");
    }
}

#[test]
fn status_shows_hostile_dead_letters_and_entries_escaped() {
    // Anyone who can reach Redis can write the dead letters and the stream.
    let redis = RedisServer::start();
    redis.cli(&[
        "XADD",
        "{events}:dead",
        "*",
        "dest",
        "sl\u{1b}[2Kack",
        "error",
        "bad\u{1b}]0;title\u{7}\r\nevents: delivered FORGED",
        "attempts",
        "99999999999999999999",
        "at",
        "-5",
    ]);
    redis.cli(&[
        "XADD",
        "{events}:stream",
        "*",
        "id",
        "evt\u{1b}[1A",
        "type",
        "user.signup",
        "payload",
        "{}",
    ]);
    let out = Events::new()
        .env("REDIS_URL", redis.url())
        .arg("status")
        .run()
        .success()
        .stdout_has("sl\\u{1b}[2Kack")
        .stdout_has("bad\\u{1b}]0;title\\u{7}\\r\\nevents: delivered FORGED");
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\r'),
        "a raw control character reached the terminal:\n{}",
        out.stdout
    );
}
