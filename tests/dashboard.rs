//! Tests of `events dashboard` over HTTP: every page, the dead letters'
//! filters and cursor paging, the actions with and without the token and
//! the CSRF field, the Host check, the safety headers, hostile values shown
//! as text, no secret on any page, a slow client stalling nobody, and the
//! loopback rule. Every test runs on both backends.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::replay::{WEBHOOK_SECRET, status};
use crate::support::dashboard::{Dashboard, csrf_of, form, raw_request};
use crate::support::{Backend, Events, Reply, Sink, on_both_backends};

on_both_backends!(
    every_page_answers_with_the_safety_headers,
    dead_letters_are_filtered_and_paged_by_cursor,
    actions_need_the_token_then_the_csrf_field,
    the_login_form_sets_a_strict_http_only_cookie_that_acts,
    without_a_token_the_dashboard_is_read_only,
    a_foreign_host_is_refused,
    hostile_values_are_shown_as_text,
    no_secret_reaches_any_page,
    an_idle_or_slow_client_does_not_stall_the_others,
    a_destination_is_paused_and_resumed_from_the_overview,
    an_open_breaker_is_shown_on_the_overview,
);

const TOKEN: &str = "dashboard-token-3f9a1c";
/// In the webhook's URL path: a secret no page may show.
const URL_SECRET: &str = "s3cr3t-hook-path-77c1";
const HOSTILE_EMAIL: &str = "<img src=x onerror=alert(1)></script>\u{202e}evil@example.com";
const HOSTILE_ERROR: &str = "<script>alert('x')</script>";

/// The environment of a queue with a webhook and Slack, both refusing.
fn env(backend: &Backend, hook: &Sink, chat: &Sink) -> impl Fn() -> Events {
    hook.set_default(Reply::status(404, "not_found"));
    chat.set_default(Reply::status(404, HOSTILE_ERROR));
    let (hook, chat) = (format!("{}/{URL_SECRET}", hook.base_url()), chat.url());
    move || {
        backend
            .events()
            .env("EVENTS_WEBHOOK_URL", &hook)
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SLACK_WEBHOOK_URL", &chat)
    }
}

/// Emits `signups` signups and one subscription, and lets the worker give
/// up on each at both destinations; the subscription's id.
fn dead_letters(env: &impl Fn() -> Events, signups: usize) -> String {
    for n in 0..signups {
        env()
            .args([
                "emit",
                "user.signup",
                "--email",
                &format!("u{n}@example.com"),
            ])
            .run()
            .success();
    }
    let id = env()
        .args(["emit", "subscription.started", "--email", HOSTILE_EMAIL])
        .args(["--field", "plan=pro"])
        .run()
        .success()
        .stdout
        .trim()
        .to_owned();
    env().args(["work", "--burst"]).run().success();
    assert_eq!(status(env())["dead"]["total"], 2 * (signups + 1));
    id
}

fn with_token(events: Events) -> Events {
    events.env("EVENTS_DASHBOARD_TOKEN", TOKEN)
}

const BEARER: (&str, &str) = ("Authorization", "Bearer dashboard-token-3f9a1c");

/// Rows of the dead-letters table.
fn rows(page: &str) -> usize {
    page.split("<tbody>")
        .nth(1)
        .map_or(0, |body| body.matches("<tr>").count())
}

