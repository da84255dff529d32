
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'events' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'events'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'events' {
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('emit', 'emit', [CompletionResultType]::ParameterValue, 'Validate an event and put it on the queue; prints its id')
            [CompletionResult]::new('work', 'work', [CompletionResultType]::ParameterValue, 'Deliver queued events to every destination, until SIGINT/SIGTERM')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Put dead letters, history or a file of events back into delivery')
            [CompletionResult]::new('purge', 'purge', [CompletionResultType]::ParameterValue, 'Remove dead letters for good, all or those the filters select')
            [CompletionResult]::new('tail', 'tail', [CompletionResultType]::ParameterValue, 'Print each new event as it is written, until interrupted')
            [CompletionResult]::new('templates', 'templates', [CompletionResultType]::ParameterValue, 'List the event catalog, or preview every message')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the health of the pipeline: backlog, workers, retries, dead letters')
            [CompletionResult]::new('digest', 'digest', [CompletionResultType]::ParameterValue, 'Send one message summarising a window of history, per event type')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show one event and, per destination, where its delivery stands and every attempt made')
            [CompletionResult]::new('forget', 'forget', [CompletionResultType]::ParameterValue, 'Erase one person''s events: from the history, the retry set, the dead letters, the attempt records and the idempotency keys')
            [CompletionResult]::new('pause', 'pause', [CompletionResultType]::ParameterValue, 'Stop every worker sending to a destination until `resume` (or for a while)')
            [CompletionResult]::new('resume', 'resume', [CompletionResultType]::ParameterValue, 'Let workers send to a paused destination again: what it held is sent, in order, once each')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Create or upgrade the Postgres schema (EVENTS_PG_SCHEMA, default events)')
            [CompletionResult]::new('dashboard', 'dashboard', [CompletionResultType]::ParameterValue, 'Serve the on-call web view: backlog, destinations, dead letters, events')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages (one per subcommand)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'events;emit' {
            [CompletionResult]::new('--email', '--email', [CompletionResultType]::ParameterName, 'The `email` field')
            [CompletionResult]::new('--importer-name', '--importer-name', [CompletionResultType]::ParameterName, 'The `importer_name` field')
            [CompletionResult]::new('--plan', '--plan', [CompletionResultType]::ParameterName, 'The `plan` field')
            [CompletionResult]::new('--row-count', '--row-count', [CompletionResultType]::ParameterName, 'The `row_count` field (a non-negative integer)')
            [CompletionResult]::new('--error', '--error', [CompletionResultType]::ParameterName, 'The `error` field')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Any field, typed by the catalog; repeatable')
            [CompletionResult]::new('--field', '--field', [CompletionResultType]::ParameterName, 'Any field, typed by the catalog; repeatable')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Fields as a JSON object')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'A re-run with the same key within 24 h writes nothing and prints the first event''s id')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Validate and print the event and its message; write nothing')
            [CompletionResult]::new('--stdin', '--stdin', [CompletionResultType]::ParameterName, 'Read events as JSON Lines from stdin')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;work' {
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'The most requests in flight at once per destination that sends one event per request (webhooks), from 1 to 256: each is a thread and a connection')
            [CompletionResult]::new('--consumer', '--consumer', [CompletionResultType]::ParameterName, 'This worker''s name in the consumer group [default: host name and pid]')
            [CompletionResult]::new('--only', '--only', [CompletionResultType]::ParameterName, 'Deliver only to these destinations (by name); repeatable')
            [CompletionResult]::new('--metrics-addr', '--metrics-addr', [CompletionResultType]::ParameterName, 'Serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. 127.0.0.1:9464 [default: off]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('--burst', '--burst', [CompletionResultType]::ParameterName, 'Exit 0 once nothing is new, pending or due for retry within 5 s')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;replay' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'History from WHEN: RFC 3339 or a duration ago such as 90m, 2h, 7d (-90m means the same)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'History until WHEN (exclusive) [default: now]')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Events from a JSON Lines file, or - for stdin')
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'Only event types matching this glob; repeatable')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Only to this destination (by name)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Replay at most N events')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('--dead', '--dead', [CompletionResultType]::ParameterName, 'Dead letters, each to the destination that failed (unless --to)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print what would be replayed as JSON Lines (an export); change nothing')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;purge' {
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'Only letters of event types matching this glob; repeatable')
            [CompletionResult]::new('--dest', '--dest', [CompletionResultType]::ParameterName, 'Only letters of deliveries to this destination (by name, configured or not); repeatable')
            [CompletionResult]::new('--before', '--before', [CompletionResultType]::ParameterName, 'Only letters dead-lettered before WHEN: RFC 3339 or a duration ago such as 90m, 2h, 7d (-7d means the same)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('--dead', '--dead', [CompletionResultType]::ParameterName, 'Dead letters (the only thing purged, and required to say so)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Count what would be removed; remove nothing')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;tail' {
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'Only event types matching this glob; repeatable')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, '`text`: each event''s message, as the console destination prints it; `json`: each event as a JSON line')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Start with the events written since WHEN (RFC 3339 or a duration ago such as 90m, 2h, 7d) rather than only new ones')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;templates' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Override a sample value; repeatable')
            [CompletionResult]::new('--field', '--field', [CompletionResultType]::ParameterName, 'Override a sample value; repeatable')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'format')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'With --preview: what this destination (by name) would receive — its own template, its escaping, and whether its `when` routes the sample there')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('--preview', '--preview', [CompletionResultType]::ParameterName, 'Render each message with sample values')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;status' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'format')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'Refresh every second, with deliveries per second per destination, until Ctrl-C: in place on a terminal; one table (or, with `--format json`, one JSON line) per second otherwise')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;digest' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'The window''s start: RFC 3339 or a duration ago such as 24h, 7d')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'The window''s end (exclusive) [default: now]')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Send to this chat destination (by name); repeatable [default: every configured chat destination]')
            [CompletionResult]::new('--max-wait', '--max-wait', [CompletionResultType]::ParameterName, 'Give up on a destination still rate limited or failing once the digest has waited this long in all (exit 1), such as 30s, 5m, 1h (at most a day)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the digest; send nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;inspect' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'format')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;forget' {
            [CompletionResult]::new('--email', '--email', [CompletionResultType]::ParameterName, 'The events whose payload''s `email` is E')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The events whose payload field KEY is VALUE; repeatable')
            [CompletionResult]::new('--field', '--field', [CompletionResultType]::ParameterName, 'The events whose payload field KEY is VALUE; repeatable')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'format')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Count what would be erased; erase nothing')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;pause' {
            [CompletionResult]::new('--for', '--for', [CompletionResultType]::ParameterName, 'End the pause by itself after this long, such as 30s, 15m, 2h, 1d (at most a year) [default: until `events resume`]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;resume' {
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;migrate' {
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('--print-sql', '--print-sql', [CompletionResultType]::ParameterName, 'Print the SQL that creates the schema (idempotent, in one transaction), for your own migration tool; connects to nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;dashboard' {
            [CompletionResult]::new('--addr', '--addr', [CompletionResultType]::ParameterName, 'Listen on this address (port 0 picks a free one)')
            [CompletionResult]::new('--public-url', '--public-url', [CompletionResultType]::ParameterName, 'The URL people open it at, behind a proxy: its host is accepted in the Host header besides the address listened on')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;completions' {
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;man' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Write the pages into this directory instead of printing `events(1)`')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store')
            [CompletionResult]::new('--postgres-url', '--postgres-url', [CompletionResultType]::ParameterName, 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The embedded store''s file [default: $XDG_STATE_HOME/events/events.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file adding event types and destinations [default: ./events.toml when present]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (every retry and claim)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say less on stderr (only failures)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'events;help' {
            [CompletionResult]::new('emit', 'emit', [CompletionResultType]::ParameterValue, 'Validate an event and put it on the queue; prints its id')
            [CompletionResult]::new('work', 'work', [CompletionResultType]::ParameterValue, 'Deliver queued events to every destination, until SIGINT/SIGTERM')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Put dead letters, history or a file of events back into delivery')
            [CompletionResult]::new('purge', 'purge', [CompletionResultType]::ParameterValue, 'Remove dead letters for good, all or those the filters select')
            [CompletionResult]::new('tail', 'tail', [CompletionResultType]::ParameterValue, 'Print each new event as it is written, until interrupted')
            [CompletionResult]::new('templates', 'templates', [CompletionResultType]::ParameterValue, 'List the event catalog, or preview every message')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the health of the pipeline: backlog, workers, retries, dead letters')
            [CompletionResult]::new('digest', 'digest', [CompletionResultType]::ParameterValue, 'Send one message summarising a window of history, per event type')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show one event and, per destination, where its delivery stands and every attempt made')
            [CompletionResult]::new('forget', 'forget', [CompletionResultType]::ParameterValue, 'Erase one person''s events: from the history, the retry set, the dead letters, the attempt records and the idempotency keys')
            [CompletionResult]::new('pause', 'pause', [CompletionResultType]::ParameterValue, 'Stop every worker sending to a destination until `resume` (or for a while)')
            [CompletionResult]::new('resume', 'resume', [CompletionResultType]::ParameterValue, 'Let workers send to a paused destination again: what it held is sent, in order, once each')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Create or upgrade the Postgres schema (EVENTS_PG_SCHEMA, default events)')
            [CompletionResult]::new('dashboard', 'dashboard', [CompletionResultType]::ParameterValue, 'Serve the on-call web view: backlog, destinations, dead letters, events')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages (one per subcommand)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'events;help;emit' {
            break
        }
        'events;help;work' {
            break
        }
        'events;help;replay' {
            break
        }
        'events;help;purge' {
            break
        }
        'events;help;tail' {
            break
        }
        'events;help;templates' {
            break
        }
        'events;help;status' {
            break
        }
        'events;help;digest' {
            break
        }
        'events;help;inspect' {
            break
        }
        'events;help;forget' {
            break
        }
        'events;help;pause' {
            break
        }
        'events;help;resume' {
            break
        }
        'events;help;migrate' {
            break
        }
        'events;help;dashboard' {
            break
        }
        'events;help;completions' {
            break
        }
        'events;help;man' {
            break
        }
        'events;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
