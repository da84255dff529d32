
use builtin;
use str;

set edit:completion:arg-completer[events] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'events'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'events'= {
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand emit 'Validate an event and put it on the queue; prints its id'
            cand work 'Deliver queued events to every destination, until SIGINT/SIGTERM'
            cand replay 'Put dead letters, history or a file of events back into delivery'
            cand purge 'Remove dead letters for good, all or those the filters select'
            cand tail 'Print each new event as it is written, until interrupted'
            cand templates 'List the event catalog, or preview every message'
            cand status 'Show the health of the pipeline: backlog, workers, retries, dead letters'
            cand digest 'Send one message summarising a window of history, per event type'
            cand inspect 'Show one event and, per destination, where its delivery stands and every attempt made'
            cand forget 'Erase one person''s events: from the history, the retry set, the dead letters, the attempt records and the idempotency keys'
            cand pause 'Stop every worker sending to a destination until `resume` (or for a while)'
            cand resume 'Let workers send to a paused destination again: what it held is sent, in order, once each'
            cand migrate 'Create or upgrade the Postgres schema (EVENTS_PG_SCHEMA, default events)'
            cand dashboard 'Serve the on-call web view: backlog, destinations, dead letters, events'
            cand completions 'Print a shell completion script'
            cand man 'Write man pages (one per subcommand)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'events;emit'= {
            cand --email 'The `email` field'
            cand --importer-name 'The `importer_name` field'
            cand --plan 'The `plan` field'
            cand --row-count 'The `row_count` field (a non-negative integer)'
            cand --error 'The `error` field'
            cand -f 'Any field, typed by the catalog; repeatable'
            cand --field 'Any field, typed by the catalog; repeatable'
            cand --json 'Fields as a JSON object'
            cand --idempotency-key 'A re-run with the same key within 24 h writes nothing and prints the first event''s id'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand --dry-run 'Validate and print the event and its message; write nothing'
            cand --stdin 'Read events as JSON Lines from stdin'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;work'= {
            cand --concurrency 'The most requests in flight at once per destination that sends one event per request (webhooks), from 1 to 256: each is a thread and a connection'
            cand --consumer 'This worker''s name in the consumer group [default: host name and pid]'
            cand --only 'Deliver only to these destinations (by name); repeatable'
            cand --metrics-addr 'Serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. 127.0.0.1:9464 [default: off]'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand --burst 'Exit 0 once nothing is new, pending or due for retry within 5 s'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;replay'= {
            cand --since 'History from WHEN: RFC 3339 or a duration ago such as 90m, 2h, 7d (-90m means the same)'
            cand --until 'History until WHEN (exclusive) [default: now]'
            cand --file 'Events from a JSON Lines file, or - for stdin'
            cand --type 'Only event types matching this glob; repeatable'
            cand --to 'Only to this destination (by name)'
            cand --limit 'Replay at most N events'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand --dead 'Dead letters, each to the destination that failed (unless --to)'
            cand --dry-run 'Print what would be replayed as JSON Lines (an export); change nothing'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;purge'= {
            cand --type 'Only letters of event types matching this glob; repeatable'
            cand --dest 'Only letters of deliveries to this destination (by name, configured or not); repeatable'
            cand --before 'Only letters dead-lettered before WHEN: RFC 3339 or a duration ago such as 90m, 2h, 7d (-7d means the same)'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand --dead 'Dead letters (the only thing purged, and required to say so)'
            cand --dry-run 'Count what would be removed; remove nothing'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;tail'= {
            cand --type 'Only event types matching this glob; repeatable'
            cand --format '`text`: each event''s message, as the console destination prints it; `json`: each event as a JSON line'
            cand --since 'Start with the events written since WHEN (RFC 3339 or a duration ago such as 90m, 2h, 7d) rather than only new ones'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;templates'= {
            cand -f 'Override a sample value; repeatable'
            cand --field 'Override a sample value; repeatable'
            cand --format 'format'
            cand --to 'With --preview: what this destination (by name) would receive — its own template, its escaping, and whether its `when` routes the sample there'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand --preview 'Render each message with sample values'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;status'= {
            cand --format 'format'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand --watch 'Refresh every second, with deliveries per second per destination, until Ctrl-C: in place on a terminal; one table (or, with `--format json`, one JSON line) per second otherwise'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;digest'= {
            cand --since 'The window''s start: RFC 3339 or a duration ago such as 24h, 7d'
            cand --until 'The window''s end (exclusive) [default: now]'
            cand --to 'Send to this chat destination (by name); repeatable [default: every configured chat destination]'
            cand --max-wait 'Give up on a destination still rate limited or failing once the digest has waited this long in all (exit 1), such as 30s, 5m, 1h (at most a day)'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand --dry-run 'Print the digest; send nothing'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;inspect'= {
            cand --format 'format'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;forget'= {
            cand --email 'The events whose payload''s `email` is E'
            cand -f 'The events whose payload field KEY is VALUE; repeatable'
            cand --field 'The events whose payload field KEY is VALUE; repeatable'
            cand --format 'format'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand --dry-run 'Count what would be erased; erase nothing'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;pause'= {
            cand --for 'End the pause by itself after this long, such as 30s, 15m, 2h, 1d (at most a year) [default: until `events resume`]'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;resume'= {
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;migrate'= {
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand --print-sql 'Print the SQL that creates the schema (idempotent, in one transaction), for your own migration tool; connects to nothing'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;dashboard'= {
            cand --addr 'Listen on this address (port 0 picks a free one)'
            cand --public-url 'The URL people open it at, behind a proxy: its host is accepted in the Host header besides the address listened on'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;completions'= {
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;man'= {
            cand --dir 'Write the pages into this directory instead of printing `events(1)`'
            cand --redis-url 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store'
            cand --postgres-url 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url'
            cand --db 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]'
            cand --config 'A TOML file adding event types and destinations [default: ./events.toml when present]'
            cand -v 'Say more on stderr (every retry and claim)'
            cand --verbose 'Say more on stderr (every retry and claim)'
            cand -q 'Say less on stderr (only failures)'
            cand --quiet 'Say less on stderr (only failures)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'events;help'= {
            cand emit 'Validate an event and put it on the queue; prints its id'
            cand work 'Deliver queued events to every destination, until SIGINT/SIGTERM'
            cand replay 'Put dead letters, history or a file of events back into delivery'
            cand purge 'Remove dead letters for good, all or those the filters select'
            cand tail 'Print each new event as it is written, until interrupted'
            cand templates 'List the event catalog, or preview every message'
            cand status 'Show the health of the pipeline: backlog, workers, retries, dead letters'
            cand digest 'Send one message summarising a window of history, per event type'
            cand inspect 'Show one event and, per destination, where its delivery stands and every attempt made'
            cand forget 'Erase one person''s events: from the history, the retry set, the dead letters, the attempt records and the idempotency keys'
            cand pause 'Stop every worker sending to a destination until `resume` (or for a while)'
            cand resume 'Let workers send to a paused destination again: what it held is sent, in order, once each'
            cand migrate 'Create or upgrade the Postgres schema (EVENTS_PG_SCHEMA, default events)'
            cand dashboard 'Serve the on-call web view: backlog, destinations, dead letters, events'
            cand completions 'Print a shell completion script'
            cand man 'Write man pages (one per subcommand)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'events;help;emit'= {
        }
        &'events;help;work'= {
        }
        &'events;help;replay'= {
        }
        &'events;help;purge'= {
        }
        &'events;help;tail'= {
        }
        &'events;help;templates'= {
        }
        &'events;help;status'= {
        }
        &'events;help;digest'= {
        }
        &'events;help;inspect'= {
        }
        &'events;help;forget'= {
        }
        &'events;help;pause'= {
        }
        &'events;help;resume'= {
        }
        &'events;help;migrate'= {
        }
        &'events;help;dashboard'= {
        }
        &'events;help;completions'= {
        }
        &'events;help;man'= {
        }
        &'events;help;help'= {
        }
    ]
    $completions[$command]
}