fn every_page_answers_with_the_safety_headers(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    let id = dead_letters(&env, 1);
    let dash = Dashboard::start(env());
    let pages = [
        "/".to_owned(),
        "/dead".to_owned(),
        format!("/events/{id}"),
        "/tail".to_owned(),
    ];
    for path in &pages {
        let answer = dash.get(path);
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(answer.header("X-Frame-Options"), Some("DENY"), "{path}");
        assert_eq!(answer.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(answer.header("Referrer-Policy"), Some("no-referrer"));
        let csp = answer.header("Content-Security-Policy").unwrap();
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(
            !answer.body.contains("<script>"),
            "no inline script: {path}"
        );
    }
    let overview = dash.get("/").body;
    assert!(
        overview.contains("<dd id=\"dead\"><a href=\"/dead\">4</a></dd>"),
        "{overview}"
    );
    assert!(
        overview.contains("data-destination=\"webhook\""),
        "{overview}"
    );
    assert!(
        overview.contains("HTTP 404 not_found"),
        "the latest error: {overview}"
    );
    let event = dash.get(&format!("/events/{id}")).body;
    assert!(event.contains("subscription.started"), "{event}");
    assert!(
        event.contains("&quot;plan&quot;: &quot;pro&quot;"),
        "the payload: {event}"
    );
    assert_eq!(event.matches("<td>dead</td>").count(), 2, "{event}");
    let tail = dash.get("/tail").body;
    assert!(tail.contains(&format!("/events/{id}")), "{tail}");
    assert_eq!(tail.matches("<td>user.signup</td>").count(), 1, "{tail}");
    let script = dash.get("/static/live.js");
    assert_eq!(
        script.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.body.contains("data-live"));
    assert_eq!(dash.get("/static/style.css").status, 200);
    assert_eq!(dash.get("/events/01NOSUCHEVENT0000000000000").status, 404);
    assert_eq!(dash.get("/nowhere").status, 404);
}

fn dead_letters_are_filtered_and_paged_by_cursor(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 29);
    let dash = Dashboard::start(env());
    let first = dash.get("/dead").body;
    assert_eq!(rows(&first), 50, "a page of 50 of the 60");
    let at = first
        .find("rel=\"next\" href=\"")
        .expect("a link to older letters")
        + 17;
    let next = first[at..first[at..].find('"').unwrap() + at].replace("&amp;", "&");
    assert!(next.starts_with("/dead?page="), "{next}");
    let older = dash.get(&next).body;
    assert_eq!(rows(&older), 10, "the other 10");
    assert!(!older.contains("rel=\"next\""), "the oldest page: {older}");
    let ids = |page: &str| -> Vec<String> {
        page.split("href=\"/events/")
            .skip(1)
            .map(|s| s[..s.find('"').unwrap()].to_owned())
            .collect()
    };
    let mut all = [ids(&first), ids(&older)].concat();
    assert_eq!(all.len(), 60);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 30, "each event's two letters, none twice");
    assert_eq!(rows(&dash.get("/dead?dest=slack").body), 30);
    assert_eq!(rows(&dash.get("/dead?type=sub*").body), 2);
    assert_eq!(rows(&dash.get("/dead?type=sub*&dest=webhook").body), 1);
    assert_eq!(rows(&dash.get("/dead?error=not_found").body), 30);
    assert_eq!(rows(&dash.get("/dead?error=nothing+like+it").body), 0);
    assert_eq!(dash.get("/dead?page=%3Cnot-a-key%3E").status, 400);
}

fn actions_need_the_token_then_the_csrf_field(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 1);
    let dash = Dashboard::start(with_token(env()));
    let page = dash.request("GET", "/dead", &[BEARER], "");
    assert_eq!(page.status, 200);
    let csrf = csrf_of(&page.body);
    let filter = [("dest", "slack"), ("type", "sub*"), ("error", "")];
    let body = form(&[&filter[..], &[("csrf", &csrf)]].concat());
    for path in ["/dead/replay", "/dead/purge", "/destinations/slack/pause"] {
        assert_eq!(dash.request("POST", path, &[], &body).status, 401, "{path}");
        let wrong = ("Authorization", "Bearer not-the-token");
        assert_eq!(
            dash.request("POST", path, &[wrong], &body).status,
            401,
            "{path}"
        );
        assert_eq!(
            dash.request("POST", path, &[BEARER], &form(&filter)).status,
            403
        );
        let forged = form(&[&filter[..], &[("csrf", "AAAA")]].concat());
        assert_eq!(dash.request("POST", path, &[BEARER], &forged).status, 403);
    }
    assert_eq!(status(env())["dead"]["total"], 4, "nothing was done");
    assert_eq!(status(env())["held"], serde_json::json!([]), "none paused");

    let replayed = dash.request("POST", "/dead/replay", &[BEARER], &body);
    assert_eq!(replayed.status, 303, "{replayed:?}");
    assert_eq!(
        replayed.header("Location"),
        Some("/dead?dest=slack&type=sub*&replayed=1")
    );
    let st = status(env());
    assert_eq!(
        (
            st["dead"]["total"].as_u64(),
            st["retries"]["scheduled"].as_u64()
        ),
        (Some(3), Some(1))
    );

    let purge = form(&[("dest", "webhook"), ("csrf", &csrf)]);
    let purged = dash.request("POST", "/dead/purge", &[BEARER], &purge);
    assert_eq!(purged.status, 303);
    assert_eq!(
        purged.header("Location"),
        Some("/dead?dest=webhook&purged=2")
    );
    assert_eq!(status(env())["dead"]["total"], 1);
    let back = dash.request("GET", "/dead?dest=webhook&purged=2", &[BEARER], "");
    assert!(
        back.body.contains("Purged 2 dead letters."),
        "{}",
        back.body
    );
}

