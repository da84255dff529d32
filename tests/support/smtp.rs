//! A real, small SMTP server on 127.0.0.1 standing in for a mail relay:
//! `EHLO`/`HELO`, `AUTH PLAIN`, `MAIL FROM`, `RCPT TO`, `DATA` (with the
//! dot-unstuffing of RFC 5321 §4.5.2), `RSET`, `NOOP` and `QUIT`. It records
//! every mail it accepts and the credentials it was given, and can be told
//! to answer a chosen step with an error reply (`450 …`, `550 …`), once
//! per reply queued.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// A step of the conversation an error reply can be given at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The greeting, before the client says anything.
    Greeting,
    Ehlo,
    Auth,
    MailFrom,
    RcptTo,
    /// The answer to `DATA` itself.
    Data,
    /// The answer after the mail's final `.`.
    DataEnd,
}

/// A mail the server accepted.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent, headers and body, dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl Mail {
    /// The value of header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = value.as_mut() {
                    v.push_str(line);
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((key, v)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }

    /// The body, after the blank line that ends the headers.
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    /// `user:password` of each successful `AUTH PLAIN`.
    logins: Vec<String>,
    /// Every command line received, in order.
    commands: Vec<String>,
    /// Error replies to give, each once, at the first matching step.
    failures: Vec<(Step, String)>,
}

pub struct SmtpServer {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1 for SMTP");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = Session::new(stream, state).run();
                });
            }
        });
        SmtpServer { port, state }
    }

    /// `smtp://127.0.0.1:<port>`, with `userinfo@` when given.
    pub fn url(&self, userinfo: &str) -> String {
        match userinfo {
            "" => format!("smtp://127.0.0.1:{}", self.port),
            user => format!("smtp://{user}@127.0.0.1:{}", self.port),
        }
    }

    /// Answers `step` with `reply` (such as `"450 4.2.1 try later"`) once,
    /// after any failures already queued for it.
    pub fn fail(&self, step: Step, reply: &str) {
        self.state
            .lock()
            .unwrap()
            .failures
            .push((step, reply.to_owned()));
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    pub fn logins(&self) -> Vec<String> {
        self.state.lock().unwrap().logins.clone()
    }

    pub fn commands(&self) -> Vec<String> {
        self.state.lock().unwrap().commands.clone()
    }

    /// The mails, once there are `n`, or whatever came within `timeout`.
    pub fn wait_mails(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if mails.len() >= n || Instant::now() >= deadline {
                return mails;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One client's connection.
struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    state: Arc<Mutex<State>>,
    from: Option<String>,
    to: Vec<String>,
}

impl Session {
    fn new(stream: TcpStream, state: Arc<Mutex<State>>) -> Session {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let writer = stream.try_clone().expect("clone the SMTP socket");
        Session {
            reader: BufReader::new(stream),
            writer,
            state,
            from: None,
            to: Vec::new(),
        }
    }

    fn reply(&mut self, text: &str) -> std::io::Result<()> {
        self.writer.write_all(format!("{text}\r\n").as_bytes())
    }

    /// The error queued for `step`, taken, if any.
    fn failure(&self, step: Step) -> Option<String> {
        let mut state = self.state.lock().unwrap();
        let at = state.failures.iter().position(|(s, _)| *s == step)?;
        Some(state.failures.remove(at).1)
    }

    /// Replies `ok`, or the error queued for `step`; whether it was `ok`.
    fn answer(&mut self, step: Step, ok: &str) -> std::io::Result<bool> {
        match self.failure(step) {
            Some(error) => self.reply(&error).map(|()| false),
            None => self.reply(ok).map(|()| true),
        }
    }

    fn line(&mut self) -> std::io::Result<Option<String>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
    }

    fn run(mut self) -> std::io::Result<()> {
        if !self.answer(Step::Greeting, "220 127.0.0.1 ESMTP test")? {
            return Ok(());
        }
        while let Some(line) = self.line()? {
            self.state.lock().unwrap().commands.push(line.clone());
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => {
                    self.answer(
                        Step::Ehlo,
                        "250-127.0.0.1\r\n250-AUTH PLAIN\r\n250 8BITMIME",
                    )?;
                }
                "HELO" => {
                    self.answer(Step::Ehlo, "250 127.0.0.1")?;
                }
                "AUTH" => self.auth(&line)?,
                "MAIL" => {
                    let from = address(&line);
                    if self.answer(Step::MailFrom, "250 2.1.0 OK")? {
                        self.from = Some(from);
                        self.to.clear();
                    }
                }
                "RCPT" if self.from.is_none() => self.reply("503 5.5.1 MAIL first")?,
                "RCPT" => {
                    let to = address(&line);
                    if self.answer(Step::RcptTo, "250 2.1.5 OK")? {
                        self.to.push(to);
                    }
                }
                "DATA" if self.to.is_empty() => self.reply("503 5.5.1 RCPT first")?,
                "DATA" => self.data()?,
                "RSET" => {
                    self.from = None;
                    self.to.clear();
                    self.reply("250 2.0.0 OK")?;
                }
                "NOOP" => self.reply("250 2.0.0 OK")?,
                "QUIT" => {
                    self.reply("221 2.0.0 Bye")?;
                    return Ok(());
                }
                _ => self.reply("502 5.5.2 Command not recognized")?,
            }
        }
        Ok(())
    }

    /// `AUTH PLAIN <base64>`, or `AUTH PLAIN` then the base64 on its own line.
    fn auth(&mut self, line: &str) -> std::io::Result<()> {
        let mut words = line.split_whitespace().skip(1);
        if !words
            .next()
            .is_some_and(|m| m.eq_ignore_ascii_case("PLAIN"))
        {
            return self.reply("504 5.5.4 Unrecognized authentication type");
        }
        let encoded = match words.next() {
            Some(encoded) => encoded.to_owned(),
            None => {
                self.reply("334 ")?;
                self.line()?.unwrap_or_default()
            }
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        // authzid NUL authcid NUL password
        let Some(parts) = decoded.map(|d| d.split('\0').map(str::to_owned).collect::<Vec<_>>())
        else {
            return self.reply("501 5.5.2 Cannot decode the response");
        };
        if parts.len() != 3 {
            return self.reply("501 5.5.2 Malformed AUTH PLAIN");
        }
        if self.answer(Step::Auth, "235 2.7.0 Authentication successful")? {
            let login = format!("{}:{}", parts[1], parts[2]);
            self.state.lock().unwrap().logins.push(login);
        }
        Ok(())
    }

    /// The mail after `DATA`, to the line holding only `.`; a leading dot
    /// the client doubled is taken away again.
    fn data(&mut self) -> std::io::Result<()> {
        if !self.answer(Step::Data, "354 End data with <CR><LF>.<CR><LF>")? {
            return Ok(());
        }
        let mut data = String::new();
        loop {
            let Some(line) = self.line()? else {
                return Ok(());
            };
            if line == "." {
                break;
            }
            data.push_str(line.strip_prefix('.').unwrap_or(&line));
            data.push_str("\r\n");
        }
        let (from, to) = (
            self.from.take().unwrap_or_default(),
            std::mem::take(&mut self.to),
        );
        if self.answer(Step::DataEnd, "250 2.0.0 OK queued")? {
            self.state
                .lock()
                .unwrap()
                .mails
                .push(Mail { from, to, data });
        }
        Ok(())
    }
}

/// The address in `MAIL FROM:<a@b> …` or `RCPT TO:<a@b>`.
fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_owned()
}
