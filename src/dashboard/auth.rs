//! Who may do what, and from where.
//!
//! - Without `EVENTS_DASHBOARD_TOKEN` the dashboard is read-only and listens
//!   only on loopback: anyone on the machine may read, nobody may act.
//! - With a token, every page and action needs it: `Authorization: Bearer
//!   TOKEN`, or the session cookie the login form sets (`HttpOnly`,
//!   `SameSite=Strict`, `Secure` behind an `https` `--public-url`), whose
//!   value is `HMAC-SHA256(token, "events-dashboard session")`, so the token
//!   itself is never stored in the browser.
//! - An action also needs the CSRF token in the form field `csrf`:
//!   `HMAC-SHA256(token, "events-dashboard csrf")`, base64url. It is
//!   derived, so it is the same for every page and server restart, and only
//!   someone who holds the token (or a page rendered for them) has it.
//! - Every comparison is in constant time (`Mac::verify_slice`).
//! - A request's `Host` must name this server: the address it was reached
//!   at, `localhost` on a loopback bind, or `--public-url`'s host.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use maud::html;
use sha2::Sha256;

use super::layout;
use super::request;
use crate::http_server::{Answer, Request};
use crate::secret::Secret;

const SESSION: &[u8] = b"events-dashboard session";
const CSRF: &[u8] = b"events-dashboard csrf";
const COOKIE: &str = "events_session";

/// Why the dashboard cannot serve as asked: invalid input (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "--addr {0} is not a loopback address: without EVENTS_DASHBOARD_TOKEN the dashboard \
         serves only this machine (127.0.0.1 or [::1]); set a token to serve it beyond"
    )]
    NotLoopback(SocketAddr),
    #[error("--public-url {0:?} is not an http(s) URL with a host")]
    BadPublicUrl(String),
}

/// The token, and the hosts requests may name.
pub struct Access {
    token: Option<Secret>,
    hosts: Vec<String>,
    secure: bool,
}

impl Access {
    /// The access rules of a dashboard listening on `bound`.
    pub fn new(
        token: Option<Secret>,
        bound: SocketAddr,
        public_url: Option<&str>,
    ) -> Result<Access, AccessError> {
        if token.is_none() && !bound.ip().is_loopback() {
            return Err(AccessError::NotLoopback(bound));
        }
        let mut hosts = vec![bound.to_string()];
        if bound.ip().is_loopback() {
            hosts.push(format!("localhost:{}", bound.port()));
        }
        let mut secure = false;
        if let Some(text) = public_url.filter(|u| !u.is_empty()) {
            let bad = || AccessError::BadPublicUrl(text.to_owned());
            let url = url::Url::parse(text).map_err(|_| bad())?;
            let host = url
                .host_str()
                .filter(|_| matches!(url.scheme(), "http" | "https"));
            let host = host.ok_or_else(bad)?;
            secure = url.scheme() == "https";
            match url.port() {
                Some(port) => hosts.push(format!("{host}:{port}")),
                None => {
                    hosts.push(host.to_owned());
                    let port = url.port_or_known_default().unwrap_or(80);
                    hosts.push(format!("{host}:{port}"));
                }
            }
        }
        Ok(Access {
            token,
            hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            secure,
        })
    }

    /// Whether actions can be taken at all (a token is set).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `request` names this server in its `Host`.
    pub fn host_allowed(&self, request: &Request) -> bool {
        let Some(host) = request.header("host").map(str::to_ascii_lowercase) else {
            return false;
        };
        self.hosts.contains(&host) || request.local.is_some_and(|local| local.to_string() == host)
    }

    /// Whether `request` may read the pages.
    pub fn may_read(&self, request: &Request) -> bool {
        self.token.is_none() || self.authenticated(request)
    }

    /// Whether `request` carries the token, as a bearer or a session cookie.
    pub fn authenticated(&self, request: &Request) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        if let Some(bearer) = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            // The presented token keys the MAC: equal MACs, equal tokens.
            return keyed(bearer.trim().as_bytes())
                .chain_update(SESSION)
                .verify_slice(&mac(token, SESSION))
                .is_ok();
        }
        cookie(request, COOKIE).is_some_and(|value| verify(token, SESSION, value))
    }

    /// The CSRF token of the forms, when actions can be taken.
    pub fn csrf(&self) -> Option<String> {
        self.token
            .as_ref()
            .map(|token| URL_SAFE_NO_PAD.encode(mac(token, CSRF)))
    }

    /// Whether `presented` is the CSRF token.
    pub fn csrf_ok(&self, presented: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|token| verify(token, CSRF, presented))
    }

    fn session_cookie(&self, token: &Secret) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        let value = URL_SAFE_NO_PAD.encode(mac(token, SESSION));
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}")
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn mac(token: &Secret, purpose: &[u8]) -> Vec<u8> {
    keyed(token.expose().as_bytes())
        .chain_update(purpose)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Whether `presented` (base64url) is the MAC of `purpose` under `token`.
fn verify(token: &Secret, purpose: &[u8], presented: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(presented.trim()) else {
        return false;
    };
    keyed(token.expose().as_bytes())
        .chain_update(purpose)
        .verify_slice(&bytes)
        .is_ok()
}

/// The cookie `name` of `request`.
fn cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .filter(|(n, _)| n == "cookie")
        .flat_map(|(_, v)| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The login form, answered 401 with `why` (a page read without the token)
/// or 200 when asked for.
pub fn login_page(access: &Access, why: Option<&str>) -> Answer {
    if !access.has_token() {
        return layout::see_other("/");
    }
    let body = html! {
        h1 { "events dashboard" }
        @if let Some(why) = why { p.notice { (why) } }
        form.login method="post" action="/login" {
            label for="token" { "Token" }
            input #token type="password" name="token" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
    };
    let status = if why.is_some() { 401 } else { 200 };
    layout::bare(status, "Sign in", body)
}

/// `POST /login`: the token from the form, for a session cookie.
pub fn login(access: &Access, request: &Request) -> Answer {
    let Some(token) = &access.token else {
        return Answer::plain(
            404,
            "this dashboard is read-only: it has no token to sign in with\n",
        );
    };
    let form = request::pairs(&request.body);
    let presented = request::get(&form, "token");
    let good = keyed(presented.as_bytes())
        .chain_update(SESSION)
        .verify_slice(&mac(token, SESSION))
        .is_ok();
    if !good {
        return login_page(access, Some("That is not the dashboard token."));
    }
    let mut answer = layout::see_other("/");
    answer
        .headers
        .push(("Set-Cookie", access.session_cookie(token)));
    answer
}

/// `POST /logout`: forgets the session cookie.
pub fn logout(access: &Access) -> Answer {
    let mut answer = layout::see_other(if access.has_token() { "/login" } else { "/" });
    answer.headers.push((
        "Set-Cookie",
        format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    ));
    answer
}
