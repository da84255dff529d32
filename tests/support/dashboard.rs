//! A running `events dashboard` and a raw HTTP client for it: requests
//! written byte for byte on a `TcpStream` (so a test controls the `Host`
//! and every header), answers read whole (the server closes each
//! connection).
//!
//! Start one with `Dashboard::start(backend.events())`: it runs
//! `events dashboard --addr 127.0.0.1:0` (with `EVENTS_DASHBOARD_TOKEN` if
//! the builder sets it) and reads the URL it prints alone on stdout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Events, Running};

/// A dashboard process, killed on drop.
pub struct Dashboard {
    pub running: Running,
    /// `127.0.0.1:PORT`: the `Host` it answers for.
    pub addr: String,
}

impl Dashboard {
    /// Starts `events dashboard` on a free loopback port.
    pub fn start(events: Events) -> Dashboard {
        Dashboard::start_with(events, &[])
    }

    /// Starts it with these extra arguments.
    pub fn start_with(events: Events, args: &[&str]) -> Dashboard {
        let running = events
            .args(["dashboard", "--addr", "127.0.0.1:0"])
            .args(args)
            .spawn();
        assert!(
            running.wait_for_stdout("/\n", Duration::from_secs(20)),
            "the dashboard did not print its address; stderr:\n{}",
            running.stderr_so_far()
        );
        let url = running.stdout_so_far();
        let addr = url
            .trim()
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("not an address: {url:?}"))
            .to_owned();
        Dashboard { running, addr }
    }

    /// `GET path` with the right `Host`.
    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], "")
    }

    /// `method path` with the right `Host` and these headers; a non-empty
    /// `body` is sent as a form.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut all = vec![("Host", self.addr.as_str())];
        all.extend_from_slice(headers);
        raw_request(&self.addr, method, path, &all, body)
    }
}

/// One answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends exactly these headers (a form `body` gets its type and length).
pub fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect to the dashboard");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .expect("read the dashboard's answer");
    parse(&String::from_utf8_lossy(&bytes))
}

fn parse(text: &str) -> Answer {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field in the page:\n{page}"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// `pairs` as a form body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
