-- ticket_open__10_guard: only legal changes to an open ticket (invariants 2 and 3).
-- Open tickets move pending -> running (claim) and running -> pending (release); identity
-- columns never change; finishing is a move to ticket_history, never an update here.
create or replace function turing._ticket_open_guard()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.ticket_id <> old.ticket_id
        or new.actor_id <> old.actor_id
        or new.subject_id <> old.subject_id
        or new.attempt <> old.attempt
        or new.chain_id <> old.chain_id
        or new.created_at <> old.created_at then
        raise exception 'ticket % : identity columns of an open ticket cannot change', old.ticket_id
            using errcode = 'TR008',
            hint = 'Cancel the ticket and submit a new one instead.';
    end if;
    if new.status = 'running' and old.status = 'pending' and new.started_at < new.created_at then
        raise exception 'ticket % : started_at before created_at', old.ticket_id
            using errcode = 'TR008';
    end if;
    return new;
end;
$$;

comment on function turing._ticket_open_guard() is
'Trigger: refuses changes to the identity of an open ticket (id, actor, subject, attempt, chain, '
'created_at). Status values themselves are limited to pending/running by a check constraint.';

drop trigger if exists ticket_open__10_guard on turing.ticket_open;
-- why: the WHEN clause is evaluated without calling PL/pgSQL, so the claims and heartbeats that
-- change nothing of the kind pay (almost) nothing for the guard.
create trigger ticket_open__10_guard
before update on turing.ticket_open
for each row
when (
    new.ticket_id <> old.ticket_id
    or new.actor_id <> old.actor_id
    or new.subject_id <> old.subject_id
    or new.attempt <> old.attempt
    or new.chain_id <> old.chain_id
    or new.created_at <> old.created_at
    or new.started_at < new.created_at
)
execute function turing._ticket_open_guard();
