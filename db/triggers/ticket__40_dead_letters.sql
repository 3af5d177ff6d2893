-- ticket__40_dead_letters: keep turing.dead_letters equal to "dead attempts with no later ticket
-- for the same actor and subject", one set-based statement per triggering statement.
create or replace function turing._dead_letters_sync()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_table_name = 'ticket_history' and tg_op = 'INSERT' then
        insert into turing.dead_letters (
            ticket_id, actor_id, subject_id, model, attempt, failure_kind, error, finished_at,
            chain_id
        )
        select
            r.ticket_id, r.actor_id, r.subject_id, r.model, r.attempt, r.failure_kind, r.error,
            r.finished_at, r.chain_id
        from new_rows as r
        where r.status = 'dead';
    elsif tg_table_name = 'ticket_history' then
        delete from turing.dead_letters as d
        using old_rows as r
        where d.ticket_id = r.ticket_id and r.status = 'dead';
    else
        -- a new ticket for the same work handles the dead letter (retry_dead, submit)
        delete from turing.dead_letters as d
        using new_rows as r
        where d.actor_id = r.actor_id and d.subject_id = r.subject_id;
    end if;
    return null;
end;
$$;

comment on function turing._dead_letters_sync() is
'Statement trigger: adds the attempts a statement moved to ticket_history as dead to '
'dead_letters, removes the ones retention deleted, and removes the dead letters of an actor and '
'subject that got a new ticket.';

drop trigger if exists ticket_history__40_dead_letters_ins on turing.ticket_history;
create trigger ticket_history__40_dead_letters_ins
after insert on turing.ticket_history
referencing new table as new_rows
for each statement execute function turing._dead_letters_sync();

drop trigger if exists ticket_history__40_dead_letters_del on turing.ticket_history;
create trigger ticket_history__40_dead_letters_del
after delete on turing.ticket_history
referencing old table as old_rows
for each statement execute function turing._dead_letters_sync();

drop trigger if exists ticket_open__40_dead_letters on turing.ticket_open;
create trigger ticket_open__40_dead_letters
after insert on turing.ticket_open
referencing new table as new_rows
for each statement execute function turing._dead_letters_sync();

-- why: re-synced from the history on every db up, in the transaction that (re)creates the
-- triggers and so holds their table locks: nothing can finish or retry a ticket in between,
-- and a table filled before these triggers existed (or by hand) is made right again.
delete from turing.dead_letters as d
where not exists (
    select from turing.ticket_history as h
    where h.ticket_id = d.ticket_id and h.status = 'dead'
)
or exists (
    select from turing.ticket_open as o
    where o.actor_id = d.actor_id and o.subject_id = d.subject_id
)
or exists (
    select from turing.ticket_history as l
    where l.actor_id = d.actor_id and l.subject_id = d.subject_id and l.ticket_id > d.ticket_id
);

insert into turing.dead_letters (
    ticket_id, actor_id, subject_id, model, attempt, failure_kind, error, finished_at, chain_id
)
select
    h.ticket_id,
    h.actor_id,
    h.subject_id,
    h.model,
    h.attempt,
    h.failure_kind,
    h.error,
    h.finished_at,
    h.chain_id
from turing.ticket_history as h
where
    h.status = 'dead'
    and not exists (
        select from turing.ticket_open as o
        where o.actor_id = h.actor_id and o.subject_id = h.subject_id
    )
    and not exists (
        select from turing.ticket_history as l
        where
            l.actor_id = h.actor_id and l.subject_id = h.subject_id
            and l.ticket_id > h.ticket_id
    )
on conflict (ticket_id) do nothing;
