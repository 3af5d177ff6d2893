-- 0013: the adaptive timeout. An actor's timeout is a duration or `auto`: an auto actor runs
-- each attempt with p99 x 2 of its measured run time (plus its model's measured load time when
-- the runner's model is cold), kept between timeout_floor and timeout_ceiling. The timeout an
-- attempt runs with is fixed when it starts and stored on the ticket, so the runner, heartbeat()
-- and reap() all count the same deadline. Measurements are made by maintenance, never by a claim.

create domain turing.actor_timeout as text
constraint actor_timeout_auto_or_positive check (value = 'auto' or value::interval > interval '0');
comment on domain turing.actor_timeout is
'An actor''s timeout: a positive duration (e.g. ''5 minutes'') or ''auto'' (p99 x 2 of measured '
'run time between timeout_floor and timeout_ceiling; see turing.actor_timeouts).';

-- why: ALTER ... TYPE refuses a column that views read; every view is re-created from its file
-- right after the migrations (db up), so dropping them here loses nothing.
drop view if exists turing.v_stuck, turing.v_timeout_recommendations cascade;
alter table turing.actors drop constraint actors_timeout_positive;
alter table turing.actors alter column timeout drop default;
alter table turing.actors
alter column timeout type turing.actor_timeout using timeout::text;
alter table turing.actors alter column timeout set default '00:05:00';
comment on column turing.actors.timeout is
'Hard limit of one attempt, counted from when its call starts: a duration, or auto (p99 x 2 of '
'the measured run time of completed attempts, plus the model''s measured load time when the '
'runner''s model is cold, between timeout_floor and timeout_ceiling; the ceiling until enough '
'attempts are measured). Past it the runner cancels the call and reap() takes the ticket back. '
'The value an attempt runs with is fixed at its start (ticket timeout).';

alter table turing.actors
add column timeout_floor interval not null default interval '30 seconds'
constraint actors_timeout_floor_positive check (timeout_floor > interval '0');
alter table turing.actors
add column timeout_ceiling interval not null default interval '30 minutes';
alter table turing.actors add constraint actors_timeout_floor_below_ceiling
check (timeout_floor <= timeout_ceiling);
comment on column turing.actors.timeout_floor is
'timeout auto: the shortest timeout an attempt gets, however fast the measured runs were (warm '
'runs of an LLM can measure well under a second).';
comment on column turing.actors.timeout_ceiling is
'timeout auto: the longest timeout an attempt gets, and the timeout used until enough attempts '
'are measured (settings.timeout_auto_samples).';
-- why: register_actor words a refused rule with its constraint's comment, one sentence.
comment on constraint actors_timeout_floor_below_ceiling on turing.actors is
'timeout_floor must not be above timeout_ceiling (an auto timeout is kept between the two)';

alter table turing.ticket_open add column timeout interval;
update turing.ticket_open as o set timeout = a.timeout::interval
from turing.actors as a
where a.actor_id = o.actor_id and o.started_at is not null;
alter table turing.ticket_open add constraint ticket_open_timeout_iff_started check (
    (started_at is null) = (timeout is null)
);
comment on column turing.ticket_open.timeout is
'The timeout this attempt runs with, fixed when it starts (the actor''s, or its auto value at '
'that moment): the deadline is started_at + timeout for the runner, heartbeat() and reap().';
alter table turing.ticket_history add column timeout interval;
comment on column turing.ticket_history.timeout is
'The timeout the attempt ran with (NULL for attempts finished before 0013 or never started).';

create table turing.actor_run_times (
    actor_id integer primary key references turing.actors (actor_id) on delete cascade,
    samples integer not null,
    p99_ms double precision,
    computed_at timestamptz not null default clock_timestamp()
);
comment on table turing.actor_run_times is
'Per actor, the measured run time of its recent completed attempts (started_at to finished_at, '
'so queue time in a runner never counts): what an auto timeout is computed from. Written by '
'measure_run_times() (maintain, tick), read by the claim through turing.actor_timeouts.';
comment on column turing.actor_run_times.samples is
'Completed attempts measured: of the last settings.timeout_auto_window, at most the newest 1000.';
comment on column turing.actor_run_times.p99_ms is
'99th percentile of their run time in ms; NULL while samples < settings.timeout_auto_samples.';

create table turing.model_loads (
    model text primary key,
    load_ms double precision not null,
    recent_ms double precision[] not null,
    worker text,
    measured_at timestamptz not null default clock_timestamp()
);
comment on table turing.model_loads is
'Per model, how long the model server took to load it, as runners measured it (a preload when '
'a runner switches models, or Ollama''s load_duration of a call that loaded it): what an auto '
'timeout adds when a runner starts an attempt with the model cold. Written by '
'report_model_load().';
comment on column turing.model_loads.load_ms is
'The longest of recent_ms: a cold start may take as long as the slowest recent load.';
comment on column turing.model_loads.recent_ms is
'The last 10 load times reported (ms), oldest first.';

insert into turing.settings (key, value, description) values
(
    'timeout_auto_samples', '20',
    'Completed attempts an auto timeout needs before it follows p99 x 2; before that, attempts '
    'run with the actor''s timeout_ceiling.'
),
(
    'timeout_auto_window', '7 days',
    'How far back measure_run_times() looks for completed attempts (at most the newest 1000).'
),
(
    'timeout_auto_interval', '1 minute',
    'Least time between two measure_run_times() runs triggered by maintain().'
)
on conflict (key) do nothing;

-- why: claim_batch and start_tickets gained p_cold and return each ticket's timeout_s; their
-- previous forms came with 0011 and never shipped in a release, so they go now.
drop function if exists turing.claim_batch(text, text, integer, bigint[], integer);
drop function if exists turing.start_tickets(text, bigint[], uuid[]);
