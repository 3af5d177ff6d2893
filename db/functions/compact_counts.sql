-- compact_counts: fold the per-transaction slots of ticket_counts into one base row per actor
-- and status (slot -1), so the readers of the counts sum a few rows. Never waits for anything.
create or replace function turing.compact_counts()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_slots smallint[] := array[]::smallint[];
    v_slot smallint;
    v_folded integer;
begin
    -- why: the fold must see every committed change of the slots it takes; a transaction
    -- snapshot older than those locks (repeatable read, serializable) would not.
    if pg_catalog.current_setting('transaction_isolation') <> 'read committed' then
        return 0;
    end if;
    -- why: advisory lock (7246, -1) is the base rows' slot: one compactor at a time writes them
    -- (writers never use slot -1); a second compactor skips instead of waiting.
    if not pg_catalog.pg_try_advisory_xact_lock(7246, -1) then
        return 0;
    end if;
    for v_slot in
        select distinct c.slot from turing.ticket_counts as c where c.slot >= 0 order by 1
    loop
        -- why: a slot is folded only when no open transaction holds it, and then held to the
        -- end of this one, so no writer changes its rows meanwhile (a writer that finds it
        -- taken uses another). Tried, never waited for: a holder may be waiting on us.
        if pg_catalog.pg_try_advisory_xact_lock(7246, v_slot) then
            v_slots := v_slots || v_slot;
        end if;
    end loop;
    with moved as (
        delete from turing.ticket_counts as c
        where c.slot = any(v_slots)
        returning c.actor_id, c.status, c.n
    ),

    base as (
        insert into turing.ticket_counts as c (actor_id, status, slot, n)
        select m.actor_id, m.status, -1, sum(m.n)
        from moved as m
        group by m.actor_id, m.status
        having sum(m.n) <> 0
        order by m.actor_id, m.status
        on conflict (actor_id, status, slot) do update set n = c.n + excluded.n
    )

    select count(*)::integer into v_folded from moved;
    -- why: an actor and status with nothing left needs no row at all.
    delete from turing.ticket_counts as c where c.slot = -1 and c.n = 0;
    return v_folded;
end;
$$;

comment on function turing.compact_counts() is
'Folds every ticket_counts slot that no open transaction holds into the base row (slot -1) of '
'each actor and status, in one statement, and removes base rows that fell to 0; sum(n) per '
'actor and status is unchanged at every committed moment, and readers then sum about one row '
'each. Never waits: slots in use are left for the next run, and a second concurrent compactor '
'returns 0 at once (so does a call outside read committed). Returns the slot rows folded. '
'maintain() calls it every p_min_interval, tick() every run; any runner may too.';
