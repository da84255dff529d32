//! The stream and its claims: appending events, the consumer group that
//! claims them, settling what the worker did, and reading the history.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::Value;

use super::{
    Code, Fields, GROUP, PAGE, RawError, RedisQueue, SKEW_MS, array, code, entries, event_of, int,
    is_skewed_ms, map, next_id, parse_id, raw_entries, read_reply_entries, text,
};
use crate::event::{Event, now_ms};
use crate::queue::entry::RawEntry;
use crate::queue::{
    Backlog, Claims, Durability, History, NotReplicated, Producer, Result, RetryClaim, Settle,
    Settlement,
};

const APPEND_IDEMPOTENT: &str = include_str!("append_idempotent.lua");

impl RedisQueue {
    /// Creates the consumer group at the start of the stream when missing.
    pub(super) fn ensure_group(&mut self) -> Result<()> {
        if self.group_ready {
            return Ok(());
        }
        let stream = self.stream.clone();
        let created = self.with_raw(|c| {
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .exec(c)
        });
        match created {
            Err(RawError::Redis(e)) if code(&e) == Some(Code::BusyGroup) => {}
            other => other.map_err(|e| self.error(e))?,
        }
        self.group_ready = true;
        Ok(())
    }

    /// Runs a group command, recreating the group once if Redis lost it
    /// (a restart without persistence).
    pub(super) fn group_cmd(&mut self, cmd: &redis::Cmd) -> Result<Value> {
        self.ensure_group()?;
        match self.with_raw(|c| cmd.query::<Value>(c)) {
            Err(RawError::Redis(e)) if code(&e) == Some(Code::NoGroup) => {
                self.group_ready = false;
                self.ensure_group()?;
                self.with(|c| cmd.query::<Value>(c))
            }
            other => other.map_err(|e| self.error(e)),
        }
    }

