//! The dashboard in a real headless Chromium: every page renders its data
//! (read back from the DOM), the login form and the actions work as a
//! browser sends them (303s followed), hostile values stay text, the
//! Content-Security-Policy blocks inline script, and the live refresh shows
//! a new event without a reload. On Redis and SQLite (the HTTP tests in
//! `dashboard.rs` cover Postgres).

use std::time::Duration;

use crate::replay::{WEBHOOK_SECRET, status};
use crate::support::browser::{Chromium, Page};
use crate::support::dashboard::Dashboard;
use crate::support::{Backend, Events, Reply, Sink};

macro_rules! on_redis_and_sqlite {
    ($($name:ident),* $(,)?) => {
        mod redis { $(#[test] fn $name() { super::$name($crate::support::Backend::redis()) })* }
        mod sqlite { $(#[test] fn $name() { super::$name($crate::support::Backend::sqlite()) })* }
    };
}

on_redis_and_sqlite!(
    every_page_shows_its_data,
    signing_in_then_replaying_a_filtered_list_replays_exactly_those,
    a_destination_is_paused_and_resumed_from_the_overview,
    hostile_values_stay_text_and_inline_script_is_blocked,
    a_new_event_appears_on_the_tail_without_a_reload,
);

const TOKEN: &str = "browser-token-5d2e8a";
const HOSTILE_IMG: &str = "<img src=x onerror=\"document.title='pwned'\">";
const HOSTILE_SCRIPT: &str = "</script><script>document.title='pwned'</script>";
/// Within this the live refresh (every 3 s) shows what changed.
const LIVE: Duration = Duration::from_secs(10);

/// A queue with a webhook and Slack, both refusing; the environment.
fn env(backend: &Backend, hook: &Sink, chat: &Sink) -> impl Fn() -> Events {
    hook.set_default(Reply::status(404, "not_found"));
    chat.set_default(Reply::status(404, HOSTILE_SCRIPT));
    let (hook, chat) = (hook.url(), chat.url());
    move || {
        backend
            .events()
            .env("EVENTS_WEBHOOK_URL", &hook)
            .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SLACK_WEBHOOK_URL", &chat)
            .env("EVENTS_DASHBOARD_TOKEN", TOKEN)
    }
}

fn emit(env: &impl Fn() -> Events, kind: &str, email: &str, plan: Option<&str>) -> String {
    let mut events = env().args(["emit", kind, "--email", email]);
    if let Some(plan) = plan {
        events = events.args(["--field", &format!("plan={plan}")]);
    }
    events.run().success().stdout.trim().to_owned()
}

/// `signups` signups and one subscription (with a hostile plan), each
/// dead at both destinations; the subscription's id.
fn dead_letters(env: &impl Fn() -> Events, signups: usize) -> String {
    for n in 0..signups {
        emit(env, "user.signup", &format!("u{n}@example.com"), None);
    }
    let plan = format!("{HOSTILE_IMG}{HOSTILE_SCRIPT}");
    let id = emit(env, "subscription.started", "s@example.com", Some(&plan));
    env().args(["work", "--burst"]).run().success();
    assert_eq!(status(env())["dead"]["total"], 2 * (signups + 1));
    id
}

/// A browser signed in to `dash`, on its overview.
fn signed_in(chromium: &Chromium, dash: &Dashboard) -> Page {
    let page = chromium.open(&format!("http://{}/", dash.addr));
    assert_eq!(page.count("form[action='/login']"), 1, "the login form");
    assert_eq!(page.count("button[type=submit]"), 1, "no action before");
    page.fill("#token", TOKEN);
    page.submit("form.login button");
    assert_eq!(page.location(), "/");
    assert_eq!(page.title(), "Overview · events");
    page
}

fn every_page_shows_its_data(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    let id = dead_letters(&env, 2);
    let dash = Dashboard::start(env());
    let chromium = Chromium::start();
    let page = signed_in(&chromium, &dash);
    assert_eq!(page.text("#dead").as_deref(), Some("6"));
    let webhook = "tr[data-destination=webhook]";
    assert_eq!(
        page.text(&format!("{webhook} td:nth-child(3)")).unwrap(),
        "failing"
    );
    assert_eq!(
        page.text(&format!("{webhook} td:nth-child(7)")).unwrap(),
        "3"
    );
    let error = page.text(&format!("{webhook} td.error")).unwrap();
    assert!(error.starts_with("HTTP 404 not_found"), "{error}");

    page.go(&format!("http://{}/dead", dash.addr));
    assert_eq!(page.count("table.letters tbody tr"), 6);
    // Newest dead letter first; both of the subscription's are among them
    // (in whatever order the worker gave up on them).
    let types_of_id = page.eval(&format!(
        "[...document.querySelectorAll('table.letters tbody tr')]
            .filter(tr => tr.querySelector('td.id').textContent.trim() === '{id}')
            .map(tr => tr.querySelector('td:nth-child(3)').textContent.trim())"
    ));
    assert_eq!(
        types_of_id,
        serde_json::json!(["subscription.started", "subscription.started"])
    );

    page.go(&format!("http://{}/events/{id}", dash.addr));
    assert_eq!(page.text("h1").unwrap(), format!("Event {id}"));
    assert_eq!(page.text("dl.facts dd").unwrap(), "subscription.started");
    let payload = page.text("pre.payload").unwrap();
    assert!(
        payload.contains("\"email\": \"s@example.com\""),
        "{payload}"
    );
    assert_eq!(
        page.count("table.attempts"),
        2,
        "both destinations' attempts"
    );
    assert_eq!(page.count("h3 .state.bad"), 2, "dead at both");

    page.go(&format!("http://{}/tail", dash.addr));
    assert_eq!(page.count("table.tail tbody tr"), 3);
    let newest =
        page.eval("document.querySelector('table.tail tbody tr td.id a').getAttribute('href')");
    assert_eq!(newest, format!("/events/{id}").as_str());
}

fn signing_in_then_replaying_a_filtered_list_replays_exactly_those(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 3);
    let dash = Dashboard::start(env());
    let chromium = Chromium::start();
    let page = signed_in(&chromium, &dash);
    let cookies = page.tab.get_cookies().unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name == "events_session")
        .expect("a session cookie");
    assert!(session.http_only, "{session:?}");

    page.go(&format!("http://{}/dead", dash.addr));
    page.fill("form.filters input[name=dest]", "slack");
    page.fill("form.filters input[name=type]", "user.*");
    page.submit("form.filters button");
    assert_eq!(page.location(), "/dead?dest=slack&type=user.*&error=");
    assert_eq!(page.count("table.letters tbody tr"), 3);
    assert_eq!(
        page.count("form[action='/dead/replay'] input[name=csrf]"),
        1
    );
    page.submit("form[action='/dead/replay'] button");
    assert_eq!(page.location(), "/dead?dest=slack&type=user.*&replayed=3");
    let notice = page.text("p.notice").unwrap();
    assert_eq!(notice, "Replayed 3 events: the worker delivers them.");
    assert_eq!(page.count("table.letters tbody tr"), 0, "none left dead");
    let st = status(env());
    assert_eq!(st["dead"]["total"], 5, "the other 5 are still dead: {st}");
    assert_eq!(st["retries"]["scheduled"], 3, "{st}");
}

fn a_destination_is_paused_and_resumed_from_the_overview(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 0);
    let dash = Dashboard::start(env());
    let chromium = Chromium::start();
    let page = signed_in(&chromium, &dash);
    let slack = "tr[data-destination=slack]";
    page.submit(&format!("{slack} form button"));
    assert_eq!(page.location(), "/?paused=slack");
    let state = page.text(&format!("{slack} td:nth-child(3)")).unwrap();
    assert!(
        state.starts_with("paused 0 waiting · paused by the dashboard on "),
        "{state}"
    );
    assert_eq!(
        page.text(&format!("{slack} form button")).unwrap(),
        "Resume"
    );
    assert_eq!(status(env())["held"][0]["destination"], "slack");
    let webhook = page.text("tr[data-destination=webhook] form button");
    assert_eq!(webhook.as_deref(), Some("Pause"), "only slack is paused");

    page.submit(&format!("{slack} form button"));
    assert_eq!(page.location(), "/?resumed=slack");
    assert_eq!(
        page.text(&format!("{slack} td:nth-child(3)")).unwrap(),
        "failing"
    );
    assert_eq!(status(env())["held"], serde_json::json!([]));
}

fn hostile_values_stay_text_and_inline_script_is_blocked(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    let id = dead_letters(&env, 0);
    let dash = Dashboard::start(env());
    let chromium = Chromium::start();
    let page = signed_in(&chromium, &dash);
    for (path, title) in [
        ("/".to_owned(), "Overview"),
        ("/dead".into(), "Dead letters"),
        (format!("/events/{id}"), "Event"),
        ("/tail".into(), "Tail"),
    ] {
        page.go(&format!("http://{}{path}", dash.addr));
        assert_eq!(page.title(), format!("{title} · events"), "{path}");
        assert_eq!(page.count("img"), 0, "{path}");
        let scripts = page.eval("Array.from(document.scripts).map(s => s.getAttribute('src'))");
        assert_eq!(scripts, serde_json::json!(["/static/live.js"]), "{path}");
    }
    page.go(&format!("http://{}/events/{id}", dash.addr));
    let payload = page.text("pre.payload").unwrap();
    let quoted = HOSTILE_IMG.replace('"', "\\\"");
    assert!(
        payload.contains(&format!("{quoted}{HOSTILE_SCRIPT}")),
        "as text: {payload}"
    );
    page.go(&format!("http://{}/dead", dash.addr));
    let errors =
        page.eval("Array.from(document.querySelectorAll('td.error'), e => e.textContent).join()");
    assert!(
        errors.as_str().unwrap().contains(HOSTILE_SCRIPT),
        "as text: {errors}"
    );

    // The browser itself refuses a script written into the page.
    page.eval(
        "(window.__blocked = [], document.addEventListener('securitypolicyviolation', \
         e => window.__blocked.push(e.violatedDirective)), \
         document.body.append(Object.assign(document.createElement('script'), \
         {textContent: \"document.title = 'inline ran'\"})), 0)",
    );
    page.wait_until("window.__blocked.length > 0", Duration::from_secs(5));
    let directive = page.eval("window.__blocked[0]");
    assert!(
        directive.as_str().unwrap().starts_with("script-src"),
        "{directive}"
    );
    assert_eq!(page.title(), "Dead letters · events");
}

fn a_new_event_appears_on_the_tail_without_a_reload(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = env(&backend, &hook, &chat);
    dead_letters(&env, 0);
    let dash = Dashboard::start(env());
    let chromium = Chromium::start();
    let page = signed_in(&chromium, &dash);
    page.go(&format!("http://{}/tail", dash.addr));
    assert_eq!(page.count("table.tail tbody tr"), 1);
    page.wait_until("document.querySelector('p.live')", LIVE);
    page.eval("(window.__same_page = true, 0)");
    let id = emit(&env, "user.signup", "late@example.com", None);
    let link = format!("table.tail a[href='/events/{id}']");
    page.wait_until(&format!("document.querySelector(\"{link}\")"), LIVE);
    assert_eq!(
        page.eval("window.__same_page === true"),
        true,
        "not reloaded"
    );
    assert_eq!(page.count("table.tail tbody tr"), 2);
    assert_eq!(
        page.text("table.tail tbody tr td:nth-child(2)").unwrap(),
        "user.signup"
    );
}
