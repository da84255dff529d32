//! Alert windows, as the queue keeps them for every worker together: at
//! most one dead-letter alert per destination per window, what dies
//! meanwhile counted into the next. The decision is here, as pure
//! functions, which the SQLite backend runs in Rust and the Redis backend's
//! scripts (`count_for_alert.lua`, `alert_due.lua`) write again in Lua; a test
//! holds both to the same answers. What an alert says is `crate::alert`'s.

use std::time::Duration;

/// One destination's dead letters in one settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub dest: String,
    pub count: u64,
    /// The last error seen, as a sample of the cause.
    pub error: String,
}

/// One destination's alert window as a queue keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// When the open window ends (ms since the epoch); none when never opened.
    pub until_ms: Option<i64>,
    /// Dead letters counted while it was open, not yet reported.
    pub between: u64,
}

/// Counts `count` dead letters into `window` at `now_ms`: the new window,
/// and how many to report now when this opens a new one (those counted in
/// between included); `None` while the window is still open.
pub fn count_into(
    window: Window,
    count: u64,
    now_ms: i64,
    length: Duration,
) -> (Window, Option<u64>) {
    match window.until_ms {
        Some(until) if now_ms < until => (
            Window {
                between: window.between + count,
                ..window
            },
            None,
        ),
        _ => (
            Window {
                until_ms: Some(now_ms + length.as_millis() as i64),
                between: 0,
            },
            Some(window.between + count),
        ),
    }
}

/// What `window` owes at `now_ms` when no new dead letter comes to carry
/// it: the count of a window that ended with dead letters counted in it,
/// reported now and opening a new window; `None` otherwise.
pub fn due(window: Window, now_ms: i64, length: Duration) -> (Window, Option<u64>) {
    match window.until_ms {
        Some(until) if now_ms >= until && window.between > 0 => (
            Window {
                until_ms: Some(now_ms + length.as_millis() as i64),
                between: 0,
            },
            Some(window.between),
        ),
        _ => (window, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(5 * 60);

    #[test]
    fn the_first_opens_a_window_later_ones_are_counted_into_the_next() {
        let minute = 60_000;
        let (w, now) = count_into(Window::default(), 2, 0, WINDOW);
        assert_eq!(now, Some(2), "the first is reported at once");
        let (w, now) = count_into(w, 3, minute, WINDOW);
        assert_eq!(now, None);
        let (w, now) = count_into(w, 4, 4 * minute, WINDOW);
        assert_eq!((now, w.between), (None, 7));
        let (w, now) = count_into(w, 1, 5 * minute, WINDOW);
        assert_eq!(now, Some(8), "what happened in between, and this one");
        assert_eq!(w.until_ms, Some(10 * minute));
    }

    #[test]
    fn a_window_that_ends_with_letters_counted_owes_them_once() {
        let minute = 60_000;
        let (w, _) = count_into(Window::default(), 1, 0, WINDOW);
        assert_eq!(due(w, 6 * minute, WINDOW), (w, None), "nothing counted");
        let (w, _) = count_into(w, 4, minute, WINDOW);
        assert_eq!(due(w, 4 * minute, WINDOW), (w, None), "still open");
        let (w, owed) = due(w, 5 * minute, WINDOW);
        assert_eq!(owed, Some(4));
        assert_eq!(w.until_ms, Some(10 * minute), "reporting opens a window");
        assert_eq!(due(w, 11 * minute, WINDOW).1, None, "owed once");
    }
}
