-- 0001_core: actors, the open-work table, the append-only history, counts, runners, batches,
-- metrics, the maintenance log, retention, and the three roles.
-- Forward-only; applied once inside its own transaction by `turing db up`.

-- Roles are cluster-wide: create them only when missing so two databases (or two installers)
-- on one cluster do not fail on each other.
do $roles$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'turing_admin') then
        create role turing_admin nologin;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'turing_runner') then
        create role turing_runner nologin;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'turing_viewer') then
        create role turing_viewer nologin;
    end if;
end
$roles$;

comment on schema turing is
'Turing: orchestration of AI models, scripts and humans over data in PostgreSQL. '
'Public API functions are plain verbs; names starting with _ are internal.';

create table turing.actors (
    actor_id integer generated always as identity primary key,
    name text not null unique
    constraint actors_name_format check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind text not null
    constraint actors_kind_known check (kind in ('llm', 'script', 'sql', 'human')),
    model text not null,
    work_query text,
    prompt_template text,
    output_schema jsonb,
    script text,
    sql_function text,
    on_complete text,
    inbox text[] not null default '{}',
    outbox text[] not null default '{}',
    batch_size integer not null default 10
    constraint actors_batch_size_positive check (batch_size between 1 and 10000),
    buffer_size integer not null default 1000
    constraint actors_buffer_size_positive check (buffer_size between 1 and 1000000),
    timeout interval not null default interval '5 minutes'
    constraint actors_timeout_positive check (timeout > interval '0'),
    lease interval not null default interval '30 seconds'
    constraint actors_lease_positive check (lease > interval '0'),
    max_attempts integer not null default 3
    constraint actors_max_attempts_positive check (max_attempts between 1 and 100),
    backoff_base interval not null default interval '10 seconds',
    backoff_max interval not null default interval '1 hour',
    priority integer not null default 0,
    enabled boolean not null default true,
    raq_stage text,
    options jsonb not null default '{}',
    description text,
    created_at timestamptz not null default clock_timestamp(),
    updated_at timestamptz not null default clock_timestamp(),
    constraint actors_llm_has_prompt check (
        kind <> 'llm' or (prompt_template is not null and output_schema is not null)
    ),
    constraint actors_script_has_entry check (kind <> 'script' or script is not null),
    constraint actors_sql_has_function check (kind <> 'sql' or sql_function is not null)
);

comment on table turing.actors is
'One row per actor: who does a step of a pipeline (an LLM, a script, a SQL function or a person), '
'where its work comes from (work_query), and how it is run (timeout, lease, attempts, backoff). '
'Write it through turing.register_actor(), which validates the definition.';
comment on column turing.actors.name is 'Stable identifier used by the CLI and the SQL API.';
comment on column turing.actors.kind is
'llm (Ollama chat), script (subprocess: JSON on stdin/stdout), sql (calls sql_function), '
'human (a person answers through `turing human`).';
comment on column turing.actors.model is
'The resource a runner serves: the Ollama model for llm actors (e.g. qwen2.5:7b); '
'"cpu" by default for script and sql actors; "human" for human actors. '
'`turing-runner --model M` drains every enabled actor whose model is M.';
comment on column turing.actors.work_query is
'One read-only SELECT returning subject_id (plus optional input columns); its rows are this '
'actor''s inbox. NULL for actors fed only by submit(), spawn() or the pgmq inbox.';
comment on column turing.actors.prompt_template is
'llm only: the prompt, with {placeholders} rendered strictly from the ticket input.';
comment on column turing.actors.output_schema is
'llm only: the JSON schema sent as Ollama `format` and validated on every answer.';
comment on column turing.actors.script is
'script only: the command line run as a subprocess (JSON input on stdin, JSON output on stdout).';
comment on column turing.actors.sql_function is
'sql only: a function f(p_subject_id text, p_input jsonb) returning jsonb, run as the actor.';
comment on column turing.actors.on_complete is
'Optional function f(p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb) '
'returning void, run in the same transaction as the completion: it writes the domain rows '
'(the outbox status) and may call turing.spawn(). If it raises, the attempt fails instead.';
comment on column turing.actors.inbox is
'Declared statuses (or queues) this actor reads; used by `turing check` and `turing graph`.';
comment on column turing.actors.outbox is
'Declared statuses this actor writes; another actor''s inbox should list each of them.';
comment on column turing.actors.batch_size is
'Tickets a runner claims for this actor at once (the runner''s --batch caps it).';
comment on column turing.actors.buffer_size is
'Most pending tickets discover() keeps materialised for this actor.';
comment on column turing.actors.timeout is
'Hard limit of one attempt; past it the runner cancels the call and reap() takes the ticket back.';
comment on column turing.actors.lease is
'How long a claim holds without a heartbeat. A dead runner''s work is retried after at most '
'this long (plus the reap interval); heartbeats extend it up to started_at + timeout.';
comment on column turing.actors.max_attempts is
'Attempts before a subject''s ticket goes to the dead letter (status dead).';
comment on column turing.actors.backoff_base is
'First retry delay; attempt n waits backoff_base * 2^(n-1), capped at backoff_max, '
'with +/-25 % jitter.';
comment on column turing.actors.priority is
'Higher is claimed first among the actors of one model.';
comment on column turing.actors.raq_stage is
'Free label of the pipeline stage (the original system''s RAQ stage), for grouping in reports.';
comment on column turing.actors.options is
'Executor options: for llm the Ollama options (num_ctx, temperature, num_predict, seed); '
'for script e.g. {"cwd": "..."}.';

