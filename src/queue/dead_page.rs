//! One page of dead letters, filtered, for a view that must stay cheap with
//! hundreds of thousands of them (the dashboard's `/dead`).
//!
//! The decision: a page is found by walking the letters newest first in
//! bounded reads ([`DeadLetters::dead_before`]) from a *cursor* (the key of
//! the last letter already shown), keeping those the filter selects, and
//! stopping as soon as the page is full or [`SCAN_BUDGET`] letters have been
//! read. A page link therefore carries a cursor, not a page number: reaching
//! page 500 by number would mean reading every letter before it, while a
//! cursor costs the same on every page. A filter that selects few letters
//! may end a page short, with a cursor to read on from where the walk
//! stopped; the work per request stays bounded whatever the filter and
//! however many letters there are. The same walk serves every backend, so
//! the filter is decided once, here (on SQLite and Postgres the read is a
//! keyset `seq < cursor ORDER BY seq DESC LIMIT n`; on Redis an
//! `XREVRANGE` from the cursor).

use super::{DeadFilter, DeadLetters, Result, StoredDeadLetter};

/// The most letters one page reads, matching or not.
pub const SCAN_BUDGET: usize = 5_000;

/// Letters read at a time while filling a page.
const CHUNK: usize = 500;

/// One page of dead letters, newest first.
#[derive(Debug, Default)]
pub struct DeadPage {
    pub letters: Vec<StoredDeadLetter>,
    /// Where the next page starts (the key of the last letter read), or
    /// `None` when the walk reached the oldest letter.
    pub next: Option<String>,
    /// How many letters were read to fill this page.
    pub scanned: usize,
}

/// Up to `size` letters `filter` selects, newest first, older than the
/// letter keyed `after` (from the newest when `None`), reading at most
/// [`SCAN_BUDGET`] letters.
pub fn dead_page(
    queue: &mut (impl DeadLetters + ?Sized),
    filter: &DeadFilter,
    after: Option<&str>,
    size: usize,
) -> Result<DeadPage> {
    let mut page = DeadPage::default();
    let mut cursor = after.map(str::to_owned);
    while page.letters.len() < size && page.scanned < SCAN_BUDGET {
        let want = CHUNK.min(SCAN_BUDGET - page.scanned);
        let chunk = queue.dead_before(cursor.as_deref(), want)?;
        let ended = chunk.len() < want;
        for stored in chunk {
            page.scanned += 1;
            cursor = Some(stored.key.clone());
            if filter.matches(&stored.letter) {
                page.letters.push(stored);
                if page.letters.len() == size {
                    page.next = cursor;
                    return Ok(page);
                }
            }
        }
        if ended {
            return Ok(page);
        }
    }
    page.next = cursor;
    Ok(page)
}
