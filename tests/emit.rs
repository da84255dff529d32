//! Tests of `emit` against a real Redis: what lands on the stream (the wire
//! format of DESIGN §4, which other producers and the worker rely on), what
//! is printed, and that invalid input writes nothing and exits 2.

use serde_json::{Value, json};

use crate::support::{Events, Outcome, RedisServer};

const STREAM: &str = "{events}:stream";

/// The fields every entry the tool writes carries, sorted.
const WIRE_FIELDS: [&str; 4] = ["id", "payload", "ts", "type"];

/// One stream entry, fields in the order Redis returns them.
#[derive(Debug)]
struct Entry {
    fields: Vec<(String, String)>,
}

impl Entry {
    fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("entry has no field {name:?}: {self:?}"))
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.fields.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names
    }

    fn payload(&self) -> Value {
        serde_json::from_str(self.get("payload"))
            .unwrap_or_else(|err| panic!("payload is not JSON ({err}): {self:?}"))
    }

    /// Asserts the shape the tool writes: exactly `type`, `payload` (a JSON
    /// object), `id` (a ULID) and `ts` (RFC 3339 UTC with milliseconds).
    fn assert_wire_shape(&self) {
        assert_eq!(self.names(), WIRE_FIELDS, "fields of {self:?}");
        assert!(self.payload().is_object(), "payload of {self:?}");
        assert_ulid(self.get("id"));
        assert_ts(self.get("ts"));
    }
}

/// Every entry of the stream, oldest first. Read through Lua's `cjson` so
/// values with any content (newlines included) come back unambiguously.
fn entries(server: &RedisServer) -> Vec<Entry> {
    let text = server.cli(&[
        "EVAL",
        "return cjson.encode(redis.call('XRANGE', KEYS[1], '-', '+'))",
        "1",
        STREAM,
    ]);
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("XRANGE as JSON is not JSON ({err}): {text}"));
    // cjson encodes an empty Lua table (an empty stream) as `{}`.
    let Value::Array(items) = value else {
        assert_eq!(value, json!({}), "XRANGE reply");
        return Vec::new();
    };
    items
        .into_iter()
        .map(|item| {
            let flat: Vec<String> = item[1]
                .as_array()
                .unwrap_or_else(|| panic!("XRANGE entry without fields: {item}"))
                .iter()
                .map(|v| {
                    v.as_str()
                        .expect("field names and values are strings")
                        .to_owned()
                })
                .collect();
            let fields = flat
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            Entry { fields }
        })
        .collect()
}

fn xlen(server: &RedisServer) -> u64 {
    server
        .cli(&["XLEN", STREAM])
        .parse()
        .expect("XLEN answers a number")
}

/// `events emit ARGS...` with `REDIS_URL` pointing at `server`.
fn emit(server: &RedisServer, args: &[&str]) -> Outcome {
    Events::new()
        .env("REDIS_URL", server.url())
        .arg("emit")
        .args(args)
        .run()
}

/// The id printed alone on stdout by a successful emit.
fn printed_id(outcome: &Outcome) -> String {
    let id = outcome
        .stdout
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("stdout is not one line: {outcome:?}"));
    assert!(!id.contains('\n'), "stdout is not one line: {outcome:?}");
    assert_ulid(id);
    id.to_owned()
}