fn the_login_form_sets_a_strict_http_only_cookie_that_acts(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 0);
    let dash = Dashboard::start(with_token(env()));
    let locked = dash.get("/");
    assert_eq!(locked.status, 401, "pages need the token too");
    assert!(locked.body.contains("action=\"/login\""), "{}", locked.body);
    assert!(!locked.body.contains("name=\"csrf\""));
    let wrong = dash.request("POST", "/login", &[], &form(&[("token", "guess")]));
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("Set-Cookie").is_none());
    let login = dash.request("POST", "/login", &[], &form(&[("token", TOKEN)]));
    assert_eq!(login.status, 303);
    let cookie = login.header("Set-Cookie").expect("a session cookie");
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is not the token: {cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let page = dash.request("GET", "/dead", &[("Cookie", session)], "");
    assert_eq!(page.status, 200);
    let csrf = csrf_of(&page.body);
    let body = form(&[("csrf", &csrf)]);
    let purged = dash.request("POST", "/dead/purge", &[("Cookie", session)], &body);
    assert_eq!(purged.status, 303, "{purged:?}");
    assert_eq!(status(env())["dead"]["total"], 0);
    let forged = (
        "Cookie",
        "events_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    assert_eq!(
        dash.request("POST", "/dead/purge", &[forged], &body).status,
        401
    );
}

fn without_a_token_the_dashboard_is_read_only(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 0);
    let dash = Dashboard::start(env());
    let page = dash.get("/dead");
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("method=\"post\""),
        "no action form: {}",
        page.body
    );
    assert!(page.body.contains("read-only"));
    let body = form(&[("csrf", "x")]);
    assert_eq!(
        dash.request("POST", "/dead/purge", &[BEARER], &body).status,
        401
    );
    assert_eq!(status(env())["dead"]["total"], 2);

    env()
        .args(["dashboard", "--addr", "0.0.0.0:0"])
        .run()
        .code(2)
        .stderr_has("events: error: --addr 0.0.0.0:")
        .stderr_has("is not a loopback address: without EVENTS_DASHBOARD_TOKEN");
    with_token(env())
        .args([
            "dashboard",
            "--addr",
            "127.0.0.1:0",
            "--public-url",
            "not a url",
        ])
        .run()
        .code(2)
        .stderr_has("--public-url \"not a url\" is not an http(s) URL");
}

fn a_foreign_host_is_refused(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 0);
    let dash = Dashboard::start_with(
        with_token(env()),
        &["--public-url", "https://events.example.com"],
    );
    let port = dash.addr.rsplit(':').next().unwrap();
    let bearer = ("Authorization", "Bearer dashboard-token-3f9a1c");
    for host in [
        "attacker.example",
        "events.example.com.attacker.example",
        "",
    ] {
        let answer = raw_request(&dash.addr, "GET", "/", &[("Host", host), bearer], "");
        assert_eq!(answer.status, 421, "Host {host:?}");
        let post = raw_request(
            &dash.addr,
            "POST",
            "/dead/purge",
            &[("Host", host), bearer],
            "csrf=x",
        );
        assert_eq!(post.status, 421, "Host {host:?}");
    }
    assert_eq!(
        raw_request(&dash.addr, "GET", "/", &[bearer], "").status,
        421,
        "no Host"
    );
    for host in [
        dash.addr.clone(),
        format!("localhost:{port}"),
        "events.example.com".into(),
    ] {
        let answer = raw_request(&dash.addr, "GET", "/", &[("Host", &host), bearer], "");
        assert_eq!(answer.status, 200, "Host {host:?}");
    }
    let login = dash.request("POST", "/login", &[], &form(&[("token", TOKEN)]));
    assert!(
        login.header("Set-Cookie").unwrap().contains("; Secure"),
        "behind https"
    );
    assert_eq!(status(env())["dead"]["total"], 2);
}