    fn read_own(&mut self, consumer: &str, from: &str, count: usize) -> Result<Vec<RawEntry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        cmd.arg("STREAMS").arg(&self.stream).arg(from);
        let reply = self.group_cmd(&cmd)?;
        Ok(read_reply_entries(reply))
    }

    /// Reads the stream `key` from `start` to its end, 1,000 entries a page,
    /// until `page` returns false.
    pub(super) fn scan(
        &mut self,
        key: &str,
        start: String,
        page: impl FnMut(Vec<(String, Option<Fields>)>) -> bool,
    ) -> Result<()> {
        self.scan_range(key, start, "+", page)
    }

    /// Reads the stream `key` from `start` to `end` (XRANGE bounds), `PAGE`
    /// entries a page, until `page` returns false.
    pub(super) fn scan_range(
        &mut self,
        key: &str,
        mut start: String,
        end: &str,
        mut page: impl FnMut(Vec<(String, Option<Fields>)>) -> bool,
    ) -> Result<()> {
        loop {
            let reply: Value = self.with(|c| {
                redis::cmd("XRANGE")
                    .arg(key)
                    .arg(&start)
                    .arg(end)
                    .arg("COUNT")
                    .arg(PAGE)
                    .query(c)
            })?;
            let entries = raw_entries(reply);
            let Some((last, _)) = entries.last() else {
                return Ok(());
            };
            start = format!("({last}");
            // A short page is the end of the range: no need to ask again.
            let more = entries.len() == PAGE;
            if !page(entries) || !more {
                return Ok(());
            }
        }
    }

    /// Indexes by `ts` the entries whose `ts` is far from their entry id's
    /// time, before anyone settles them: once settled, `history` finds them
    /// only through this index.
    fn index_skewed(&mut self, entries: &[RawEntry]) -> Result<()> {
        let mut pipe = redis::pipe();
        for entry in entries {
            if let Some(ts) = entry.ts_ms()
                && is_skewed_ms(entry.written_ms, ts)
            {
                pipe.cmd("ZADD")
                    .arg(&self.skewed)
                    .arg(ts)
                    .arg(&entry.key)
                    .ignore();
            }
        }
        if pipe.cmd_iter().next().is_none() {
            return Ok(());
        }
        self.with(|c| pipe.exec(c))
    }

    /// The first entry that may not be settled yet: the oldest pending one or
    /// the first never read, whichever comes first; `None` when the group
    /// does not exist (nothing was ever read). Entries from here on may be
    /// skewed and not yet indexed.
    pub(super) fn unsettled_from(&mut self) -> Result<Option<(u64, u64)>> {
        let Some(group) = self.group_info()? else {
            return Ok(None);
        };
        let last = group
            .get("last-delivered-id")
            .map(text)
            .unwrap_or_else(|| "0-0".into());
        let mut first = parse_id(&next_id(&last));
        let stream = self.stream.clone();
        let pending: Value =
            self.with(|c| redis::cmd("XPENDING").arg(&stream).arg(GROUP).query(c))?;
        if let Some(Value::BulkString(oldest)) = array(pending).get(1) {
            first = first.min(parse_id(&String::from_utf8_lossy(oldest)));
        }
        Ok(Some(first))
    }

    /// The skewed entries settled before `settled_before` whose `ts` is in
    /// `[from_ms, until_ms)`, by entry id.
    fn skewed_in(
        &mut self,
        from_ms: i64,
        until_ms: i64,
        settled_before: (u64, u64),
    ) -> Result<Vec<((u64, u64), Event)>> {
        let skewed = self.skewed.clone();
        let stream = self.stream.clone();
        let ids: Vec<String> = self.with(|c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(&skewed)
                .arg(from_ms)
                .arg(format!("({until_ms}"))
                .query(c)
        })?;
        let mut ids: Vec<(u64, u64)> = ids
            .iter()
            .map(|id| parse_id(id))
            .filter(|id| *id < settled_before)
            .collect();
        ids.sort_unstable();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            let mut pipe = redis::pipe();
            for (ms, seq) in chunk {
                let id = format!("{ms}-{seq}");
                pipe.cmd("XRANGE").arg(&stream).arg(&id).arg(&id);
            }
            let replies: Vec<Value> = self.with(|c| pipe.query(c))?;
            for reply in replies {
                // An entry trimmed since it was indexed is simply gone.
                for (key, fields) in raw_entries(reply) {
                    if let Some(event) = event_of(key.clone(), fields)
                        && event.ts_ms().is_some_and(|t| from_ms <= t && t < until_ms)
                    {
                        out.push((parse_id(&key), event));
                    }
                }
            }
        }
        Ok(out)
    }

    pub(super) fn group_info(&mut self) -> Result<Option<HashMap<String, Value>>> {
        let stream = self.stream.clone();
        let groups: Value = match self
            .with_raw(|c| redis::cmd("XINFO").arg("GROUPS").arg(&stream).query(c))
        {
            // Redis answers a plain ERR for a stream that does not exist
            // (yet): tell that apart by asking, not by the message.
            Err(RawError::Redis(e))
                if code(&e) == Some(Code::Err)
                    && !self.with(|c| redis::cmd("EXISTS").arg(&stream).query::<bool>(c))? =>
            {
                return Ok(None);
            }
            other => other.map_err(|e| self.error(e))?,
        };
        Ok(array(groups)
            .into_iter()
            .map(map)
            .find(|g| g.get("name").map(text).as_deref() == Some(GROUP)))
    }

    /// Entries not yet delivered to the group: Redis's `lag`, or a count of
    /// the entries after the last delivered id when Redis cannot tell.
    pub(super) fn unread(&mut self, group: &HashMap<String, Value>) -> Result<u64> {
        if let Some(Value::Int(lag)) = group.get("lag") {
            return Ok(u64::try_from(*lag).unwrap_or(0));
        }
        let last = group
            .get("last-delivered-id")
            .map(text)
            .unwrap_or_else(|| "0-0".into());
        let stream = self.stream.clone();
        let ids: Value = self.with(|c| {
            redis::cmd("XRANGE")
                .arg(&stream)
                .arg(format!("({last}"))
                .arg("+")
                .arg("COUNT")
                .arg(100_000)
                .query(c)
        })?;
        Ok(array(ids).len() as u64)
    }
}

