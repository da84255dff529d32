//! `GET /dead?dest=&type=&error=&page=`: the dead letters, newest first,
//! filtered by destination (exact), type (a glob, as `--type`) and error
//! (contained text), and paged by cursor: `page` is the key of the last
//! letter of the page before (see [`crate::queue::dead_page`] for why a
//! cursor and not a number). With a token, the replay and purge forms act
//! on every letter the filter selects.

use maud::{Markup, html};

use super::Dashboard;
use super::layout::{self, View, text};
use super::request::{Target, link, segment};
use crate::http_server::Answer;
use crate::queue::{DeadFilter, DeadPage, QueueError, dead_page};

/// Letters a page shows.
const PAGE: usize = 50;

/// The filter a page or an action was given.
pub struct Filter {
    pub dest: String,
    pub kind: String,
    pub error: String,
}

impl Filter {
    pub fn from(get: impl Fn(&str) -> String) -> Filter {
        Filter {
            dest: get("dest").trim().to_owned(),
            kind: get("type").trim().to_owned(),
            error: get("error"),
        }
    }

    /// The queue's filter, for letters dead-lettered before `before_ms`.
    pub fn dead_filter(&self, before_ms: Option<i64>) -> DeadFilter {
        let some = |v: &str| -> Vec<String> {
            (!v.is_empty()).then(|| v.to_owned()).into_iter().collect()
        };
        DeadFilter::new(before_ms, &some(&self.kind), &some(&self.dest)).with_error(&self.error)
    }

    /// The filter as query parameters.
    pub fn params(&self) -> [(&'static str, &str); 3] {
        [
            ("dest", &self.dest),
            ("type", &self.kind),
            ("error", &self.error),
        ]
    }

    fn is_empty(&self) -> bool {
        self.dest.is_empty() && self.kind.is_empty() && self.error.is_empty()
    }
}

/// Whether `cursor` has the shape of a dead letter's key (a row number, or
/// a Redis entry id).
fn is_cursor(cursor: &str) -> bool {
    let mut parts = cursor.splitn(2, '-');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && parts.next().is_none_or(|p| digits(Some(p)))
}

pub fn page(dashboard: &Dashboard, view: &View, target: &Target) -> Result<Answer, QueueError> {
    let filter = Filter::from(|name| target.get(name).to_owned());
    let cursor = Some(target.get("page")).filter(|c| !c.is_empty());
    if cursor.is_some_and(|c| !is_cursor(c)) {
        let mut answer = layout::not_found(view, "page is not a position in the dead letters");
        answer.status = 400;
        return Ok(answer);
    }
    let found = dashboard.with_queue(|q| dead_page(q, &filter.dead_filter(None), cursor, PAGE))?;
    let body = html! {
        h1 { "Dead letters" }
        (notice(target))
        (filter_form(&filter))
        section data-live="dead" { (letters(&found, &filter, cursor.is_some())) }
        @if let Some(csrf) = &view.csrf { (actions(&filter, csrf)) }
    };
    Ok(layout::page(view, "Dead letters", body))
}

/// What the action the viewer comes back from did.
fn notice(target: &Target) -> Markup {
    let count = |name| target.get(name).parse::<u64>().ok();
    html! {
        @if let Some(n) = count("replayed") { p.notice.good { "Replayed " (n) " events: the worker delivers them." } }
        @if let Some(n) = count("purged") { p.notice.good { "Purged " (n) " dead letters." } }
    }
}

fn filter_form(filter: &Filter) -> Markup {
    html! {
        form.filters method="get" action="/dead" {
            label { "Destination " input type="text" name="dest" value=(filter.dest); }
            label { "Type " input type="text" name="type" value=(filter.kind) placeholder="user.*"; }
            label { "Error contains " input type="text" name="error" value=(filter.error); }
            button type="submit" { "Filter" }
            @if !filter.is_empty() { a href="/dead" { "Clear" } }
        }
    }
}

fn letters(found: &DeadPage, filter: &Filter, paged: bool) -> Markup {
    html! {
        @if found.letters.is_empty() {
            p.empty { "No dead letters match" @if paged { " past this point" } "." }
        } @else {
            table.letters {
                thead { tr { th { "Dead at" } th { "Destination" } th { "Type" } th { "Event" } th.num { "Attempts" } th { "Error" } } }
                tbody { @for stored in &found.letters {
                    @let letter = &stored.letter;
                    tr {
                        td.time { (layout::time(letter.at_ms)) }
                        td { (text(&letter.dest)) }
                        @match &letter.event {
                            Ok(event) => {
                                td { (text(&event.kind)) }
                                td.id { a href={ "/events/" (segment(&event.id)) } { (text(&event.id)) } }
                            }
                            Err(raw) => {
                                td { span.state.bad { "poison" } }
                                td.raw { (text(&raw.chars().take(120).collect::<String>())) }
                            }
                        }
                        td.num { (letter.attempts) }
                        td.error { (text(&letter.error)) }
                    }
                } }
            }
        }
        p.pager {
            @if paged { a href=(link("/dead", &filter.params())) { "Newest" } " " }
            @if let Some(next) = &found.next {
                a rel="next" href=(link("/dead", &[filter.params().as_slice(), &[("page", next.as_str())]].concat())) { "Older →" }
            }
            " " small { "(" (found.scanned) " letters read for this page)" }
        }
    }
}

fn actions(filter: &Filter, csrf: &str) -> Markup {
    let what = if filter.is_empty() {
        "every dead letter"
    } else {
        "every dead letter this filter selects"
    };
    html! {
        section.actions {
            h2 { "Act on " (what) }
            form method="post" action="/dead/replay" {
                (hidden(filter, csrf))
                button type="submit" { "Replay" }
            }
            form method="post" action="/dead/purge" {
                (hidden(filter, csrf))
                button.danger type="submit" { "Purge for good" }
            }
        }
    }
}

fn hidden(filter: &Filter, csrf: &str) -> Markup {
    html! {
        input type="hidden" name="dest" value=(filter.dest);
        input type="hidden" name="type" value=(filter.kind);
        input type="hidden" name="error" value=(filter.error);
        input type="hidden" name="csrf" value=(csrf);
    }
}
