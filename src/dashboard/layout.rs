//! The frame every page shares, the static files, and the answers that are
//! not pages (redirects, errors). Pages work without the script; it only
//! refreshes the parts marked `data-live` (no `<meta http-equiv=refresh>`:
//! it would reload over a half-typed filter and lose the scroll position).

use maud::{DOCTYPE, Markup, html};

use crate::http_server::Answer;
use crate::queue::QueueError;
use crate::sanitize;
use crate::setup::Setup;

const SCRIPT: &str = include_str!("static/live.js");
const STYLE: &str = include_str!("static/style.css");

/// The policy every answer carries: scripts, styles and requests from this
/// server only, never inline; no framing, no plugins, forms post here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn safety_headers() -> [(&'static str, String); 5] {
    [
        ("Content-Security-Policy", CSP.to_owned()),
        ("X-Frame-Options", "DENY".to_owned()),
        ("X-Content-Type-Options", "nosniff".to_owned()),
        ("Referrer-Policy", "no-referrer".to_owned()),
        ("Cache-Control", "no-store".to_owned()),
    ]
}

/// What every page of one request knows: whether actions are offered (and
/// their CSRF token) and which backend it shows.
pub struct View {
    pub csrf: Option<String>,
    pub backend: &'static str,
    pub signed_in: bool,
}

impl View {
    /// For a request that may act with `csrf` (`None`: read-only), on a
    /// dashboard with a token or not (`signed_in`), over `setup`'s queue.
    pub fn new(csrf: Option<String>, signed_in: bool, setup: &Setup) -> View {
        View {
            csrf,
            backend: setup.backend().kind_name(),
            signed_in,
        }
    }
}

/// A text that came from outside, safe to show: control characters and
/// bidi overrides as visible escapes (maud escapes the markup).
pub fn text(value: &str) -> String {
    sanitize::escape(value).into_owned()
}

/// A time in ms since the epoch, as RFC 3339.
pub fn time(ms: i64) -> String {
    crate::event::format_ts_ms(ms)
}

/// A page in the frame, 200.
pub fn page(view: &View, title: &str, body: Markup) -> Answer {
    let nav = html! {
        nav {
            a.brand href="/" { "events" }
            a href="/" { "Overview" }
            a href="/dead" { "Dead letters" }
            a href="/tail" { "Tail" }
            span.backend { "backend: " (view.backend) }
            @if view.csrf.is_none() { span.mode { "read-only" } }
            @if view.signed_in {
                form.logout method="post" action="/logout" { button type="submit" { "Sign out" } }
            }
        }
    };
    html_answer(200, title, html! { (nav) main { (body) } })
}

/// A page without the navigation (the login form).
pub fn bare(status: u16, title: &str, body: Markup) -> Answer {
    html_answer(status, title, html! { main.narrow { (body) } })
}

fn html_answer(status: u16, title: &str, content: Markup) -> Answer {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · events" }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/live.js" defer {}
            }
            body { (content) }
        }
    };
    Answer {
        status,
        content_type: "text/html; charset=utf-8",
        body: doc.into_string(),
        headers: Vec::new(),
    }
}

/// `303 See Other` to `location` (a path of this server).
pub fn see_other(location: &str) -> Answer {
    let mut answer = Answer::plain(303, format!("see {location}\n"));
    answer.headers.push(("Location", location.to_owned()));
    answer
}

pub fn not_found(view: &View, what: &str) -> Answer {
    let mut answer = page(
        view,
        "Not found",
        html! { h1 { "Not found" } p { (text(what)) } },
    );
    answer.status = 404;
    answer
}

/// The queue did not answer: said on the page, 503.
pub fn queue_failed(view: &View, error: &QueueError) -> Answer {
    let body = html! {
        h1 { "The queue does not answer" }
        p.bad { (text(&error.to_string())) }
        p { a href="" { "Try again" } }
    };
    let mut answer = page(view, "Queue unavailable", body);
    answer.status = 503;
    answer
}

pub fn script() -> Answer {
    Answer {
        status: 200,
        content_type: "text/javascript; charset=utf-8",
        body: SCRIPT.to_owned(),
        headers: Vec::new(),
    }
}

pub fn stylesheet() -> Answer {
    Answer {
        status: 200,
        content_type: "text/css; charset=utf-8",
        body: STYLE.to_owned(),
        headers: Vec::new(),
    }
}
