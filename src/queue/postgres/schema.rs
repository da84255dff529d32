//! The queue's schema and its migrations, applied in order, in one
//! transaction, by whichever process finds them missing first: the others
//! wait on the advisory lock and find them done.

use postgres::Client;

/// Schema migrations, applied in order; `schema_version` holds how many
/// ran. Append only: a released migration is never edited. Written into
/// the schema named by the connection's `search_path`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the whole queue, as the SQLite backend keeps it. `id`, `ts`,
    // `ts_ms` and `written_ms` may be left out by a producer writing SQL:
    // the write time defaults to now, `ts_ms` follows `ts` (or the write
    // time), and an event without `id` gets one derived from its row.
    "CREATE TABLE stream (
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
    CREATE INDEX stream_unsettled ON stream (seq) WHERE state < 2;
    CREATE INDEX stream_ts ON stream (ts_ms, seq);
    CREATE INDEX stream_written ON stream (written_ms);
    CREATE INDEX stream_id ON stream (id);
    CREATE FUNCTION stream_times() RETURNS trigger LANGUAGE plpgsql AS $$
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
    CREATE TRIGGER stream_times BEFORE INSERT ON stream
        FOR EACH ROW EXECUTE FUNCTION stream_times();
    CREATE TABLE retry (
        token TEXT PRIMARY KEY,
        due_ms BIGINT NOT NULL,
        dest TEXT NOT NULL,
        delivery TEXT NOT NULL
    );
    CREATE INDEX retry_due ON retry (due_ms);
    CREATE INDEX retry_dest_due ON retry (dest, due_ms);
    CREATE TABLE dead (
        seq BIGSERIAL PRIMARY KEY,
        letter TEXT NOT NULL,
        dest TEXT NOT NULL,
        error TEXT NOT NULL,
        at_ms BIGINT NOT NULL
    );
    CREATE TABLE idem (
        key TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX idem_event ON idem (event_id);
    CREATE TABLE consumers (
        name TEXT PRIMARY KEY,
        seen_ms BIGINT NOT NULL
    );
    CREATE TABLE consumer_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE TABLE rate_limits (
        dest TEXT PRIMARY KEY,
        next_free_ms BIGINT
    );
    CREATE TABLE alert_windows (
        dest TEXT PRIMARY KEY,
        until_ms BIGINT,
        counted_between BIGINT NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE tallies (
        dest TEXT PRIMARY KEY,
        delivered BIGINT NOT NULL DEFAULT 0,
        rate_limited BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE attempts (
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
    CREATE INDEX attempts_event ON attempts (event_id);
    CREATE INDEX attempts_at ON attempts (at_ms);
    CREATE TABLE forgotten (
        event_id TEXT PRIMARY KEY,
        at_ms BIGINT NOT NULL
    );",
];

/// Brings the schema up to date. When it already is, this is one read.
pub(super) fn migrate(client: &mut Client, schema: &str) -> Result<(), postgres::Error> {
    let latest = MIGRATIONS.len() as i32;
    let current = client
        .query_opt(
            "SELECT version FROM schema_version WHERE to_regclass('schema_version') IS NOT NULL",
            &[],
        )
        .ok()
        .flatten()
        .map(|row| row.get::<_, i32>(0));
    if current == Some(latest) {
        return Ok(());
    }
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('events schema ' || $1))",
        &[&schema],
    )?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         SET LOCAL search_path TO {schema};
         CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
    ))?;
    let version = match tx.query_opt("SELECT version FROM schema_version", &[])? {
        Some(row) => row.get::<_, i32>(0),
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])?;
            0
        }
    };
    for migration in MIGRATIONS.iter().skip(version.max(0) as usize) {
        tx.batch_execute(migration)?;
    }
    if version < latest {
        tx.execute("UPDATE schema_version SET version = $1", &[&latest])?;
    }
    tx.commit()
}
