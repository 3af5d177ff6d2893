-- _actor_for_tickets: the actor a call is about to create tickets for, held FOR KEY SHARE so it
-- cannot be deleted before they commit (what the dropped foreign keys did, migration 0010).
create or replace function turing._actor_for_tickets(p_actor text)
returns turing.actors
language plpgsql
set search_path = ''
as $$
declare
    v_actor turing.actors%rowtype;
begin
    -- why: one row lock per call instead of one key check per ticket; a concurrent delete of the
    -- actor waits for this transaction, then its guard trigger sees the tickets it made.
    select * into v_actor from turing.actors as a where a.name = p_actor for key share;
    if v_actor.actor_id is null then
        raise exception 'unknown actor "%"', p_actor
            using errcode = 'TR002',
            hint = 'List actors with `turing actor list` or select name from turing.actors.';
    end if;
    return v_actor;
end;
$$;

comment on function turing._actor_for_tickets(text) is
'Internal: the named actor''s row, locked FOR KEY SHARE until the transaction ends (it cannot be '
'deleted meanwhile); raises TR002 "unknown actor" otherwise. Called by the functions that create '
'tickets (_create_ticket, submit_many, rerun).';