impl Producer for RedisQueue {
    fn append(&mut self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // Each command sized up front and the payload written through one
        // buffer: growing them argument by argument cost more than the rest.
        let mut pipe = redis::Pipeline::with_capacity(events.len() + 1);
        let mut payload = Vec::new();
        for event in events {
            payload.clear();
            serde_json::to_writer(&mut payload, &event.payload).expect("a map serialises");
            let size = self.stream.len() + event.kind.len() + payload.len();
            let mut xadd =
                redis::Cmd::with_capacity(11, size + event.id.len() + event.ts.len() + 24);
            xadd.arg("XADD")
                .arg(&self.stream)
                .arg("*")
                .arg("type")
                .arg(&event.kind)
                .arg("payload")
                .arg(payload.as_slice())
                .arg("id")
                .arg(&event.id)
                .arg("ts")
                .arg(&event.ts);
            pipe.add_command(xadd).ignore();
        }
        let Some(durability) = self.options.durability else {
            return self.with(|c| pipe.exec(c));
        };
        // In the same round trip: WAIT covers every write of the connection.
        wait(&mut pipe, durability);
        let (confirmed,): (u32,) = self.with(|c| pipe.query(c))?;
        let id = (events.len() == 1).then(|| events[0].id.clone());
        confirm(durability, confirmed, id, events.len())
    }

    fn append_idempotent(
        &mut self,
        key: &str,
        event: &Event,
        ttl: Duration,
    ) -> Result<Option<String>> {
        let script = redis::Script::new(APPEND_IDEMPOTENT);
        let payload = serde_json::to_string(&event.payload).expect("a map serialises");
        let idem = format!("{}:idem:{key}", self.prefix);
        let stream = self.stream.clone();
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let mut invocation = script.key(&idem);
        invocation
            .key(&stream)
            .arg(&event.id)
            .arg(ttl_ms)
            .arg(&event.kind)
            .arg(&payload)
            .arg(&event.ts);
        let first = self.with(|c| invocation.invoke::<Option<String>>(c))?;
        let Some(durability) = self.options.durability else {
            return Ok(first);
        };
        // A key seen before wrote nothing now, but its first event may
        // still be on the primary only: WAIT waits for the replicas to
        // reach where the primary is, which covers that event too.
        let mut pipe = redis::pipe();
        wait(&mut pipe, durability);
        let (confirmed,): (u32,) = self.with(|c| pipe.query(c))?;
        let id = first.clone().unwrap_or_else(|| event.id.clone());
        confirm(durability, confirmed, Some(id), 1)?;
        Ok(first)
    }
}

/// Adds `WAIT replicas timeout` to `pipe`.
fn wait(pipe: &mut redis::Pipeline, durability: Durability) {
    pipe.cmd("WAIT")
        .arg(durability.replicas)
        .arg(durability.timeout.as_millis() as u64);
}

/// Whether `confirmed` replicas are enough for `durability`.
fn confirm(durability: Durability, confirmed: u32, id: Option<String>, count: usize) -> Result<()> {
    if confirmed >= durability.replicas {
        return Ok(());
    }
    Err(NotReplicated {
        id,
        count,
        confirmed,
        wanted: durability.replicas,
        timeout_ms: durability.timeout.as_millis() as u64,
    }
    .into())
}

impl Claims for RedisQueue {
    fn recover_raw(&mut self, consumer: &str) -> Result<Vec<RawEntry>> {
        let mut all = Vec::new();
        let mut from = "0".to_owned();
        loop {
            let batch = self.read_own(consumer, &from, 500)?;
            let Some(last) = batch.last() else { break };
            from = last.key.clone();
            all.extend(batch);
        }
        self.index_skewed(&all)?;
        Ok(all)
    }