fn assert_ulid(id: &str) {
    assert_eq!(id.len(), 26, "a ULID has 26 characters: {id:?}");
    ulid::Ulid::from_string(id).unwrap_or_else(|err| panic!("{id:?} is not a ULID: {err}"));
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, and a real time.
fn assert_ts(ts: &str) {
    let shape_ok = ts.len() == 24
        && ts.ends_with('Z')
        && ts.as_bytes()[19] == b'.'
        && ts[20..23].bytes().all(|b| b.is_ascii_digit());
    assert!(shape_ok, "ts is not RFC 3339 UTC with milliseconds: {ts:?}");
    chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap_or_else(|err| panic!("ts {ts:?} is not RFC 3339: {err}"));
}

fn ts_ms(ts: &str) -> u64 {
    let ms = chrono::DateTime::parse_from_rfc3339(ts)
        .expect("RFC 3339")
        .timestamp_millis();
    u64::try_from(ms).expect("after 1970")
}

/// Asserts the emit was rejected as invalid input: exit 2, nothing on stdout,
/// one `events: error: …` on stderr containing every needle, nothing written.
fn assert_rejected(server: &RedisServer, outcome: Outcome, needles: &[&str]) {
    let outcome = outcome.code(2).stdout_is("");
    assert!(
        outcome.stderr.starts_with("events: error: "),
        "stderr should start with `events: error: `: {outcome:?}"
    );
    let outcome = needles
        .iter()
        .fold(outcome, |outcome, needle| outcome.stderr_has(needle));
    assert_eq!(xlen(server), 0, "nothing may be written: {outcome:?}");
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

#[test]
fn every_builtin_type_is_written_with_its_per_field_flags() {
    let server = RedisServer::start();
    let cases: [(&str, &[&str], Value); 8] = [
        (
            "user.signup",
            &["--email", "ada@example.com"],
            json!({"email": "ada@example.com"}),
        ),
        (
            "user.first_import",
            &[
                "--email",
                "ada@example.com",
                "--importer-name",
                "CRM contacts",
            ],
            json!({"email": "ada@example.com", "importer_name": "CRM contacts"}),
        ),
        (
            "subscription.started",
            &["--email", "ada@example.com", "--plan", "pro"],
            json!({"email": "ada@example.com", "plan": "pro"}),
        ),
        (
            "subscription.cancelled",
            &["--email", "ada@example.com", "--plan", "team"],
            json!({"email": "ada@example.com", "plan": "team"}),
        ),
        (
            "subscription.payment_failed",
            &["--email", "ada@example.com"],
            json!({"email": "ada@example.com"}),
        ),
        (
            "importer.created",
            &["--email", "ada@example.com", "--importer-name", "Leads"],
            json!({"email": "ada@example.com", "importer_name": "Leads"}),
        ),
        (
            "import.completed",
            &[
                "--email",
                "ada@example.com",
                "--importer-name",
                "CRM contacts",
                "--row-count",
                "1234567",
            ],
            json!({"email": "ada@example.com", "importer_name": "CRM contacts", "row_count": 1234567}),
        ),
        (
            "import.failed",
            &[
                "--email",
                "ada@example.com",
                "--importer-name",
                "CRM contacts",
                "--error",
                "row 12: invalid date",
            ],
            json!({"email": "ada@example.com", "importer_name": "CRM contacts", "error": "row 12: invalid date"}),
        ),
    ];
    for (written, (kind, flags, payload)) in cases.iter().enumerate() {
        let mut args = vec![*kind];
        args.extend_from_slice(flags);
        let outcome = emit(&server, &args).success();
        assert_eq!(
            outcome.stderr, "",
            "a successful emit is quiet: {outcome:?}"
        );
        let id = printed_id(&outcome);

        let entries = entries(&server);
        assert_eq!(entries.len(), written + 1, "one entry per emit");
        let entry = entries.last().expect("just written");
        entry.assert_wire_shape();
        assert_eq!(entry.get("type"), *kind);
        assert_eq!(entry.payload(), *payload, "payload of {kind}");
        assert_eq!(entry.get("id"), id, "the printed id is the entry's id");
        // The id is time-ordered: its timestamp is the event's ts.
        let ulid = ulid::Ulid::from_string(&id).expect("checked above");
        assert_eq!(ulid.timestamp_ms(), ts_ms(entry.get("ts")), "id {id} vs ts");
    }
}

#[test]
fn row_count_is_written_as_a_json_integer() {
    let server = RedisServer::start();
    emit(
        &server,
        &[
            "import.completed",
            "--email",
            "ada@example.com",
            "--importer-name",
            "CRM",
            "--row-count",
            "12",
        ],
    )
    .success();
    let entries = entries(&server);
    assert!(
        entries[0].get("payload").contains(r#""row_count":12"#),
        "{:?}",
        entries[0]
    );
    assert_eq!(entries[0].payload()["row_count"].as_u64(), Some(12));
}

#[test]
fn field_flag_values_are_typed_by_the_catalog() {
    let server = RedisServer::start();
    emit(
        &server,
        &[
            "import.completed",
            "--field",
            "email=ada@example.com",
            "-f",
            "importer_name=CRM",
            "--field",
            "row_count=12",
            // Not in the catalog: travels with the event, as text.
            "--field",
            "source=12",
        ],
    )
    .success();
    let entries = entries(&server);
    entries[0].assert_wire_shape();
    assert_eq!(
        entries[0].payload(),
        json!({"email": "ada@example.com", "importer_name": "CRM", "row_count": 12, "source": "12"})
    );
}

#[test]
fn json_object_supplies_fields_with_their_json_types() {
    let server = RedisServer::start();
    emit(
        &server,
        &[
            "import.completed",
            "--json",
            r#"{"email":"ada@example.com","importer_name":"CRM","row_count":7,"tags":["a"]}"#,
        ],
    )
    .success();
    assert_eq!(
        entries(&server)[0].payload(),
        json!({"email": "ada@example.com", "importer_name": "CRM", "row_count": 7, "tags": ["a"]})
    );
}

#[test]
fn field_flag_wins_over_per_field_flag_and_the_last_field_flag_wins() {
    let server = RedisServer::start();
    emit(
        &server,
        &[
            "user.first_import",
            "--email",
            "flag@example.com",
            "--importer-name",
            "from flag",
            "--field",
            "email=first@example.com",
            "--field",
            "email=last@example.com",
        ],
    )
    .success();
    assert_eq!(
        entries(&server)[0].payload(),
        json!({"email": "last@example.com", "importer_name": "from flag"})
    );
}

/// `events emit --help`: "Fields come from the per-field flags, `--field
/// KEY=VALUE` (typed by the catalog) and `--json OBJECT`, later ones winning."
#[test]
fn field_wins_over_per_field_flags_which_win_over_json_as_the_help_says() {
    let server = RedisServer::start();
    emit(
        &server,
        &[
            "user.first_import",
            "--email",
            "flag@example.com",
            "--field",
            "importer_name=from field",
            "--json",
            r#"{"email":"json@example.com","importer_name":"from json","extra":"kept"}"#,
        ],
    )
    .success();
    assert_eq!(
        entries(&server)[0].payload(),
        json!({"email": "flag@example.com", "importer_name": "from field", "extra": "kept"})
    );
}

#[test]
fn unknown_type_is_rejected_with_the_nearest_suggested() {
    let server = RedisServer::start();
    let outcome = emit(&server, &["user.sigup", "--email", "ada@example.com"]);
    assert_eq!(
        outcome.stderr,
        "events: error: unknown event type 'user.sigup'; did you mean 'user.signup'?\n"
    );
    assert_rejected(&server, outcome, &[]);
}

#[test]
fn unknown_type_far_from_every_known_one_has_no_suggestion() {
    let server = RedisServer::start();
    let outcome = emit(&server, &["zzz.zzz", "--email", "ada@example.com"]);
    assert_eq!(
        outcome.stderr,
        "events: error: unknown event type 'zzz.zzz'\n"
    );
    assert_rejected(&server, outcome, &[]);
}

#[test]
fn missing_field_is_rejected_naming_the_field_and_its_type() {
    let server = RedisServer::start();
    let outcome = emit(
        &server,
        &[
            "import.completed",
            "--email",
            "a@b",
            "--importer-name",
            "CRM",
        ],
    );
    assert_rejected(
        &server,
        outcome,
        &["import.completed", "'row_count'", "a non-negative integer"],
    );
}

#[test]
fn missing_string_field_is_rejected_naming_it() {
    let server = RedisServer::start();
    let outcome = emit(&server, &["user.signup"]);
    assert_rejected(&server, outcome, &["'email'", "a string"]);
}

#[test]
fn negative_row_count_is_rejected_as_not_non_negative() {
    let server = RedisServer::start();
    let outcome = emit(
        &server,
        &[
            "import.completed",
            "--email",
            "a@b",
            "--importer-name",
            "CRM",
            "--row-count=-5",
        ],
    );
    assert_rejected(
        &server,
        outcome,
        &["'row_count'", "a non-negative integer", "-5"],
    );
}

/// `--row-count -5` (value as the next argument, as an operator types it)
/// must reach the field check, not fail as an unknown option `-5`.
#[test]
fn negative_row_count_as_next_argument_is_rejected_naming_the_field() {
    let server = RedisServer::start();
    let outcome = emit(
        &server,
        &[
            "import.completed",
            "--email",
            "a@b",
            "--importer-name",
            "CRM",
            "--row-count",
            "-5",
        ],
    );
    assert_rejected(
        &server,
        outcome,
        &["'row_count'", "a non-negative integer", "-5"],
    );
}

#[test]
fn non_numeric_row_count_is_rejected_naming_the_field() {
    let server = RedisServer::start();
    let outcome = emit(
        &server,
        &[
            "import.completed",
            "--email",
            "a@b",
            "--importer-name",
            "CRM",
            "--row-count",
            "abc",
        ],
    );
    assert_rejected(
        &server,
        outcome,
        &["'row_count'", "a non-negative integer", "abc"],
    );
}

#[test]
fn ill_typed_json_field_is_rejected_naming_the_field() {
    let server = RedisServer::start();
    let outcome = emit(
        &server,
        &[
            "import.completed",
            "--json",
            r#"{"email":"a@b","importer_name":"CRM","row_count":"12"}"#,
        ],
    );
    assert_rejected(
        &server,
        outcome,
        &["'row_count'", "a non-negative integer", "a string"],
    );
}

#[test]
fn json_that_does_not_parse_is_rejected() {
    let server = RedisServer::start();
    let outcome = emit(&server, &["user.signup", "--json", "{email: a@b}"]);
    assert_rejected(&server, outcome, &["--json", "not valid JSON"]);
}

#[test]
fn json_that_is_not_an_object_is_rejected() {
    let server = RedisServer::start();
    let outcome = emit(&server, &["user.signup", "--json", r#"["a@b"]"#]);
    assert_rejected(&server, outcome, &["--json must be a JSON object"]);
}

#[test]
fn field_flag_without_equals_is_rejected() {
    let server = RedisServer::start();
    let outcome = emit(&server, &["user.signup", "--field", "email"]);
    assert_rejected(
        &server,
        outcome,
        &["--field expects KEY=VALUE", "\"email\""],
    );
}

#[test]
fn dry_run_prints_the_event_and_its_message_and_writes_nothing() {
    let server = RedisServer::start();
    let outcome = emit(
        &server,
        &[
            "import.completed",
            "--email",
            "ada@example.com",
            "--importer-name",
            "CRM",
            "--row-count",
            "1234",
            "--dry-run",
        ],
    )
    .success();
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "the event, then its message: {outcome:?}");
    let event: Value = serde_json::from_str(lines[0]).expect("first line is the event as JSON");
    let keys: Vec<&str> = event
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "id, type, ts, payload: {event}");
    assert_eq!(event["type"], "import.completed");
    assert_eq!(
        event["payload"],
        json!({"email": "ada@example.com", "importer_name": "CRM", "row_count": 1234})
    );
    assert_ulid(event["id"].as_str().expect("id is text"));
    assert_ts(event["ts"].as_str().expect("ts is text"));
    assert_eq!(lines[1], "Import: 1,234 rows by ada@example.com");
    assert_eq!(server.cli(&["EXISTS", STREAM]), "0", "nothing written");
}

#[test]
fn dry_run_of_invalid_input_is_still_rejected() {
    let server = RedisServer::start();
    let outcome = emit(&server, &["user.signup", "--dry-run"]);
    assert_rejected(&server, outcome, &["'email'"]);
}

#[test]
fn idempotency_key_reused_prints_the_first_id_and_writes_nothing() {
    let server = RedisServer::start();
    let first = printed_id(
        &emit(
            &server,
            &[
                "user.signup",
                "--email",
                "ada@example.com",
                "--idempotency-key",
                "signup-ada",
            ],
        )
        .success(),
    );
    // Even with a different payload: the key alone decides.
    let again = printed_id(
        &emit(
            &server,
            &[
                "user.signup",
                "--email",
                "bob@example.com",
                "--idempotency-key",
                "signup-ada",
            ],
        )
        .success(),
    );
    assert_eq!(again, first, "a re-run prints the first event's id");
    assert_eq!(xlen(&server), 1, "a re-run writes nothing");

    let other = printed_id(
        &emit(
            &server,
            &[
                "user.signup",
                "--email",
                "bob@example.com",
                "--idempotency-key",
                "signup-bob",
            ],
        )
        .success(),
    );
    assert_ne!(other, first);
    assert_eq!(xlen(&server), 2, "a different key writes");

    let entries = entries(&server);
    for entry in &entries {
        entry.assert_wire_shape();
    }
    assert_eq!(entries[0].get("id"), first);
    assert_eq!(entries[0].payload(), json!({"email": "ada@example.com"}));
    assert_eq!(entries[1].get("id"), other);
}

#[test]
fn idempotency_key_expires_after_about_24_hours() {
    let server = RedisServer::start();
    emit(
        &server,
        &[
            "user.signup",
            "--email",
            "ada@example.com",
            "--idempotency-key",
            "nightly-42",
        ],
    )
    .success();
    let pttl: i64 = server
        .cli(&["PTTL", "{events}:idem:nightly-42"])
        .parse()
        .expect("PTTL answers a number");
    let day_ms = 24 * 3600 * 1000;
    assert!(
        (day_ms - 60_000..=day_ms).contains(&pttl),
        "the key should expire in 24 h, PTTL is {pttl} ms"
    );
}

#[test]
fn disabled_emit_of_a_valid_event_succeeds_and_writes_nothing() {
    let server = RedisServer::start();
    Events::new()
        .env("REDIS_URL", server.url())
        .env("EVENTS_DISABLED", "1")
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    assert_eq!(server.cli(&["EXISTS", STREAM]), "0", "nothing written");
}

#[test]
fn disabled_emit_of_an_invalid_event_still_fails() {
    let server = RedisServer::start();
    let outcome = Events::new()
        .env("REDIS_URL", server.url())
        .env("EVENTS_DISABLED", "1")
        .args(["emit", "user.sigup", "--email", "ada@example.com"])
        .run();
    assert_rejected(&server, outcome, &["did you mean 'user.signup'?"]);
}

/// Self-hosters set `EVENTS_DISABLED=1` and run no queue at all.
#[test]
fn disabled_emit_never_connects_to_the_queue() {
    let port = closed_port();
    Events::new()
        .env("REDIS_URL", format!("redis://127.0.0.1:{port}"))
        .env("EVENTS_DISABLED", "1")
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success()
        .stderr_lacks("error");
}

#[test]
fn stdin_writes_good_lines_in_order_and_reports_bad_ones_by_line_number() {
    let server = RedisServer::start();
    let input = [
        r#"{"type":"user.signup","payload":{"email":"one@example.com"}}"#,
        r#"not json"#,
        "",
        r#"{"type":"user.sigup","payload":{"email":"a@b"}}"#,
        r#"{"type":"user.signup","payload":{}}"#,
        r#"{"type":"user.signup","ts":"yesterday","payload":{"email":"a@b"}}"#,
        r#"{"type":"user.signup","payload":{"email":"a@b"},"extra":1}"#,
        "   ",
        r#"{"id":"01JDX3M7Q7G5N8W4K2B9C1T6ZR","type":"import.completed","ts":"2026-11-27T10:00:00.5+01:00","payload":{"email":"two@example.com","importer_name":"CRM","row_count":3}}"#,
        r#"{"type":"subscription.started","payload":{"email":"three@example.com","plan":"pro"}}"#,
    ]
    .join("\n");
    let outcome = Events::new()
        .env("REDIS_URL", server.url())
        .args(["emit", "--stdin"])
        .stdin(input + "\n")
        .run()
        .code(2);

    let report = |line: usize, detail: &str| {
        let tag = format!("line {line}:");
        let found = outcome
            .stderr
            .lines()
            .find(|l| l.contains(&tag))
            .unwrap_or_else(|| panic!("stderr does not report {tag}: {outcome:?}"));
        assert!(
            found.contains(detail),
            "the report of line {line} should mention {detail:?}: {found}"
        );
    };
    report(2, "not a valid event");
    report(4, "unknown event type 'user.sigup'");
    report(5, "'email'");
    report(6, "yesterday");
    report(7, "extra");
    for blank in [3, 8] {
        let tag = format!("line {blank}:");
        assert!(
            !outcome.stderr.contains(&tag),
            "blank line {blank} is not an error: {outcome:?}"
        );
    }
    for good in [1, 9, 10] {
        let tag = format!("line {good}:");
        assert!(
            !outcome.stderr.contains(&tag),
            "line {good} is good: {outcome:?}"
        );
    }

    let entries = entries(&server);
    let kinds: Vec<&str> = entries.iter().map(|e| e.get("type")).collect();
    assert_eq!(
        kinds,
        ["user.signup", "import.completed", "subscription.started"],
        "the good lines, in input order"
    );
    for entry in &entries {
        entry.assert_wire_shape();
    }
    assert_eq!(entries[0].payload(), json!({"email": "one@example.com"}));
    // A given id is kept, a given ts normalised to UTC milliseconds.
    assert_eq!(entries[1].get("id"), "01JDX3M7Q7G5N8W4K2B9C1T6ZR");
    assert_eq!(entries[1].get("ts"), "2026-11-27T09:00:00.500Z");
    assert_eq!(
        entries[1].payload(),
        json!({"email": "two@example.com", "importer_name": "CRM", "row_count": 3})
    );
    assert_ne!(entries[0].get("id"), entries[2].get("id"));
}

#[test]
fn stdin_with_only_good_lines_succeeds() {
    let server = RedisServer::start();
    let input = (0..25)
        .map(|i| format!(r#"{{"type":"user.signup","payload":{{"email":"u{i}@example.com"}}}}"#))
        .collect::<Vec<_>>()
        .join("\n");
    Events::new()
        .env("REDIS_URL", server.url())
        .args(["emit", "--stdin"])
        .stdin(input)
        .run()
        .success();
    let emails: Vec<String> = entries(&server)
        .iter()
        .map(|e| e.payload()["email"].as_str().expect("text").to_owned())
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("u{i}@example.com")).collect();
    assert_eq!(emails, expected);
}

#[test]
fn unreachable_redis_fails_with_one_line_naming_the_address_not_the_password() {
    let port = closed_port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    let outcome = Events::new()
        .env("REDIS_URL", &url)
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .code(1)
        .stdout_is("")
        .stderr_has(&format!("127.0.0.1:{port}"))
        .stderr_lacks("hunter2");
    assert!(
        outcome.stderr.starts_with("events: error: ") && outcome.stderr.lines().count() == 1,
        "one `events: error: …` line: {outcome:?}"
    );

    // Nor in verbose diagnostics.
    Events::new()
        .env("REDIS_URL", &url)
        .args(["-v", "emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .code(1)
        .stdout_lacks("hunter2")
        .stderr_lacks("hunter2");
}

#[test]
fn redis_url_with_a_wrong_scheme_is_invalid_input() {
    Events::new()
        .env("REDIS_URL", "http://x")
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_has("events: error: ")
        .stderr_has("redis://");
    Events::new()
        .args(["--redis-url", "http://:hunter2@x", "emit", "user.signup"])
        .args(["--email", "ada@example.com"])
        .run()
        .code(2)
        .stderr_has("redis://")
        .stderr_lacks("hunter2");
}

#[test]
fn a_redis_url_that_does_not_parse_is_invalid_input_without_its_password() {
    Events::new()
        .env("REDIS_URL", "redis://user:hunter2@127.0.0.1:6379/not-a-db")
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .code(2)
        .stderr_has("events: error: the Redis URL redis://***@127.0.0.1:6379/*** is not valid: Invalid database number")
        .stderr_lacks("hunter2");
}

/// The library's emitter on `server`, configured as the command would be.
fn library_emitter(server: &RedisServer) -> events::Emitter {
    use events::config::Global;
    use events::setup::Setup;

    let global = Global {
        redis_url: Some(server.url()),
        ..Default::default()
    };
    let config = Setup::load_with(&global, &|_| None).expect("a valid configuration");
    events::Emitter::new(config).expect("an emitter")
}

#[test]
fn library_emitter_writes_the_same_entry_as_the_command() {
    let server = RedisServer::start();
    let mut emitter = library_emitter(&server);
    // `emit` should take the enum itself (DESIGN §7); it takes `AsRef<str>`, which
    // `EventType` does not implement yet, hence `as_str`.
    let id = emitter
        .emit(
            events::EventType::UserSignup,
            json!({"email": "ada@example.com"}),
        )
        .expect("emitted");

    let entries = entries(&server);
    assert_eq!(entries.len(), 1);
    entries[0].assert_wire_shape();
    assert_eq!(entries[0].get("type"), "user.signup");
    assert_eq!(entries[0].get("id"), id);
    assert_eq!(entries[0].payload(), json!({"email": "ada@example.com"}));
}

#[test]
fn library_emitter_rejects_an_invalid_event_without_writing() {
    let server = RedisServer::start();
    let mut emitter = library_emitter(&server);
    let err = emitter
        .emit("import.completed", json!({"email": "ada@example.com"}))
        .expect_err("importer_name and row_count are missing");
    assert!(matches!(err, events::Error::Invalid(_)), "{err:?}");
    assert_eq!(server.cli(&["EXISTS", STREAM]), "0");
}

#[test]
fn library_emitter_rejects_an_id_that_is_not_one_printable_word_without_writing() {
    use events::catalog::ValidationError;
    use events::event::BadToken;

    let server = RedisServer::start();
    let mut emitter = library_emitter(&server);
    let mut event = events::Event::new(
        "user.signup",
        json!({"email": "ada@example.com"})
            .as_object()
            .expect("an object")
            .clone(),
    );
    event.id = "evt-1\nevents: delivered user.signup FORGED".into();
    let expected = BadToken::BadChar {
        field: "id",
        shown: "\\u{a}".into(),
        at: 5,
    };
    for result in [
        emitter.emit_event(event.clone()),
        emitter.emit_idempotent("key-1", event.clone()),
        emitter
            .emit_batch(std::slice::from_ref(&event))
            .map(|()| String::new()),
    ] {
        match result {
            Err(events::Error::Invalid(ValidationError::Token(bad))) => assert_eq!(bad, expected),
            other => panic!("expected the id to be rejected, got {other:?}"),
        }
    }
    assert_eq!(server.cli(&["EXISTS", STREAM]), "0");
}

/// A Redis that accepts connections and never answers (a hung process, a
/// black-holed network): `EVENTS_EMIT_TIMEOUT_MS` bounds the emit, where
/// the connect timeout alone takes 3 s.
#[test]
fn a_silent_redis_fails_the_emit_within_events_emit_timeout_ms() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to stay silent on");
    let port = silent.local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let outcome = Events::new()
        .env("REDIS_URL", format!("redis://:hunter2@127.0.0.1:{port}"))
        .env("EVENTS_EMIT_TIMEOUT_MS", "150")
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .code(1)
        .stdout_is("")
        .stderr_has(&format!(
            "cannot reach Redis at redis://***@127.0.0.1:{port}: no answer within 150 ms"
        ))
        .stderr_lacks("hunter2");
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(2500),
        "took {took:?}: {outcome:?}"
    );
    drop(silent);
}

#[test]
fn an_emit_timeout_out_of_range_is_invalid_input_naming_the_variable() {
    Events::new()
        .env("EVENTS_EMIT_TIMEOUT_MS", "0")
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .code(2)
        .stderr_has(
            "EVENTS_EMIT_TIMEOUT_MS must be a whole number of milliseconds from 1 to 60000",
        );
}

/// On SQLite the same timeout bounds the wait for a file another process
/// holds locked, and the message says how long was waited.
#[test]
fn library_emitter_waits_its_timeout_for_a_locked_file_and_says_how_long() {
    use events::config::Global;
    use events::setup::Setup;

    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let global = Global {
        db: Some(db.clone()),
        ..Default::default()
    };
    let config = Setup::load_with(&global, &|_| None).expect("a valid configuration");
    let mut emitter = events::Emitter::new(config).expect("an emitter");
    emitter.set_timeout(std::time::Duration::from_millis(200));
    emitter
        .emit("user.signup", json!({"email": "first@example.com"}))
        .expect("the file is free");
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = emitter
        .emit("user.signup", json!({"email": "ada@example.com"}))
        .expect_err("the file is locked");
    assert_eq!(
        err.to_string(),
        format!(
            "{} stayed locked by another process for more than 200 ms",
            db.display()
        )
    );
    holder.execute_batch("ROLLBACK").unwrap();
    emitter
        .emit("user.signup", json!({"email": "ada@example.com"}))
        .expect("free again");
}

/// Lines are read on a thread of their own while batches are written: a
/// write that fails ends `emit --stdin` at once, even while its input is
/// still open and more may come (it used to, and must not start to wait).
#[test]
fn a_failed_write_ends_emit_stdin_without_waiting_for_the_rest_of_the_input() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let server = RedisServer::start();
    // Reads still work; every write is refused.
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(crate::support::cmd::bin())
        .args(["emit", "--stdin"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        .env("EVENTS_ALERTS", "0")
        .env("REDIS_URL", server.url())
        .current_dir(home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let line = "{\"type\":\"user.signup\",\"payload\":{\"email\":\"ada@example.com\"}}\n";
    // A full batch, so a write is tried; the pipe stays open after it.
    input.write_all(line.repeat(1500).as_bytes()).unwrap();
    input.flush().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("emit --stdin still runs 10 s after its first write failed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(input);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("events: error: 0 events were written before this failure"),
        "{stderr}"
    );
}
