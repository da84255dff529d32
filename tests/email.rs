//! Email through a real SMTP server on 127.0.0.1 (`support::smtp`): one
//! plain-text mail per event, the subject its message or its own template,
//! a 4xx reply retried and a 5xx dead-lettered; plain SMTP refused unless
//! the server is on this host. The SMTP URL and its password never show.

use std::path::Path;

use crate::support::{Events, Outcome, RedisServer, SmtpServer, Step};

const PASSWORD: &str = "SmTpPaSsWoRd";

fn config(extra: &str) -> String {
    format!(
        r#"
[[destination]]
name = "mail"
kind = "email"
from = "Events <events@example.com>"
to = ["ops@example.com", "Ada Lovelace <ada@example.com>"]
{extra}
"#
    )
}

fn events(home: &Path, redis: &RedisServer, url: &str, extra: &str) -> Events {
    std::fs::write(home.join("events.toml"), config(extra)).unwrap();
    Events::new()
        .home(home)
        .env("REDIS_URL", redis.url())
        .env("EVENTS_RETRY_BASE_MS", "10")
        .env("EVENTS_HTTP_TIMEOUT_MS", "2000")
        .env("EVENTS_SMTP_URL", url)
}

fn no_password(out: &Outcome) {
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "the SMTP password was shown:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

fn emit(run: &dyn Fn() -> Events, email: &str) -> String {
    run()
        .args(["emit", "user.signup", "--email", email])
        .run()
        .success()
        .stdout
        .trim()
        .to_owned()
}

fn work(run: &dyn Fn() -> Events) -> Outcome {
    let out = run().args(["-v", "work", "--burst"]).run().success();
    no_password(&out);
    out
}

#[test]
fn an_event_arrives_as_one_plain_text_mail_to_every_recipient() {
    let redis = RedisServer::start();
    let smtp = SmtpServer::start();
    let home = tempfile::tempdir().unwrap();
    let url = smtp.url(&format!("events%40example.com:{PASSWORD}"));
    let run = || events(home.path(), &redis, &url, "");
    let id = emit(&run, "grace@example.com");
    work(&run).stderr_has("delivered user.signup");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{:?}", smtp.commands());
    let mail = &mails[0];
    assert_eq!(mail.from, "events@example.com");
    assert_eq!(mail.to, ["ops@example.com", "ada@example.com"]);
    assert_eq!(
        smtp.logins(),
        [format!("events@example.com:{PASSWORD}")],
        "the credentials of the URL, decoded"
    );
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("New signup: grace@example.com")
    );
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("text/plain")
    );
    let body = mail.body();
    assert!(
        body.starts_with("New signup: grace@example.com\r\n\r\n{"),
        "{body}"
    );
    assert!(body.contains(&format!("\"id\": \"{id}\"")), "{body}");
    assert!(body.contains("\"email\": \"grace@example.com\""), "{body}");

    // Neither status nor inspect shows the password, even with -v.
    for args in [
        vec!["-v", "status"],
        vec!["-v", "status", "--format", "json"],
        vec!["-v", "inspect", id.as_str(), "--format", "json"],
    ] {
        let out = run().args(args).run().success().stdout_has("mail");
        no_password(&out);
    }
}

#[test]
fn the_subject_template_is_the_destinations_own_and_checked_at_load() {
    let redis = RedisServer::start();
    let smtp = SmtpServer::start();
    let home = tempfile::tempdir().unwrap();
    let url = smtp.url("");
    let run = || {
        events(
            home.path(),
            &redis,
            &url,
            r#"subject = "[events] signup of {email}""#,
        )
    };
    emit(&run, "grace@example.com");
    work(&run).stderr_has("delivered user.signup");
    let mail = &smtp.mails()[0];
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("[events] signup of grace@example.com")
    );
    assert!(mail.body().starts_with("New signup: grace@example.com\r\n"));
    assert!(smtp.logins().is_empty());

    events(home.path(), &redis, &url, r#"subject = "{plan} plan""#)
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("events.toml:7: subject:")
        .stderr_has("plan");
}

#[test]
fn a_line_holding_only_a_dot_arrives_intact() {
    let redis = RedisServer::start();
    let smtp = SmtpServer::start();
    let home = tempfile::tempdir().unwrap();
    let url = smtp.url("");
    let extra = r#"template = "Signup\n.\n..{email}""#;
    let run = || events(home.path(), &redis, &url, extra);
    emit(&run, "ada@example.com");
    work(&run).stderr_has("delivered user.signup");
    let mail = &smtp.mails()[0];
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Signup . ..ada@example.com")
    );
    assert!(
        mail.body()
            .starts_with("Signup\r\n.\r\n..ada@example.com\r\n\r\n"),
        "{}",
        mail.body()
    );
}

