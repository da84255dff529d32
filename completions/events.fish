# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_events_global_optspecs
    string join \n v/verbose q/quiet redis-url= postgres-url= db= config= h/help V/version
end

function __fish_events_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_events_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_events_using_subcommand
    set -l cmd (__fish_events_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c events -n "__fish_events_needs_command" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_needs_command" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_needs_command" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_needs_command" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_needs_command" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_needs_command" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_needs_command" -s h -l help -d 'Print help'
complete -c events -n "__fish_events_needs_command" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_needs_command" -f -a "emit" -d 'Validate an event and put it on the queue; prints its id'
complete -c events -n "__fish_events_needs_command" -f -a "work" -d 'Deliver queued events to every destination, until SIGINT/SIGTERM'
complete -c events -n "__fish_events_needs_command" -f -a "replay" -d 'Put dead letters, history or a file of events back into delivery'
complete -c events -n "__fish_events_needs_command" -f -a "purge" -d 'Remove dead letters for good, all or those the filters select'
complete -c events -n "__fish_events_needs_command" -f -a "tail" -d 'Print each new event as it is written, until interrupted'
complete -c events -n "__fish_events_needs_command" -f -a "templates" -d 'List the event catalog, or preview every message'
complete -c events -n "__fish_events_needs_command" -f -a "status" -d 'Show the health of the pipeline: backlog, workers, retries, dead letters'
complete -c events -n "__fish_events_needs_command" -f -a "digest" -d 'Send one message summarising a window of history, per event type'
complete -c events -n "__fish_events_needs_command" -f -a "inspect" -d 'Show one event and, per destination, where its delivery stands and every attempt made'
complete -c events -n "__fish_events_needs_command" -f -a "forget" -d 'Erase one person\'s events: from the history, the retry set, the dead letters, the attempt records and the idempotency keys'
complete -c events -n "__fish_events_needs_command" -f -a "pause" -d 'Stop every worker sending to a destination until `resume` (or for a while)'
complete -c events -n "__fish_events_needs_command" -f -a "resume" -d 'Let workers send to a paused destination again: what it held is sent, in order, once each'
complete -c events -n "__fish_events_needs_command" -f -a "migrate" -d 'Create or upgrade the Postgres schema (EVENTS_PG_SCHEMA, default events)'
complete -c events -n "__fish_events_needs_command" -f -a "dashboard" -d 'Serve the on-call web view: backlog, destinations, dead letters, events'
complete -c events -n "__fish_events_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c events -n "__fish_events_needs_command" -f -a "man" -d 'Write man pages (one per subcommand)'
complete -c events -n "__fish_events_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c events -n "__fish_events_using_subcommand emit" -l email -d 'The `email` field' -r
complete -c events -n "__fish_events_using_subcommand emit" -l importer-name -d 'The `importer_name` field' -r
complete -c events -n "__fish_events_using_subcommand emit" -l plan -d 'The `plan` field' -r
complete -c events -n "__fish_events_using_subcommand emit" -l row-count -d 'The `row_count` field (a non-negative integer)' -r
complete -c events -n "__fish_events_using_subcommand emit" -l error -d 'The `error` field' -r
complete -c events -n "__fish_events_using_subcommand emit" -s f -l field -d 'Any field, typed by the catalog; repeatable' -r
complete -c events -n "__fish_events_using_subcommand emit" -l json -d 'Fields as a JSON object' -r
complete -c events -n "__fish_events_using_subcommand emit" -l idempotency-key -d 'A re-run with the same key within 24 h writes nothing and prints the first event\'s id' -r
complete -c events -n "__fish_events_using_subcommand emit" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand emit" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand emit" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand emit" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand emit" -l dry-run -d 'Validate and print the event and its message; write nothing'
complete -c events -n "__fish_events_using_subcommand emit" -l stdin -d 'Read events as JSON Lines from stdin'
complete -c events -n "__fish_events_using_subcommand emit" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand emit" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand emit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand emit" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand work" -l concurrency -d 'The most requests in flight at once per destination that sends one event per request (webhooks), from 1 to 256: each is a thread and a connection' -r
complete -c events -n "__fish_events_using_subcommand work" -l consumer -d 'This worker\'s name in the consumer group [default: host name and pid]' -r
complete -c events -n "__fish_events_using_subcommand work" -l only -d 'Deliver only to these destinations (by name); repeatable' -r
complete -c events -n "__fish_events_using_subcommand work" -l metrics-addr -d 'Serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. 127.0.0.1:9464 [default: off]' -r
complete -c events -n "__fish_events_using_subcommand work" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand work" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand work" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand work" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand work" -l burst -d 'Exit 0 once nothing is new, pending or due for retry within 5 s'
complete -c events -n "__fish_events_using_subcommand work" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand work" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand work" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand work" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand replay" -l since -d 'History from WHEN: RFC 3339 or a duration ago such as 90m, 2h, 7d (-90m means the same)' -r
complete -c events -n "__fish_events_using_subcommand replay" -l until -d 'History until WHEN (exclusive) [default: now]' -r
complete -c events -n "__fish_events_using_subcommand replay" -l file -d 'Events from a JSON Lines file, or - for stdin' -r -F
complete -c events -n "__fish_events_using_subcommand replay" -l type -d 'Only event types matching this glob; repeatable' -r
complete -c events -n "__fish_events_using_subcommand replay" -l to -d 'Only to this destination (by name)' -r
complete -c events -n "__fish_events_using_subcommand replay" -l limit -d 'Replay at most N events' -r
complete -c events -n "__fish_events_using_subcommand replay" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand replay" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand replay" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand replay" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand replay" -l dead -d 'Dead letters, each to the destination that failed (unless --to)'
complete -c events -n "__fish_events_using_subcommand replay" -l dry-run -d 'Print what would be replayed as JSON Lines (an export); change nothing'
complete -c events -n "__fish_events_using_subcommand replay" -s y -l yes -d 'Do not ask for confirmation'
complete -c events -n "__fish_events_using_subcommand replay" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand replay" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand replay" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand purge" -l type -d 'Only letters of event types matching this glob; repeatable' -r
complete -c events -n "__fish_events_using_subcommand purge" -l dest -d 'Only letters of deliveries to this destination (by name, configured or not); repeatable' -r
complete -c events -n "__fish_events_using_subcommand purge" -l before -d 'Only letters dead-lettered before WHEN: RFC 3339 or a duration ago such as 90m, 2h, 7d (-7d means the same)' -r
complete -c events -n "__fish_events_using_subcommand purge" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand purge" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand purge" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand purge" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand purge" -l dead -d 'Dead letters (the only thing purged, and required to say so)'
complete -c events -n "__fish_events_using_subcommand purge" -l dry-run -d 'Count what would be removed; remove nothing'
complete -c events -n "__fish_events_using_subcommand purge" -s y -l yes -d 'Do not ask for confirmation'
complete -c events -n "__fish_events_using_subcommand purge" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand purge" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand purge" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand purge" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand tail" -l type -d 'Only event types matching this glob; repeatable' -r
complete -c events -n "__fish_events_using_subcommand tail" -l format -d '`text`: each event\'s message, as the console destination prints it; `json`: each event as a JSON line' -r -f -a "text\t''
json\t''"
complete -c events -n "__fish_events_using_subcommand tail" -l since -d 'Start with the events written since WHEN (RFC 3339 or a duration ago such as 90m, 2h, 7d) rather than only new ones' -r
complete -c events -n "__fish_events_using_subcommand tail" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand tail" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand tail" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand tail" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand tail" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand tail" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand tail" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand tail" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand templates" -s f -l field -d 'Override a sample value; repeatable' -r
complete -c events -n "__fish_events_using_subcommand templates" -l format -r -f -a "table\t''
json\t''"
complete -c events -n "__fish_events_using_subcommand templates" -l to -d 'With --preview: what this destination (by name) would receive — its own template, its escaping, and whether its `when` routes the sample there' -r
complete -c events -n "__fish_events_using_subcommand templates" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand templates" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand templates" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand templates" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand templates" -l preview -d 'Render each message with sample values'
complete -c events -n "__fish_events_using_subcommand templates" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand templates" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand templates" -s h -l help -d 'Print help'
complete -c events -n "__fish_events_using_subcommand templates" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand status" -l format -r -f -a "table\t''
json\t''"
complete -c events -n "__fish_events_using_subcommand status" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand status" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand status" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand status" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand status" -l watch -d 'Refresh every second, with deliveries per second per destination, until Ctrl-C: in place on a terminal; one table (or, with `--format json`, one JSON line) per second otherwise'
complete -c events -n "__fish_events_using_subcommand status" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand status" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand status" -s h -l help -d 'Print help'
complete -c events -n "__fish_events_using_subcommand status" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand digest" -l since -d 'The window\'s start: RFC 3339 or a duration ago such as 24h, 7d' -r
complete -c events -n "__fish_events_using_subcommand digest" -l until -d 'The window\'s end (exclusive) [default: now]' -r
complete -c events -n "__fish_events_using_subcommand digest" -l to -d 'Send to this chat destination (by name); repeatable [default: every configured chat destination]' -r
complete -c events -n "__fish_events_using_subcommand digest" -l max-wait -d 'Give up on a destination still rate limited or failing once the digest has waited this long in all (exit 1), such as 30s, 5m, 1h (at most a day)' -r
complete -c events -n "__fish_events_using_subcommand digest" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand digest" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand digest" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand digest" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand digest" -l dry-run -d 'Print the digest; send nothing'
complete -c events -n "__fish_events_using_subcommand digest" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand digest" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand digest" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand digest" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand inspect" -l format -r -f -a "table\t''
json\t''"
complete -c events -n "__fish_events_using_subcommand inspect" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand inspect" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand inspect" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand inspect" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand inspect" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand inspect" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand inspect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand inspect" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand forget" -l email -d 'The events whose payload\'s `email` is E' -r
complete -c events -n "__fish_events_using_subcommand forget" -s f -l field -d 'The events whose payload field KEY is VALUE; repeatable' -r
complete -c events -n "__fish_events_using_subcommand forget" -l format -r -f -a "table\t''
json\t''"
complete -c events -n "__fish_events_using_subcommand forget" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand forget" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand forget" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand forget" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand forget" -l dry-run -d 'Count what would be erased; erase nothing'
complete -c events -n "__fish_events_using_subcommand forget" -s y -l yes -d 'Do not ask for confirmation'
complete -c events -n "__fish_events_using_subcommand forget" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand forget" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand forget" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand forget" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand pause" -l for -d 'End the pause by itself after this long, such as 30s, 15m, 2h, 1d (at most a year) [default: until `events resume`]' -r
complete -c events -n "__fish_events_using_subcommand pause" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand pause" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand pause" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand pause" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand pause" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand pause" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand pause" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand pause" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand resume" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand resume" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand resume" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand resume" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand resume" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand resume" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand resume" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand resume" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand migrate" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand migrate" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand migrate" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand migrate" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand migrate" -l print-sql -d 'Print the SQL that creates the schema (idempotent, in one transaction), for your own migration tool; connects to nothing'
complete -c events -n "__fish_events_using_subcommand migrate" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand migrate" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand migrate" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand dashboard" -l addr -d 'Listen on this address (port 0 picks a free one)' -r
complete -c events -n "__fish_events_using_subcommand dashboard" -l public-url -d 'The URL people open it at, behind a proxy: its host is accepted in the Host header besides the address listened on' -r
complete -c events -n "__fish_events_using_subcommand dashboard" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand dashboard" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand dashboard" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand dashboard" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand dashboard" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand dashboard" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand dashboard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c events -n "__fish_events_using_subcommand dashboard" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand completions" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand completions" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand completions" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand completions" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand completions" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand completions" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand completions" -s h -l help -d 'Print help'
complete -c events -n "__fish_events_using_subcommand completions" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand man" -l dir -d 'Write the pages into this directory instead of printing `events(1)`' -r -F
complete -c events -n "__fish_events_using_subcommand man" -l redis-url -d 'Use the Redis at this URL (redis:// or rediss://, with password; redis+sentinel://HOST:PORT,…/SERVICE for the primary that Redis Sentinel names) instead of the embedded store' -r
complete -c events -n "__fish_events_using_subcommand man" -l postgres-url -d 'Use the PostgreSQL database at this URL (postgres:// or postgresql://) for the queue, in the schema EVENTS_PG_SCHEMA (default events); wins over --redis-url' -r
complete -c events -n "__fish_events_using_subcommand man" -l db -d 'The embedded store\'s file [default: $XDG_STATE_HOME/events/events.db]' -r -F
complete -c events -n "__fish_events_using_subcommand man" -l config -d 'A TOML file adding event types and destinations [default: ./events.toml when present]' -r -F
complete -c events -n "__fish_events_using_subcommand man" -s v -l verbose -d 'Say more on stderr (every retry and claim)'
complete -c events -n "__fish_events_using_subcommand man" -s q -l quiet -d 'Say less on stderr (only failures)'
complete -c events -n "__fish_events_using_subcommand man" -s h -l help -d 'Print help'
complete -c events -n "__fish_events_using_subcommand man" -s V -l version -d 'Print version'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "emit" -d 'Validate an event and put it on the queue; prints its id'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "work" -d 'Deliver queued events to every destination, until SIGINT/SIGTERM'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "replay" -d 'Put dead letters, history or a file of events back into delivery'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "purge" -d 'Remove dead letters for good, all or those the filters select'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "tail" -d 'Print each new event as it is written, until interrupted'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "templates" -d 'List the event catalog, or preview every message'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "status" -d 'Show the health of the pipeline: backlog, workers, retries, dead letters'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "digest" -d 'Send one message summarising a window of history, per event type'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "inspect" -d 'Show one event and, per destination, where its delivery stands and every attempt made'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "forget" -d 'Erase one person\'s events: from the history, the retry set, the dead letters, the attempt records and the idempotency keys'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "pause" -d 'Stop every worker sending to a destination until `resume` (or for a while)'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "resume" -d 'Let workers send to a paused destination again: what it held is sent, in order, once each'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "migrate" -d 'Create or upgrade the Postgres schema (EVENTS_PG_SCHEMA, default events)'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "dashboard" -d 'Serve the on-call web view: backlog, destinations, dead letters, events'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "man" -d 'Write man pages (one per subcommand)'
complete -c events -n "__fish_events_using_subcommand help; and not __fish_seen_subcommand_from emit work replay purge tail templates status digest inspect forget pause resume migrate dashboard completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
