//! A real headless Chromium (Debian's `chromium`), driven over the DevTools
//! protocol: started by the test with a throw-away profile, killed on drop.
//! Pages are read back from the DOM with small scripts, never from the
//! HTTP body, so what a test sees is what a browser made of the page.
//!
//! Without Chromium the test fails and says how to install it.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;

/// Where Debian installs it.
const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL: &str = "install it with `apt-get install chromium chromium-driver`";

/// A headless Chromium with its own profile directory, killed on drop.
pub struct Chromium {
    // Dropped first: the browser, then its profile.
    browser: Browser,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts one, or fails the test saying how to install it.
    pub fn start() -> Chromium {
        let path = PathBuf::from(std::env::var("EVENTS_CHROMIUM").unwrap_or(CHROMIUM.into()));
        assert!(
            path.exists(),
            "Chromium is not at {}: {INSTALL}",
            path.display()
        );
        let profile = tempfile::tempdir().expect("a temporary profile directory");
        let root = unsafe { libc::geteuid() } == 0;
        let options = LaunchOptions::default_builder()
            .path(Some(path))
            .headless(true)
            .sandbox(!root)
            .user_data_dir(Some(profile.path().to_owned()))
            .window_size(Some((1280, 800)))
            .idle_browser_timeout(Duration::from_secs(120))
            .args(vec![OsStr::new("--disable-dev-shm-usage")])
            .build()
            .expect("Chromium's launch options");
        let browser = Browser::new(options)
            .unwrap_or_else(|e| panic!("Chromium could not be started ({e:#}): {INSTALL}"));
        Chromium {
            browser,
            _profile: profile,
        }
    }

    /// A new tab at `url`, loaded.
    pub fn open(&self, url: &str) -> Page {
        let tab = self.browser.new_tab().expect("a new tab");
        tab.set_default_timeout(Duration::from_secs(20));
        let page = Page { tab };
        page.go(url);
        page
    }
}

/// One tab.
pub struct Page {
    pub tab: Arc<Tab>,
}

impl Page {
    /// Navigates to `url` and waits for it to load.
    pub fn go(&self, url: &str) {
        self.leaving();
        self.tab
            .navigate_to(url)
            .unwrap_or_else(|e| panic!("{url} did not load: {e:#}"));
        self.loaded();
    }

    /// Marks the document shown now, so that [`Page::loaded`] knows when
    /// another replaced it.
    fn leaving(&self) {
        // A blank new tab has no document worth marking.
        let _ = self.tab.evaluate("window.__leaving = true", false);
    }

    /// Waits until a document other than the one [`Page::leaving`] marked
    /// has loaded.
    fn loaded(&self) {
        self.wait_until(
            "!window.__leaving && document.readyState === 'complete'",
            Duration::from_secs(20),
        );
    }

    /// The value of a JavaScript expression, as JSON.
    pub fn eval(&self, expression: &str) -> Value {
        let wrapped = format!("JSON.stringify((() => ({expression}))())");
        let result = self
            .tab
            .evaluate(&wrapped, false)
            .unwrap_or_else(|e| panic!("{expression}: {e:#}"));
        match result.value {
            Some(Value::String(json)) => serde_json::from_str(&json).unwrap(),
            _ => Value::Null,
        }
    }

    /// The text of the first element `selector` selects, trimmed; `None`
    /// when there is none.
    pub fn text(&self, selector: &str) -> Option<String> {
        let quoted = json(selector);
        self.eval(&format!(
            "document.querySelector({quoted})?.textContent.trim() ?? null"
        ))
        .as_str()
        .map(str::to_owned)
    }

    /// How many elements `selector` selects.
    pub fn count(&self, selector: &str) -> u64 {
        let quoted = json(selector);
        self.eval(&format!("document.querySelectorAll({quoted}).length"))
            .as_u64()
            .unwrap()
    }

    /// The page's address, path and query.
    pub fn location(&self) -> String {
        self.eval("location.pathname + location.search")
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn title(&self) -> String {
        self.eval("document.title").as_str().unwrap().to_owned()
    }

    /// Sets the input `selector` selects to `text`, as if typed (typing
    /// key by key over the DevTools protocol takes seconds).
    pub fn fill(&self, selector: &str, text: &str) {
        let (selector, text) = (json(selector), json(text));
        let filled = self.eval(&format!(
            "(i => i ? (i.value = {text}, i.dispatchEvent(new Event('input')), true) : false)\
             (document.querySelector({selector}))"
        ));
        assert_eq!(filled, true, "no input {selector}");
    }

    /// Clicks what `selector` selects (a submit button), then waits for the
    /// page the form leads to, after any redirect, to load.
    pub fn submit(&self, selector: &str) {
        self.leaving();
        self.tab
            .wait_for_element(selector)
            .and_then(|button| button.click().map(|_| ()))
            .unwrap_or_else(|e| panic!("cannot click {selector}: {e:#}"));
        self.loaded();
    }

    /// Waits until the expression is true; fails the test after `within`.
    pub fn wait_until(&self, expression: &str, within: Duration) {
        let started = Instant::now();
        while started.elapsed() < within {
            let done = self
                .tab
                .evaluate(&format!("Boolean({expression})"), false)
                .ok()
                .and_then(|r| r.value)
                == Some(Value::Bool(true));
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "not true within {within:?}: {expression}\non {}",
            self.location()
        );
    }
}

/// `text` as a JavaScript string literal.
fn json(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}