fn hostile_values_are_shown_as_text(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    let id = dead_letters(&env, 0);
    let dash = Dashboard::start(with_token(env()));
    for path in [
        "/".to_owned(),
        "/dead".into(),
        format!("/events/{id}"),
        "/tail".into(),
    ] {
        let page = dash.request("GET", &path, &[BEARER], "").body;
        assert!(!page.contains("<img"), "{path}: {page}");
        assert!(!page.contains("<script>alert"), "{path}: {page}");
        assert!(!page.contains("</script>\u{202e}"), "{path}");
        assert!(!page.contains('\u{202e}'), "no raw bidi override on {path}");
    }
    let dead = dash.request("GET", "/dead", &[BEARER], "").body;
    assert!(
        dead.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{dead}"
    );
    let event = dash
        .request("GET", &format!("/events/{id}"), &[BEARER], "")
        .body;
    assert!(
        event.contains("&lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;"),
        "{event}"
    );
    assert!(
        event.contains("\\u{202e}evil@example.com"),
        "the override, visible: {event}"
    );
    // A hostile filter is echoed as text too.
    let echoed = dash
        .request(
            "GET",
            "/dead?error=%22%3E%3Cimg%20src%3Dx%3E",
            &[BEARER],
            "",
        )
        .body;
    assert!(!echoed.contains("<img"), "{echoed}");
    assert!(
        echoed.contains("value=\"&quot;&gt;&lt;img src=x&gt;\""),
        "{echoed}"
    );
}

fn no_secret_reaches_any_page(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    let id = dead_letters(&env, 0);
    // A webhook that cannot be reached: errors that could quote its URL.
    let gone = format!("http://127.0.0.1:9/{URL_SECRET}");
    backend
        .events()
        .env("EVENTS_WEBHOOK_URL", &gone)
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .args(["emit", "user.signup", "--email", "c@example.com"])
        .run()
        .success();
    let env_gone = || {
        backend
            .events()
            .env("EVENTS_WEBHOOK_URL", &gone)
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
    };
    env_gone().args(["work", "--burst"]).run().success();
    let dash = Dashboard::start(with_token(env()));
    let mut seen = String::new();
    for path in [
        "/".to_owned(),
        "/dead".into(),
        format!("/events/{id}"),
        "/tail".into(),
    ] {
        let answer = dash.request("GET", &path, &[BEARER], "");
        assert_eq!(answer.status, 200, "{path}");
        seen.push_str(&format!("{:?}{}", answer.headers, answer.body));
    }
    for secret in [URL_SECRET, TOKEN, WEBHOOK_SECRET, "whsec_"] {
        assert!(!seen.contains(secret), "{secret} on a page:\n{seen}");
    }
    if let Backend::Redis { .. } = backend {
        assert!(!seen.contains("redis://:"), "no password");
    }
}

fn an_idle_or_slow_client_does_not_stall_the_others(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 0);
    let dash = Dashboard::start(with_token(env()));
    // Connections that never send, and one that sends half a form.
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&dash.addr).unwrap())
        .collect();
    let mut half = TcpStream::connect(&dash.addr).unwrap();
    let head = format!(
        "POST /dead/purge HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\ncsrf=",
        dash.addr
    );
    half.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let answer = dash.request("GET", "/", &[BEARER], "");
    assert_eq!(answer.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered within 4 s while others idle, where a serial server would wait 5 s each"
    );
    drop((idle, half));
}