-- why: runners claim by model, so the model of an open ticket is kept on the ticket itself
-- (copied from its actor, kept in step by register_actor) and the claim index needs no join.
create sequence turing.ticket_id_seq as bigint;
comment on sequence turing.ticket_id_seq is
'Ticket ids, shared by ticket_open and ticket_history: a ticket keeps its id when it finishes.';

create table turing.ticket_open (
    ticket_id bigint primary key default nextval('turing.ticket_id_seq'),
    actor_id integer not null references turing.actors (actor_id),
    model text not null,
    subject_id text not null,
    status text not null default 'pending'
    constraint ticket_open_status_open check (status in ('pending', 'running')),
    attempt integer not null default 1 constraint ticket_open_attempt_positive check (attempt >= 1),
    priority integer not null default 0,
    input jsonb not null default '{}',
    source text not null
    constraint ticket_open_source_known check (
        source in ('discover', 'submit', 'spawn', 'retry', 'inbox')
    ),
    chain_id bigint not null,
    chain_depth integer not null default 0
    constraint ticket_open_chain_depth check (chain_depth between 0 and 20),
    parent_ticket_id bigint,
    created_at timestamptz not null default clock_timestamp(),
    run_after timestamptz not null default '-infinity',
    started_at timestamptz,
    worker text,
    batch_id bigint,
    lease_token uuid,
    lease_expires_at timestamptz,
    heartbeat_at timestamptz,
    last_error text,
    constraint ticket_open_lease_iff_running check (
        (status = 'running')
        = (lease_token is not null and lease_expires_at is not null and started_at is not null)
    ),
    constraint ticket_open_started_after_created check (started_at >= created_at)
);

comment on table turing.ticket_open is
'The hot table: open work only (pending and running). A ticket lives here while it can be '
'claimed or is being run, then moves (same ticket_id) to ticket_history in the transaction that '
'finishes it. Kept small on purpose so claims stay fast while history grows to tens of millions '
'of rows. Read both through the view turing.tickets.';
comment on column turing.ticket_open.subject_id is
'The domain row this ticket works on (as text, whatever the domain key type).';
comment on column turing.ticket_open.model is 'Copy of actors.model; what claim_batch() filters on.';
comment on column turing.ticket_open.attempt is 'Attempt number; a retry is a new ticket with attempt + 1.';
comment on column turing.ticket_open.input is
'The ticket input: the work_query''s extra columns, or what submit()/spawn() passed.';
comment on column turing.ticket_open.chain_id is
'Root ticket id of the chain this work belongs to (spawn() keeps it; discover and submit start one).';
comment on column turing.ticket_open.chain_depth is 'Spawn depth from the chain root; at most 20.';
comment on column turing.ticket_open.run_after is 'Not claimable before this time (retry backoff).';
comment on column turing.ticket_open.lease_token is
'Fencing token of the current claim: complete/fail/heartbeat act only when it matches.';
comment on column turing.ticket_open.lease_expires_at is
'When the claim lapses without a heartbeat; reap() takes back tickets past it.';
comment on column turing.ticket_open.last_error is 'Error of the previous attempt, for a retry.';