    fn claim_raw(
        &mut self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<RawEntry>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let lease = self.options.claim_lease;
        let due = self.last_autoclaim.is_none_or(|t| t.elapsed() >= lease / 4);
        if due || self.autoclaim_cursor != "0-0" {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&self.stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(lease.as_millis() as u64);
            cmd.arg(&self.autoclaim_cursor).arg("COUNT").arg(count);
            let reply = array(self.group_cmd(&cmd)?);
            let mut parts = reply.into_iter();
            self.autoclaim_cursor = parts
                .next()
                .map(|v| text(&v))
                .unwrap_or_else(|| "0-0".into());
            self.last_autoclaim = Some(Instant::now());
            let claimed = parts.next().map(entries).unwrap_or_default();
            if !claimed.is_empty() {
                self.index_skewed(&claimed)?;
                return Ok(claimed);
            }
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        let block_ms = block.as_millis() as u64;
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(">");
        // A blocking read must be allowed to outlast its BLOCK time.
        let normal = self.response_timeout();
        if let Some(c) = self.conn.as_mut() {
            let _ = c.set_read_timeout(Some(normal + block));
        }
        let reply = self.group_cmd(&cmd);
        if let Some(c) = self.conn.as_mut() {
            let _ = c.set_read_timeout(Some(normal));
        }
        let claimed = read_reply_entries(reply?);
        self.index_skewed(&claimed)?;
        Ok(claimed)
    }

    fn claim_retries(
        &mut self,
        now_ms: i64,
        count: usize,
        only: &[String],
    ) -> Result<Vec<RetryClaim>> {
        self.claim_due(now_ms, count, only)
    }

    fn renew(&mut self, consumer: &str, entries: &[String], retries: &[String]) -> Result<()> {
        let mut pipe = redis::pipe();
        for chunk in entries.chunks(500) {
            // Claiming its own entries again resets their idle time.
            pipe.cmd("XCLAIM")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID")
                .ignore();
        }
        let lease_until = now_ms() + self.options.claim_lease.as_millis() as i64;
        for token in retries {
            self.lease_token(&mut pipe, token, lease_until);
        }
        self.with(|c| pipe.exec(c))
    }

    fn backlog(&mut self, only: &[String]) -> Result<Backlog> {
        let (retries, next_retry_ms) = self.retry_summary(only)?;
        let (unread, pending) = match self.group_info()? {
            Some(group) => {
                let pending = group.get("pending").map(int).unwrap_or(0);
                (self.unread(&group)?, pending)
            }
            None => {
                let stream = self.stream.clone();
                (
                    self.with(|c| redis::cmd("XLEN").arg(&stream).query::<u64>(c))?,
                    0,
                )
            }
        };
        Ok(Backlog {
            unread,
            pending,
            retries,
            next_retry_ms,
        })
    }
}

impl Settle for RedisQueue {
    fn settle(&mut self, _consumer: &str, s: &Settlement) -> Result<()> {
        if s.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        // Removed before the new retries go in: a rescheduled retry has the
        // same token as the claim it replaces.
        let legacy = if s.done_retries.is_empty() && s.retries.is_empty() {
            false
        } else {
            self.legacy_retries()?
        };
        self.unschedule_tokens(&mut pipe, &s.done_retries, legacy);
        self.schedule(
            &mut pipe,
            s.retries.iter().map(|(d, due)| (d, *due)),
            legacy,
        );
        for letter in &s.dead {
            self.add_dead(&mut pipe, letter);
        }
        self.add_tallies(&mut pipe, &s.tallies);
        self.record_attempts(&mut pipe, &s.attempts);
        self.guard(&mut pipe, s);
        if !s.acks.is_empty() {
            pipe.cmd("XACK")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(&s.acks)
                .ignore();
        }
        self.with(|c| pipe.exec(c))
    }
}

impl History for RedisQueue {
    /// Selects by `ts` exactly, reading three disjoint parts in entry-id
    /// order: settled entries whose `ts` is near their id's time, read by id
    /// around the window; settled skewed entries, from their index by `ts`;
    /// and every entry not yet settled (not yet indexed), from the first one
    /// to the end of the stream.
    fn history(
        &mut self,
        from_ms: i64,
        until_ms: i64,
        visit: &mut dyn FnMut(Vec<Event>) -> bool,
    ) -> Result<()> {
        let stream = self.stream.clone();
        let unsettled = self.unsettled_from()?.unwrap_or((0, 0));
        let mut skewed = self
            .skewed_in(from_ms, until_ms, unsettled)?
            .into_iter()
            .peekable();
        let in_window = |e: &Event| e.ts_ms().is_some_and(|t| from_ms <= t && t < until_ms);
        let start = (
            u64::try_from(from_ms.saturating_sub(SKEW_MS)).unwrap_or(0),
            0,
        );
        let end = (
            u64::try_from(until_ms.saturating_add(SKEW_MS)).unwrap_or(0) + 1,
            0,
        )
            .min(unsettled);
        let mut go_on = true;
        if start < end {
            self.scan_range(
                &stream,
                format!("{}-{}", start.0, start.1),
                &format!("({}-{}", end.0, end.1),
                |page| {
                    let last = page.last().map(|(key, _)| parse_id(key));
                    let mut batch: Vec<((u64, u64), Event)> = page
                        .into_iter()
                        .filter_map(|(key, fields)| Some((parse_id(&key), event_of(key, fields)?)))
                        .filter(|(id, e)| {
                            let ts = e.ts_ms();
                            ts.is_some_and(|t| {
                                from_ms <= t && t < until_ms && !is_skewed_ms(id.0, t)
                            })
                        })
                        .collect();
                    while let Some((id, _)) = skewed.peek()
                        && Some(*id) <= last
                    {
                        batch.extend(skewed.next());
                    }
                    batch.sort_by_key(|(id, _)| *id);
                    go_on = batch.is_empty() || visit(batch.into_iter().map(|(_, e)| e).collect());
                    go_on
                },
            )?;
        }
        let rest: Vec<Event> = skewed.map(|(_, e)| e).collect();
        if go_on && !rest.is_empty() {
            go_on = visit(rest);
        }
        if !go_on {
            return Ok(());
        }
        let start = match unsettled {
            (0, 0) => "-".to_owned(),
            (ms, seq) => format!("{ms}-{seq}"),
        };
        self.scan(&stream, start, |page| {
            let events: Vec<Event> = page
                .into_iter()
                .filter_map(|(key, fields)| event_of(key, fields))
                .filter(in_window)
                .collect();
            events.is_empty() || visit(events)
        })
    }