fn a_destination_is_paused_and_resumed_from_the_overview(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 0);
    let dash = Dashboard::start(with_token(env()));
    let overview = dash.request("GET", "/", &[BEARER], "").body;
    assert!(
        overview.contains("action=\"/destinations/slack/pause\""),
        "a pause button: {overview}"
    );
    let csrf = form(&[("csrf", &csrf_of(&overview))]);
    let paused = dash.request("POST", "/destinations/slack/pause", &[BEARER], &csrf);
    assert_eq!(paused.status, 303, "{paused:?}");
    assert_eq!(paused.header("Location"), Some("/?paused=slack"));
    let held = &status(env())["held"];
    assert_eq!(held.as_array().map(Vec::len), Some(1), "{held}");
    assert_eq!(held[0]["destination"], "slack");
    assert_eq!(held[0]["until"], serde_json::Value::Null, "until resumed");
    assert!(
        held[0]["by"]
            .as_str()
            .unwrap()
            .starts_with("the dashboard on "),
        "{held}"
    );
    env()
        .args(["emit", "user.signup", "--email", "p@example.com"])
        .run()
        .success();
    env().args(["work", "--burst"]).run().success();
    let page = dash.request("GET", "/?paused=slack", &[BEARER], "").body;
    assert!(page.contains("Paused slack: workers stop"), "{page}");
    let row = &page[page.find("data-destination=\"slack\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(">paused</span>"), "{row}");
    assert!(
        row.contains("1 waiting · paused by the dashboard on "),
        "{row}"
    );
    assert!(
        row.contains("action=\"/destinations/slack/resume\""),
        "{row}"
    );

    let timed = form(&[("csrf", &csrf_of(&overview)), ("for", "2h")]);
    let again = dash.request("POST", "/destinations/webhook/pause", &[BEARER], &timed);
    assert_eq!(again.status, 303, "{again:?}");
    let until = status(env())["held"][1]["until"].clone();
    assert!(
        until.as_str().is_some_and(|u| u.starts_with("20")),
        "{until}"
    );
    let bad = form(&[("csrf", &csrf_of(&overview)), ("for", "soon")]);
    let refused = dash.request("POST", "/destinations/webhook/pause", &[BEARER], &bad);
    assert_eq!(refused.status, 400, "{refused:?}");
    let unknown = dash.request("POST", "/destinations/slak/pause", &[BEARER], &csrf);
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("did you mean 'slack'?"),
        "{unknown:?}"
    );

    for name in ["slack", "webhook"] {
        let path = format!("/destinations/{name}/resume");
        let resumed = dash.request("POST", &path, &[BEARER], &csrf);
        assert_eq!(resumed.status, 303, "{resumed:?}");
        assert_eq!(
            resumed.header("Location"),
            Some(&*format!("/?resumed={name}"))
        );
    }
    assert_eq!(status(env())["held"], serde_json::json!([]));
    let page = dash.request("GET", "/", &[BEARER], "").body;
    assert!(!page.contains(">paused</span>"), "{page}");
}

/// A destination whose breaker opened shows it on the overview, beside
/// what waits, and keeps its pause button (a pause is another hold).
fn an_open_breaker_is_shown_on_the_overview(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    hook.set_default(Reply::status(503, "down for maintenance"));
    chat.set_default(Reply::ok());
    for n in 0..12 {
        env()
            .args([
                "emit",
                "user.signup",
                "--email",
                &format!("b{n}@example.com"),
            ])
            .run()
            .success();
    }
    env().args(["work", "--burst"]).run().success();
    let dash = Dashboard::start(with_token(env()));
    let page = dash.request("GET", "/", &[BEARER], "").body;
    let row = &page[page.find("data-destination=\"webhook\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(">breaker open</span>"), "{row}");
    assert!(row.contains(" waiting · breaker open until "), "{row}");
    assert!(row.contains("HTTP 503"), "{row}");
    assert!(
        row.contains("action=\"/destinations/webhook/pause\""),
        "{row}"
    );
    let slack = &page[page.find("data-destination=\"slack\"").unwrap()..];
    let slack = &slack[..slack.find("</tr>").unwrap()];
    assert!(slack.contains(">ok</span>"), "{slack}");
}