-- why: the claim path. Only pending rows are in it, ordered the way claim_batch picks them,
-- so a claim reads a handful of index entries whatever the size of the table or the history.
create index ticket_open_claimable on turing.ticket_open (
    model, priority desc, run_after, ticket_id
) where status = 'pending';
-- why: invariant 1 — at most one open ticket per (actor, subject); also the dedup for discover.
create unique index ticket_open_actor_subject on turing.ticket_open (actor_id, subject_id);
-- why: reap() finds expired leases without scanning pending rows.
create index ticket_open_running_lease on turing.ticket_open (lease_expires_at)
where status = 'running';
-- why: release_worker() and the runners view find a runner's claims.
create index ticket_open_worker on turing.ticket_open (worker) where status = 'running';

create table turing.ticket_history (
    ticket_id bigint primary key,
    actor_id integer not null references turing.actors (actor_id),
    model text not null,
    subject_id text not null,
    status text not null
    constraint ticket_history_status_terminal check (
        status in ('completed', 'failed', 'timed_out', 'cancelled', 'dead')
    ),
    attempt integer not null,
    priority integer not null,
    input jsonb not null,
    output jsonb,
    error text,
    failure_kind text
    constraint ticket_history_failure_kind check (
        failure_kind in ('failed', 'timed_out', 'cancelled')
    ),
    source text not null,
    chain_id bigint not null,
    chain_depth integer not null,
    parent_ticket_id bigint,
    created_at timestamptz not null,
    run_after timestamptz not null,
    started_at timestamptz,
    finished_at timestamptz not null,
    worker text,
    batch_id bigint,
    constraint ticket_history_started_after_created check (started_at >= created_at),
    constraint ticket_history_finished_after_started check (
        finished_at >= coalesce(started_at, created_at)
    ),
    constraint ticket_history_dead_has_kind check ((status = 'dead') = (failure_kind is not null))
);

comment on table turing.ticket_history is
'Append-only audit log: one row per finished attempt (completed, failed, timed_out, cancelled, '
'dead). A row never changes once written (trigger ticket_history__immutable); rows leave only '
'through prune_history() under the retention policy.';
comment on column turing.ticket_history.status is
'completed; failed or timed_out (a retry followed); cancelled; dead (last attempt failed: the '
'dead letter, kept until handled).';
comment on column turing.ticket_history.failure_kind is
'For dead tickets: how the last attempt ended (failed, timed_out or cancelled).';
comment on column turing.ticket_history.output is 'The actor''s output (JSON) of a completed attempt.';
comment on column turing.ticket_history.error is 'What failed, where, and (when known) what to do.';
comment on column turing.ticket_history.finished_at is
'When the attempt ended (completed_at for completed tickets).';

-- why: per-actor history by time: metrics, throughput and timeout recommendations.
create index ticket_history_actor_finished on turing.ticket_history (actor_id, finished_at);
-- why: "what happened to this subject", and discover's dedup against completed and dead work.
create index ticket_history_actor_subject on turing.ticket_history (actor_id, subject_id);
-- why: retention prunes the oldest rows of a status first.
create index ticket_history_status_finished on turing.ticket_history (status, finished_at);
-- why: chain views walk a chain.
create index ticket_history_chain on turing.ticket_history (chain_id);

create table turing.chain_steps (
    chain_id bigint not null,
    actor_id integer not null references turing.actors (actor_id),
    subject_id text not null,
    ticket_id bigint not null,
    created_at timestamptz not null default clock_timestamp(),
    constraint chain_steps_pkey primary key (chain_id, actor_id, subject_id)
);
comment on table turing.chain_steps is
'Every (chain, actor, subject) that submit() or spawn() created. The primary key is the loop '
'guard: a chain never visits the same actor and subject twice.';

create table turing.ticket_counts (
    actor_id integer not null references turing.actors (actor_id),
    status text not null,
    slot smallint not null,
    n bigint not null default 0,
    constraint ticket_counts_pkey primary key (actor_id, status, slot)
);
comment on table turing.ticket_counts is
'Trigger-kept ticket counts per actor and status, spread over 16 slots (chosen by backend pid) '
'so concurrent runners do not queue on one counter row. sum(n) over the slots equals '
'count(*) of turing.tickets for that actor and status. Read through turing.v_counts.';

