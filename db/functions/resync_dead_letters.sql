-- resync_dead_letters: rebuild turing.dead_letters from the history. _retire records each dead
-- attempt and _create_ticket removes the ones a new ticket handles; this fills the table on the
-- upgrade that creates it, and repairs it after history rows were written by hand.
create or replace function turing.resync_dead_letters()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_rows integer;
begin
    -- why: nothing may end or create a ticket while the table is rebuilt; on db up this runs in
    -- the transaction that replaced _retire and _create_ticket, so no attempt is missed.
    lock table turing.ticket_open, turing.ticket_history in share row exclusive mode;
    delete from turing.dead_letters;
    insert into turing.dead_letters (
        ticket_id, actor_id, subject_id, model, attempt, failure_kind, error, finished_at,
        chain_id
    )
    select
        h.ticket_id, h.actor_id, h.subject_id, h.model, h.attempt, h.failure_kind, h.error,
        h.finished_at, h.chain_id
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
        );
    get diagnostics v_rows = row_count;
    return v_rows;
end;
$$;

comment on function turing.resync_dead_letters() is
'Rebuild dead_letters from ticket_history: every dead attempt with no later ticket (open or '
'finished) for the same actor and subject. Locks the ticket tables while it runs. db up calls it; '
'call it after writing ticket_history by hand. Returns the dead letters found.';

-- why: run on every db up, after _retire and _create_ticket were (re)applied in this transaction.
select turing.resync_dead_letters();
