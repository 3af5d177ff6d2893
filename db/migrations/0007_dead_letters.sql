-- 0007: the unhandled dead letters as a small table. v_dead_letters used to find them in
-- ticket_history and probe, for each, the open tickets and the later attempts: 173 ms for 20 k
-- dead letters in a 10 M-row history (bench/run.py, section 4), most of it in the probes.
-- _retire adds a row when an attempt ends dead, _create_ticket removes the rows a new ticket for
-- the same actor and subject handles (retry_dead, submit, inbox), prune_history the ones retention
-- deletes; resync_dead_letters() fills it from the history on every db up.

create table if not exists turing.dead_letters (
    ticket_id bigint primary key,
    actor_id integer not null references turing.actors (actor_id) on delete cascade,
    subject_id text not null,
    model text not null,
    attempt integer not null,
    failure_kind text,
    error text,
    finished_at timestamptz not null,
    chain_id bigint not null
);

-- why: a new ticket removes the dead letters of its actor and subject.
create index if not exists dead_letters_actor_subject
on turing.dead_letters (actor_id, subject_id);

-- why: `turing dead` shows the newest first, a page at a time.
create index if not exists dead_letters_finished
on turing.dead_letters (finished_at, ticket_id);

comment on table turing.dead_letters is
'The dead attempts nobody has handled yet: a copy of their ticket_history columns that '
'v_dead_letters shows. Added by _retire when an attempt ends dead; removed by _create_ticket '
'when a new ticket for the same actor and subject is created, and by prune_history when '
'retention deletes the attempt; rebuilt by resync_dead_letters() on every db up.';
comment on column turing.dead_letters.ticket_id is
'The dead attempt (ticket_history.ticket_id).';
comment on column turing.dead_letters.failure_kind is
'How the last attempt failed: failed, timed_out or cancelled.';
comment on column turing.dead_letters.error is
'The last error, as in ticket_history.error.';
