//! Tests of dead-letter removal: `purge --dead` with its filters, its
//! confirmation and `--dry-run`, and the worker's trim to
//! `EVENTS_DEAD_RETENTION`. Every test runs on both backends, and checks
//! that `status` still counts exactly the letters left.

use serde_json::json;

use crate::replay::{WEBHOOK_SECRET, status};
use crate::support::{Backend, Events, Reply, Sink, on_both_backends};

on_both_backends!(
    purge_removes_only_the_letters_the_filters_select,
    purge_needs_yes_off_a_terminal_and_dry_run_only_counts,
    the_worker_removes_dead_letters_older_than_the_retention,
);

/// Two events, each dead at both a webhook and Slack: four letters.
fn four_dead_letters(backend: &Backend, hook: &Sink, chat: &Sink) -> impl Fn() -> Events {
    hook.set_default(Reply::status(404, "not_found"));
    chat.set_default(Reply::status(404, "channel_not_found"));
    let env = {
        let (hook, chat) = (hook.url(), chat.url());
        move || {
            backend
                .events()
                .env("EVENTS_WEBHOOK_URL", &hook)
                .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
                .env("SLACK_WEBHOOK_URL", &chat)
        }
    };
    env()
        .args(["emit", "user.signup", "--email", "ada@example.com"])
        .run()
        .success();
    env()
        .args(["emit", "subscription.started", "--email", "bob@example.com"])
        .args(["--field", "plan=pro"])
        .run()
        .success();
    env().args(["work", "--burst"]).run().success();
    assert_eq!(status(env())["dead"]["total"], 4);
    env
}

fn purge_removes_only_the_letters_the_filters_select(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = four_dead_letters(&backend, &hook, &chat);

    env()
        .args([
            "purge", "--dead", "--type", "sub*", "--dest", "slack", "--yes",
        ])
        .run()
        .success()
        .stderr_has("removed 1 dead letters");
    let st = status(env());
    assert_eq!(st["dead"]["total"], 3, "{st:#}");
    assert_eq!(
        st["dead"]["by_destination"],
        json!([
            {"destination": "webhook", "error": "HTTP 404 not_found", "count": 2},
            {"destination": "slack", "error": "HTTP 404 channel_not_found", "count": 1},
        ])
    );

    // Letters written a moment ago are not from before an hour ago.
    env()
        .args(["purge", "--dead", "--before", "1h", "--yes"])
        .run()
        .success()
        .stderr_has("no dead letters match: nothing to remove");
    env()
        .args([
            "purge", "--dead", "--dest", "webhook", "--dest", "gone", "-y",
        ])
        .run()
        .success()
        .stderr_has("removed 2 dead letters");
    // The one left is the signup's, at Slack: replay finds nothing else.
    let out = env()
        .args(["replay", "--dead", "--dry-run"])
        .run()
        .success();
    let replayed = out.stdout_json_lines();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0]["type"], "user.signup");
    out.stderr_has("would replay 1 events (1 deliveries)");

    env()
        .args(["purge", "--dead", "--yes"])
        .run()
        .success()
        .stderr_has("removed 1 dead letters");
    let st = status(env());
    assert_eq!(st["dead"]["total"], 0, "{st:#}");
    assert_eq!(st["dead"]["by_destination"], json!([]), "{st:#}");
}

fn purge_needs_yes_off_a_terminal_and_dry_run_only_counts(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = four_dead_letters(&backend, &hook, &chat);

    env()
        .args(["purge", "--dead", "--type", "user.*", "--dry-run"])
        .run()
        .success()
        .stderr_has("would remove 2 dead letters");
    env()
        .args(["purge", "--dead"])
        .run()
        .code(2)
        .stderr_has("this would remove 4 dead letters for good; pass --yes to do it");
    assert_eq!(status(env())["dead"]["total"], 4, "nothing was removed");

    env()
        .args(["purge", "--dead", "--before", "yesterday-ish", "--yes"])
        .run()
        .code(2)
        .stderr_has("--before \"yesterday-ish\" is neither an RFC 3339 time");
    env()
        .args(["purge", "--type", "user.*"])
        .run()
        .code(2)
        .stderr_has("--dead");
    assert_eq!(status(env())["dead"]["total"], 4, "nothing was removed");
}

fn the_worker_removes_dead_letters_older_than_the_retention(backend: Backend) {
    let (hook, chat) = (Sink::start(), Sink::start());
    let env = four_dead_letters(&backend, &hook, &chat);

    // The default retention (30 days) keeps them.
    env()
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_lacks("dead letters older");
    assert_eq!(status(env())["dead"]["total"], 4);

    // A worker started after they died, with no retention at all, removes
    // every one of them when it trims.
    env()
        .env("EVENTS_DEAD_RETENTION", "0s")
        .args(["work", "--burst"])
        .run()
        .success()
        .stderr_has("removed 4 dead letters older than EVENTS_DEAD_RETENTION");
    let st = status(env());
    assert_eq!(st["dead"]["total"], 0, "{st:#}");
    assert_eq!(st["dead"]["by_destination"], json!([]), "{st:#}");
}