#[test]
fn a_4xx_reply_is_retried_and_a_5xx_reply_dead_letters_at_once() {
    let redis = RedisServer::start();
    let smtp = SmtpServer::start();
    smtp.fail(Step::RcptTo, "451 4.3.0 mailbox temporarily unavailable");
    smtp.fail(Step::Greeting, "421 4.3.2 too busy");
    let home = tempfile::tempdir().unwrap();
    let url = smtp.url(&format!("u:{PASSWORD}"));
    let run = || events(home.path(), &redis, &url, "");
    emit(&run, "ada@example.com");
    work(&run)
        .stderr_has("SMTP 421 4.3.2 too busy (attempt 1 of")
        .stderr_has("SMTP 451 4.3.0 mailbox temporarily unavailable (attempt 2 of")
        .stderr_has("delivered user.signup");
    assert_eq!(smtp.mails().len(), 1);
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "0");

    smtp.fail(Step::DataEnd, "554 5.6.0 message refused");
    emit(&run, "bob@example.com");
    work(&run)
        .stderr_has("dead: user.signup")
        .stderr_has("SMTP 554 5.6.0 message refused (after 1 attempt)");
    assert_eq!(smtp.mails().len(), 1);
    assert_eq!(redis.cli(&["XLEN", "{events}:dead"]), "1");
}

#[test]
fn a_server_that_cannot_be_reached_is_retried() {
    let redis = RedisServer::start();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let home = tempfile::tempdir().unwrap();
    let url = format!("smtp://u:{PASSWORD}@127.0.0.1:{port}");
    let run = || events(home.path(), &redis, &url, "");
    emit(&run, "ada@example.com");
    let out = run()
        .env("EVENTS_MAX_ATTEMPTS", "2")
        .args(["-v", "work", "--burst"])
        .run()
        .success()
        .stderr_has("(attempt 1 of 2)")
        .stderr_has("dead: user.signup");
    no_password(&out);
}

#[test]
fn plain_smtp_to_another_host_is_refused_without_showing_the_url() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let url = format!("smtp://u:{PASSWORD}@smtp.example.com:25");
    let out = events(home.path(), &redis, &url, "")
        .args(["-v", "work", "--burst"])
        .run()
        .code(2)
        .stderr_has("events: error:")
        .stderr_has("smtp_url_env: the SMTP URL in EVENTS_SMTP_URL would send mail unencrypted to smtp.example.com");
    no_password(&out);
    // Nor is a recipient that is not an address.
    let url = "smtps://u:p@smtp.example.com".to_owned();
    std::fs::write(
        home.path().join("events.toml"),
        config("").replace("ops@example.com", "ops"),
    )
    .unwrap();
    Events::new()
        .home(home.path())
        .env("REDIS_URL", redis.url())
        .env("EVENTS_SMTP_URL", url)
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("to: \"ops\" is not an email address");
}

/// `smtps://` to a server that does not speak TLS: the handshake fails, is
/// retried, and the password never crosses the unencrypted connection.
#[test]
fn smtps_never_sends_the_password_without_tls() {
    let redis = RedisServer::start();
    let smtp = SmtpServer::start();
    let home = tempfile::tempdir().unwrap();
    let url = smtp
        .url(&format!("u:{PASSWORD}"))
        .replace("smtp://", "smtps://");
    let run = || events(home.path(), &redis, &url, "");
    emit(&run, "ada@example.com");
    run()
        .env("EVENTS_MAX_ATTEMPTS", "2")
        .args(["-v", "work", "--burst"])
        .run()
        .success()
        .stderr_has("(attempt 1 of 2)")
        .stderr_has("dead: user.signup");
    assert!(smtp.logins().is_empty());
    assert!(smtp.mails().is_empty());
}

/// A server that accepts the connection and never greets is given up on
/// after the HTTP timeout, and retried.
#[test]
fn a_server_that_never_answers_times_out() {
    let redis = RedisServer::start();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let home = tempfile::tempdir().unwrap();
    let url = format!("smtp://u:{PASSWORD}@127.0.0.1:{port}");
    let run = || events(home.path(), &redis, &url, "");
    emit(&run, "ada@example.com");
    let started = std::time::Instant::now();
    let out = run()
        .env("EVENTS_MAX_ATTEMPTS", "1")
        .env("EVENTS_HTTP_TIMEOUT_MS", "500")
        .args(["-v", "work", "--burst"])
        .run()
        .success()
        .stderr_has("SMTP timed out")
        .stderr_has("dead: user.signup");
    no_password(&out);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    drop(silent);
}

#[test]
fn a_missing_sender_or_recipient_or_a_key_of_another_kind_is_a_config_error_naming_the_line() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let url = "smtps://u:p@smtp.example.com";
    let refused = |config: String, expected: &str| {
        std::fs::write(home.path().join("events.toml"), config).unwrap();
        Events::new()
            .home(home.path())
            .env("REDIS_URL", redis.url())
            .env("EVENTS_SMTP_URL", url)
            .args(["work", "--burst"])
            .run()
            .code(2)
            .stderr_has(expected);
    };
    refused(
        config("").replace("from = \"Events <events@example.com>\"\n", ""),
        "events.toml:4: from: destination \"mail\" needs the address its mail comes from",
    );
    refused(
        config("").replace(
            "[\"ops@example.com\", \"Ada Lovelace <ada@example.com>\"]",
            "[]",
        ),
        "events.toml:6: to: destination \"mail\" needs at least one recipient",
    );
    refused(
        config("severity = \"critical\""),
        "events.toml:7: severity: only pagerduty destinations take severity; \"mail\" is a email destination",
    );
    std::fs::write(home.path().join("events.toml"), config("")).unwrap();
    let out = Events::new()
        .home(home.path())
        .env("REDIS_URL", redis.url())
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has("events.toml:4: smtp_url_env:")
        .stderr_has("EVENTS_SMTP_URL, which is not set");
    assert!(!out.stderr.contains("smtps://"));
}
