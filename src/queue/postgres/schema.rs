//! The queue's schema and its migrations, applied in order, in one
//! transaction, by whichever process finds them missing first: the others
//! wait on the advisory lock and find them done.

use postgres::Client;

/// Schema migrations, applied in order; `schema_version` holds how many
/// ran. Append only: a released migration is never edited. Written into
/// the schema named by the connection's `search_path`, and idempotent
/// (`IF NOT EXISTS`, `OR REPLACE`): an upgrade runs them all again, so
/// [`script`] is the one text both `events migrate` and its `--print-sql`
/// use.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the whole queue, as the SQLite backend keeps it. `id`, `ts`,
    // `ts_ms` and `written_ms` may be left out by a producer writing SQL:
    // the write time defaults to now, `ts_ms` follows `ts` (or the write
    // time), and an event without `id` gets one derived from its row.
    "CREATE TABLE IF NOT EXISTS stream (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT,
        type TEXT,
        ts TEXT,
        ts_ms BIGINT,
        payload TEXT,
        written_ms BIGINT DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
        -- 0 unread, 1 claimed (by consumer until lease_until), 2 acked.
        state SMALLINT NOT NULL DEFAULT 0,
        consumer TEXT,
        lease_until BIGINT
    );
    -- Only unread and claimed rows are looked for by state: the acked
    -- history stays out of this index.
    CREATE INDEX IF NOT EXISTS stream_unsettled ON stream (seq) WHERE state < 2;
    CREATE INDEX IF NOT EXISTS stream_ts ON stream (ts_ms, seq);
    CREATE INDEX IF NOT EXISTS stream_written ON stream (written_ms);
    CREATE INDEX IF NOT EXISTS stream_id ON stream (id);
    CREATE OR REPLACE FUNCTION stream_times() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.ts_ms IS NULL THEN
            IF NEW.ts IS NOT NULL THEN
                BEGIN
                    NEW.ts_ms := (extract(epoch FROM NEW.ts::timestamptz) * 1000)::bigint;
                EXCEPTION WHEN others THEN
                    NEW.ts_ms := NULL;
                END;
            ELSE
                NEW.ts_ms := NEW.written_ms;
            END IF;
        END IF;
        RETURN NEW;
    END $$;
    DROP TRIGGER IF EXISTS stream_times ON stream;
    CREATE TRIGGER stream_times BEFORE INSERT ON stream
        FOR EACH ROW EXECUTE FUNCTION stream_times();
    CREATE TABLE IF NOT EXISTS retry (
        token TEXT PRIMARY KEY,
        due_ms BIGINT NOT NULL,
        dest TEXT NOT NULL,
        delivery TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS retry_due ON retry (due_ms);
    CREATE INDEX IF NOT EXISTS retry_dest_due ON retry (dest, due_ms);
    CREATE TABLE IF NOT EXISTS dead (
        seq BIGSERIAL PRIMARY KEY,
        letter TEXT NOT NULL,
        dest TEXT NOT NULL,
        error TEXT NOT NULL,
        at_ms BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS idem (
        key TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS idem_event ON idem (event_id);
    CREATE TABLE IF NOT EXISTS consumers (
        name TEXT PRIMARY KEY,
        seen_ms BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS consumer_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS rate_limits (
        dest TEXT PRIMARY KEY,
        next_free_ms BIGINT
    );
    CREATE TABLE IF NOT EXISTS alert_windows (
        dest TEXT PRIMARY KEY,
        until_ms BIGINT,
        counted_between BIGINT NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE IF NOT EXISTS tallies (
        dest TEXT PRIMARY KEY,
        delivered BIGINT NOT NULL DEFAULT 0,
        rate_limited BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS attempts (
        seq BIGSERIAL PRIMARY KEY,
        event_id TEXT NOT NULL,
        dest TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        status INTEGER,
        error TEXT,
        duration_ms BIGINT NOT NULL,
        entry TEXT
    );
    CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_id);
    CREATE INDEX IF NOT EXISTS attempts_at ON attempts (at_ms);
    CREATE TABLE IF NOT EXISTS forgotten (
        event_id TEXT PRIMARY KEY,
        at_ms BIGINT NOT NULL
    );",
    // 2: wake the workers at commit. One notification per statement (a
    // 10,000-row insert sends one), on the channel `<schema>_stream`;
    // Postgres delivers it when the transaction commits, so a rolled-back
    // insert wakes nobody. Retries need none: the worker knows their times.
    "CREATE OR REPLACE FUNCTION stream_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify(left(TG_TABLE_SCHEMA || '_stream', 63), '');
        RETURN NULL;
    END $$;
    DROP TRIGGER IF EXISTS stream_notify ON stream;
    CREATE TRIGGER stream_notify AFTER INSERT ON stream
        FOR EACH STATEMENT EXECUTE FUNCTION stream_notify();",
    // 3: destinations held (`events pause`), one row per hold; and due retries
    // read in (due, token) order from an index, so the deliveries a hold
    // parked together are released in event order.
    "CREATE TABLE IF NOT EXISTS holds (
        dest TEXT NOT NULL,
        kind TEXT NOT NULL,
        hold TEXT NOT NULL,
        PRIMARY KEY (dest, kind)
    );
    CREATE INDEX IF NOT EXISTS retry_dest_due_token ON retry (dest, due_ms, token);",
];

/// What [`migrate`] found and left: the version before (0 when the schema
/// was missing) and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: i32,
    pub to: i32,
}

/// The schema's version this build writes.
pub fn latest() -> i32 {
    MIGRATIONS.len() as i32
}

/// The SQL that creates or upgrades `schema` to [`latest`], without
/// `BEGIN`/`COMMIT`: what [`migrate`] runs inside its transaction. Every
/// statement is idempotent, and the version is never lowered.
fn body(schema: &str) -> String {
    let latest = latest();
    let mut sql = format!(
        "SELECT pg_advisory_xact_lock(hashtext('events schema ' || '{schema}'));
CREATE SCHEMA IF NOT EXISTS {schema};
SET LOCAL search_path TO {schema};
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
"
    );
    for migration in MIGRATIONS {
        sql.push_str(migration.trim());
        sql.push('\n');
    }
    sql.push_str(&format!(
        "UPDATE schema_version SET version = {latest} WHERE version < {latest};
INSERT INTO schema_version (version) SELECT {latest} WHERE NOT EXISTS (SELECT 1 FROM schema_version);
"
    ));
    sql
}

/// The script `events migrate --print-sql` prints: [`body`] in one
/// transaction, for a team's own migration tool.
pub fn script(schema: &str) -> String {
    format!(
        "-- events: the queue's schema {schema} at version {}, idempotent.\nBEGIN;\n{}COMMIT;\n",
        latest(),
        body(schema)
    )
}

/// Brings the schema up to date. When it already is, this is one read.
pub(super) fn migrate(client: &mut Client, schema: &str) -> Result<Migrated, postgres::Error> {
    let latest = latest();
    let current = client
        .query_opt(
            "SELECT version FROM schema_version WHERE to_regclass('schema_version') IS NOT NULL",
            &[],
        )
        .ok()
        .flatten()
        .map(|row| row.get::<_, i32>(0));
    if let Some(version) = current.filter(|v| *v >= latest) {
        return Ok(Migrated {
            from: version,
            to: version,
        });
    }
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('events schema ' || $1))",
        &[&schema],
    )?;
    // Read under the lock: another process may have just done it.
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{schema}.schema_version")],
        )?
        .get(0);
    let from = match exists {
        true => tx
            .query_opt(&format!("SELECT version FROM {schema}.schema_version"), &[])?
            .map_or(0, |row| row.get::<_, i32>(0)),
        false => 0,
    };
    if from < latest {
        tx.batch_execute(&body(schema))?;
    }
    tx.commit()?;
    Ok(Migrated {
        from,
        to: from.max(latest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `--print-sql` prints is exactly what `migrate` runs, in one
    /// transaction.
    #[test]
    fn the_printed_script_is_what_migrate_runs() {
        let script = script("queue_2");
        let body = body("queue_2");
        let inner = script
            .split_once("BEGIN;\n")
            .and_then(|(_, rest)| rest.strip_suffix("COMMIT;\n"))
            .expect("wrapped in BEGIN/COMMIT");
        assert_eq!(inner, body);
        assert!(body.contains("CREATE SCHEMA IF NOT EXISTS queue_2;"));
        assert!(body.contains("CREATE TABLE IF NOT EXISTS stream ("));
        for migration in MIGRATIONS {
            assert!(body.contains(migration.trim()));
        }
    }
}
