//! Where the Redis backend keeps destinations' holds: the hash
//! `{events}:holds`, one field `<dest>|<kind>` per hold, its JSON the value
//! (destination names never contain `|`). Every worker reads all of it
//! about once a second: one `HGETALL` of a handful of fields.

use super::RedisQueue;
use crate::queue::{Hold, HoldKind, Holds, RawHold, Result};

impl RedisQueue {
    fn holds_key(&self) -> String {
        format!("{}:holds", self.prefix)
    }
}

/// Compare-and-swap of one field of the holds hash: see the script.
const SWAP_HOLD: &str = include_str!("swap_hold.lua");

impl Holds for RedisQueue {
    fn put_hold(&mut self, dest: &str, hold: &Hold) -> Result<()> {
        let key = self.holds_key();
        let field = format!("{dest}|{}", hold.kind().as_str());
        self.with(|c| {
            redis::cmd("HSET")
                .arg(&key)
                .arg(&field)
                .arg(hold.encode())
                .query::<()>(c)
        })
    }

    fn remove_hold(&mut self, dest: &str, kind: HoldKind) -> Result<bool> {
        let key = self.holds_key();
        let field = format!("{dest}|{}", kind.as_str());
        let removed: i64 = self.with(|c| redis::cmd("HDEL").arg(&key).arg(&field).query(c))?;
        Ok(removed > 0)
    }

    fn holds_raw(&mut self) -> Result<Vec<RawHold>> {
        let key = self.holds_key();
        let fields: Vec<(String, String)> =
            self.with(|c| redis::cmd("HGETALL").arg(&key).query(c))?;
        Ok(fields
            .into_iter()
            .map(|(field, json)| {
                let (dest, kind) = field.rsplit_once('|').unwrap_or((&field, ""));
                RawHold {
                    dest: dest.to_owned(),
                    kind: kind.to_owned(),
                    json,
                }
            })
            .collect())
    }

    fn hold_raw(&mut self, dest: &str, kind: HoldKind) -> Result<Option<String>> {
        let key = self.holds_key();
        let field = format!("{dest}|{}", kind.as_str());
        self.with(|c| redis::cmd("HGET").arg(&key).arg(&field).query(c))
    }

    fn swap_hold(
        &mut self,
        dest: &str,
        kind: HoldKind,
        expected: Option<&str>,
        new: Option<&Hold>,
    ) -> Result<bool> {
        let key = self.holds_key();
        let field = format!("{dest}|{}", kind.as_str());
        let new = new.map(Hold::encode).unwrap_or_default();
        let script = redis::Script::new(SWAP_HOLD);
        let swapped: i64 = self.with(|c| {
            script
                .key(&key)
                .arg(&field)
                .arg(expected.unwrap_or_default())
                .arg(&new)
                .invoke(c)
        })?;
        Ok(swapped == 1)
    }

    fn waiting(&mut self, dest: &str) -> Result<u64> {
        let key = self.retry_key(dest);
        self.with(|c| redis::cmd("ZCARD").arg(&key).query(c))
    }
}