    fn follow_from(&mut self, from_ms: Option<i64>) -> Result<String> {
        if let Some(from_ms) = from_ms {
            // Just before `from_ms-0`: XREAD returns entries after its id.
            return Ok(match from_ms.checked_sub(1) {
                Some(ms) if ms >= 0 => format!("{ms}-{}", u64::MAX),
                _ => "0-0".to_owned(),
            });
        }
        let stream = self.stream.clone();
        let newest: Value = self.with(|c| {
            redis::cmd("XREVRANGE")
                .arg(&stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(c)
        })?;
        Ok(raw_entries(newest)
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(key, _)| key))
    }

    fn follow(&mut self, after: &str, count: usize, block: Duration) -> Result<Vec<RawEntry>> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count.max(1));
        // `BLOCK 0` would wait for ever.
        let block_ms = block.as_millis() as u64;
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(after);
        // A blocking read must be allowed to outlast its BLOCK time.
        let normal = self.response_timeout();
        let _ = self.conn()?.set_read_timeout(Some(normal + block));
        let reply: Result<Value> = self.with(|c| cmd.query(c));
        if let Some(c) = self.conn.as_mut() {
            let _ = c.set_read_timeout(Some(normal));
        }
        Ok(read_reply_entries(reply?))
    }

    fn event(&mut self, event_id: &str, hint: Option<&str>) -> Result<Option<Event>> {
        self.find_event(event_id, hint)
    }
}