create table turing.runners (
    worker text primary key,
    models text[] not null,
    hostname text,
    pid integer,
    concurrency integer,
    status text not null default 'running'
    constraint runners_status_known check (status in ('running', 'stopping', 'stopped')),
    started_at timestamptz not null default clock_timestamp(),
    last_seen_at timestamptz not null default clock_timestamp(),
    stopped_at timestamptz,
    current_model text,
    current_batch_id bigint,
    info jsonb not null default '{}'
);
comment on table turing.runners is
'One row per runner process (worker id), kept by register_runner(), heartbeat() and '
'release_worker(): which models it serves and when it was last seen.';

create sequence turing.batch_id_seq as bigint;
comment on sequence turing.batch_id_seq is
'Batch ids, taken by claim_batch() before it claims so every claimed ticket carries its batch.';

create table turing.batches (
    batch_id bigint primary key default nextval('turing.batch_id_seq'),
    worker text not null,
    model text not null,
    claimed_at timestamptz not null default clock_timestamp(),
    size integer not null
);
comment on table turing.batches is
'One row per non-empty claim_batch() call: who claimed how many of which model.';
create index batches_claimed_at on turing.batches (claimed_at);

create table turing.actor_discovery (
    actor_id integer primary key references turing.actors (actor_id),
    last_run_at timestamptz,
    last_found integer,
    last_duration_ms double precision,
    last_error text,
    paused_until timestamptz,
    exhausted boolean not null default false
);
comment on table turing.actor_discovery is
'State of discover() per actor: last run, what it found, the last work_query error and a '
'back-off after errors so one broken work_query cannot slow every claim.';
comment on column turing.actor_discovery.exhausted is
'The last discover() found fewer subjects than it had room for: the inbox is drained, so claims '
'do not re-run the work_query until a retry interval passes or a NOTIFY says there is new work.';

create table turing.metrics_daily (
    day date not null,
    actor_id integer not null references turing.actors (actor_id),
    model text not null,
    finished integer not null,
    completed integer not null,
    failed integer not null,
    timed_out integer not null,
    dead integer not null,
    failure_rate double precision not null,
    p50_ms double precision,
    p95_ms double precision,
    p99_ms double precision,
    max_ms double precision,
    computed_at timestamptz not null default clock_timestamp(),
    constraint metrics_daily_pkey primary key (day, actor_id, model)
);
comment on table turing.metrics_daily is
'Per day, actor and model: attempts finished, outcome counts, failure rate and run-time '
'percentiles (started_at to finished_at of completed attempts). Filled by compute_metrics(day).';
comment on column turing.metrics_daily.failure_rate is
'(failed + timed_out + dead) / finished, over attempts that finished that day.';

create table turing.maintenance_log (
    log_id bigint generated always as identity primary key,
    operation text not null,
    started_at timestamptz not null,
    finished_at timestamptz not null default clock_timestamp(),
    rows_affected bigint not null default 0,
    caller text,
    detail jsonb not null default '{}'
);
comment on table turing.maintenance_log is
'Every run of reap(), tick(), compute_metrics() and prune_history(), also the runs that found '
'nothing: proof that maintenance runs, and what it did.';
create index maintenance_log_op_started on turing.maintenance_log (operation, started_at);

create table turing.retention (
    status text primary key,
    keep interval,
    constraint retention_status_known check (
        status in ('completed', 'failed', 'timed_out', 'cancelled', 'dead', 'maintenance_log')
    )
);
comment on table turing.retention is
'How long prune_history() keeps finished tickets of each status (NULL keep = forever). '
'Defaults: completed/failed/timed_out/cancelled 30 days, dead forever (until handled), '
'maintenance_log 14 days.';
insert into turing.retention (status, keep) values
('completed', interval '30 days'),
('failed', interval '30 days'),
('timed_out', interval '30 days'),
('cancelled', interval '30 days'),
('dead', null),
('maintenance_log', interval '14 days');

create table turing.settings (
    key text primary key,
    value text not null,
    description text
);
comment on table turing.settings is 'Engine-wide settings (key/value), read by the SQL functions.';
insert into turing.settings (key, value, description) values
('events', 'all', 'Which ticket events go to the pgmq queue turing_events: all, failures or off.'),
(
    'discover_interval',
    '2 seconds',
    'Least time between two work_query runs of one actor triggered by claims '
    '(discover() called directly always runs).'
),
(
    'discover_error_backoff',
    '1 minute',
    'How long claims skip an actor whose work_query failed before trying it again.'
);
