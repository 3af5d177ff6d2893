-- 0011: what self-healing needs in the tables. A claimed ticket is running (leased) from the
-- claim, but its attempt starts when its call starts (started_at), so queue time never counts
-- against its timeout or its latency; lost runners; the model backends runners cannot reach;
-- subjects that stay done across retention; what discovery rejected.

alter table turing.ticket_open add column claimed_at timestamptz;
comment on column turing.ticket_open.claimed_at is
'When the current claim was made (the lease starts here). started_at is when the attempt really '
'began (its call started); a ticket claimed ahead waits in the runner with started_at null, and '
'only started_at counts for the timeout and the latency figures.';
update turing.ticket_open set claimed_at = started_at where status = 'running';
alter table turing.ticket_open drop constraint ticket_open_lease_iff_running;
alter table turing.ticket_open add constraint ticket_open_lease_iff_running check (
    (status = 'running')
    = (lease_token is not null and lease_expires_at is not null and claimed_at is not null)
);
alter table turing.ticket_open add constraint ticket_open_started_only_running check (
    started_at is null or status = 'running'
);

alter table turing.runners drop constraint runners_status_known;
alter table turing.runners add constraint runners_status_known check (
    status in ('running', 'stopping', 'stopped', 'lost')
);
comment on column turing.runners.status is
'running; stopping (SIGTERM, finishing its calls); stopped; lost (silent past '
'settings.runner_lost_after: reap() marked it, a new heartbeat or registration revives it).';

insert into turing.settings (key, value, description) values
(
    'runner_lost_after', '30 seconds',
    'A runner silent for this long (no claim, heartbeat or registration) is marked lost by reap().'
),
(
    'runner_retention', '1 hour',
    'Stopped and lost runners leave turing.runners (and turing status) after this long.'
)
on conflict (key) do nothing;

create table turing.backend_status (
    worker text not null,
    backend text not null,
    model text not null,
    state text not null constraint backend_status_state_known check (state in ('up', 'down')),
    since timestamptz not null default clock_timestamp(),
    checked_at timestamptz not null default clock_timestamp(),
    last_error text,
    setting text,
    constraint backend_status_pkey primary key (worker, backend, model)
);
comment on table turing.backend_status is
'What each runner knows of the model backends it calls (its circuit breaker): down after a few '
'consecutive infrastructure faults, up again when its probe answers. Kept by report_backend(); '
'v_alerts raises backend_down for a backend a live runner reports down.';
comment on column turing.backend_status.backend is
'The model server (host URL, credentials masked).';
comment on column turing.backend_status.setting is
'When every call failed the same way because of a runner option (e.g. --keep-alive), its name.';

create table turing.subjects_done (
    actor_id integer not null,
    subject_id text not null,
    ticket_id bigint not null,
    status text not null,
    finished_at timestamptz not null,
    constraint subjects_done_pkey primary key (actor_id, subject_id)
);
comment on table turing.subjects_done is
'Subjects an actor finished for good (completed or cancelled) whose history rows retention has '
'pruned: discovery keeps skipping them, so a pruned history never runs finished work again. '
'Written by prune_history; rerun() removes a subject to run it again.';

-- why: rerun() makes tickets of their own source, so the audit log says a person asked for it.
alter table turing.ticket_open drop constraint ticket_open_source_known;
alter table turing.ticket_open add constraint ticket_open_source_known check (
    source in ('discover', 'submit', 'spawn', 'retry', 'inbox', 'rerun')
);

alter table turing.actor_discovery add column last_rejected jsonb;
alter table turing.actor_discovery add column last_returned_done integer;
comment on column turing.actor_discovery.last_rejected is
'Rows of the last discovery that could not become tickets, with why: {"count": n, "reasons": '
'{reason: n}, "examples": [...]} (NULL or empty subject_id, a subject_id too long to index).';
comment on column turing.actor_discovery.last_returned_done is
'How many subjects the last discovery found in the work_query that this actor had already '
'finished: an on_complete that does not move its subject out of the inbox (an outbox never '
'written). `turing rerun` runs them again on purpose.';

-- why: complete_batch gained an `error` column (what failed when on_complete raised); a new
-- result type needs the old function gone; its file re-creates it.
drop function if exists turing.complete_batch(bigint[], uuid[], jsonb[]);
-- why: the claim gained p_start_now (claimed tickets the runner starts at once); the 4-argument
-- form of this release never shipped, the 3-argument one of 0.1 stays one release.
drop function if exists turing.claim_batch(text, text, integer, bigint[]);
