//! `events dashboard`: the on-call view in a browser (DESIGN §18), over the
//! same queue and the same library calls as every other command, served by
//! the crate's small bounded HTTP server ([`crate::http_server`]).
//!
//! Safe by construction: every page is built with `maud`, which escapes
//! every value, and every text that came from outside (payloads, types,
//! receivers' error texts) goes through [`text`] first, so control
//! characters and bidi overrides show as escapes; every answer carries a
//! `Content-Security-Policy` without inline script, `X-Frame-Options: DENY`,
//! `nosniff` and `no-referrer`; a request whose `Host` is not an address
//! of this server is refused (421), against DNS rebinding; and no page shows
//! a destination's target or any secret, only names, kinds and counts.
//!
//! Routes: `GET /`, `GET /dead`, `GET /events/{id}`, `GET /tail`,
//! `GET|POST /login`, `POST /dead/replay`, `POST /dead/purge`,
//! `POST /destinations/{name}/pause|resume`, `GET /static/*`. With a token
//! ([`auth`]) every page but the login form and the static files needs it.

mod actions;
mod auth;
mod dead;
mod event;
mod layout;
mod overview;
mod pause;
mod request;
mod tail;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::http_server::{self, Answer, Request};
use crate::queue::{Queue, QueueError, Tally};
use crate::setup::Setup;

pub use auth::{Access, AccessError};
use request::Target;

/// Queue connections kept between requests; more are opened while busy.
const POOL: usize = 8;

/// The dashboard's state, shared by every request.
pub struct Dashboard {
    setup: Setup,
    access: Access,
    pool: Mutex<Vec<Box<dyn Queue>>>,
    /// The running totals at the previous overview, for deliveries a second.
    previous: Mutex<Option<(Instant, BTreeMap<String, Tally>)>>,
}

impl Dashboard {
    pub fn new(setup: Setup, access: Access) -> Dashboard {
        Dashboard {
            setup,
            access,
            pool: Mutex::new(Vec::new()),
            previous: Mutex::new(None),
        }
    }

    /// Serves `listener` from threads that live as long as the process.
    pub fn start(self, listener: TcpListener) -> std::io::Result<()> {
        let dashboard = Arc::new(self);
        let handler = move |request: &Request| dashboard.answer(request);
        http_server::serve(listener, "dashboard", Arc::new(handler))
    }

    /// Runs `read` over a queue connection from the pool (opening one when
    /// none is free); the connection goes back unless the queue failed.
    fn with_queue<T>(
        &self,
        read: impl FnOnce(&mut dyn Queue) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut queue = match pooled {
            Some(queue) => queue,
            None => self.setup.open_queue()?,
        };
        let result = read(queue.as_mut());
        if result.is_ok() {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOL {
                pool.push(queue);
            }
        }
        result
    }

    /// Every answer, with the headers that keep a page safe.
    fn answer(&self, request: &Request) -> Answer {
        let mut answer = self.route(request);
        answer.headers.extend(layout::safety_headers());
        answer
    }

    fn route(&self, request: &Request) -> Answer {
        if !self.access.host_allowed(request) {
            return Answer::plain(
                421,
                "this server does not answer for that Host: open it at the address it listens on, or set --public-url\n",
            );
        }
        let target = Target::parse(&request.path);
        let method = match request.method.as_str() {
            "HEAD" => "GET",
            method => method,
        };
        match (method, target.path.as_str()) {
            ("GET", "/static/live.js") => layout::script(),
            ("GET", "/static/style.css") => layout::stylesheet(),
            ("GET", "/login") => auth::login_page(&self.access, None),
            ("POST", "/login") => auth::login(&self.access, request),
            ("POST", "/logout") => auth::logout(&self.access),
            ("GET", path) => self.page(request, path, &target),
            ("POST", path) => actions::act(self, request, path),
            _ => Answer::plain(405, "only GET and POST are served\n"),
        }
    }

    /// A page, for whoever may read it.
    fn page(&self, request: &Request, path: &str, target: &Target) -> Answer {
        if !self.access.may_read(request) {
            return auth::login_page(&self.access, Some("Sign in with the dashboard token."));
        }
        let view = layout::View::new(self.access.csrf(), self.access.has_token(), &self.setup);
        let page = match path {
            "/" => overview::page(self, &view, target),
            "/dead" => dead::page(self, &view, target),
            "/tail" => tail::page(self, &view),
            _ => match path.strip_prefix("/events/") {
                Some(id) if !id.is_empty() && !id.contains('/') => {
                    event::page(self, &view, &request::decode(id))
                }
                _ => return layout::not_found(&view, "no such page"),
            },
        };
        page.unwrap_or_else(|e| layout::queue_failed(&view, &e))
    }
}
