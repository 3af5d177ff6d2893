-- ticket__20_counts: keep turing.ticket_counts exact (invariant 6) with one upsert per statement
-- and (actor, status), never one per row. Shared by ticket_open and ticket_history.
create or replace function turing._ticket_counts_apply()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    -- why: each transaction writes a slot no other open transaction holds (invariant 15): two
    -- writers never touch the same counter row, so they can neither queue on one nor deadlock
    -- over the order in which their statements change statuses. The slot is taken on the
    -- transaction's first count change and then read back here, one setting lookup a statement.
    -- The mark carries the transaction id, so a stray SET of the setting (a session's, a role's)
    -- is never mistaken for a slot this transaction holds.
    v_mark text := pg_catalog.current_setting('turing.counts_slot', true);
    v_slot smallint;
begin
    if pg_catalog.split_part(v_mark, '/', 1) = pg_catalog.pg_current_xact_id()::text then
        v_slot := pg_catalog.split_part(v_mark, '/', 2)::smallint;
    else
        v_slot := turing._counts_slot();
    end if;
    if tg_op = 'INSERT' then
        insert into turing.ticket_counts as c (actor_id, status, slot, n)
        select r.actor_id, r.status, v_slot, count(*)
        from new_rows as r
        group by r.actor_id, r.status
        order by r.actor_id, r.status
        on conflict (actor_id, status, slot) do update set n = c.n + excluded.n;
    elsif tg_op = 'DELETE' then
        insert into turing.ticket_counts as c (actor_id, status, slot, n)
        select r.actor_id, r.status, v_slot, -count(*)
        from old_rows as r
        group by r.actor_id, r.status
        order by r.actor_id, r.status
        on conflict (actor_id, status, slot) do update set n = c.n + excluded.n;
    else
        insert into turing.ticket_counts as c (actor_id, status, slot, n)
        select d.actor_id, d.status, v_slot, sum(d.delta)
        from (
            select o.actor_id, o.status, -1 as delta from old_rows as o
            union all
            select n.actor_id, n.status, 1 as delta from new_rows as n
        ) as d
        group by d.actor_id, d.status
        having sum(d.delta) <> 0
        order by d.actor_id, d.status
        on conflict (actor_id, status, slot) do update set n = c.n + excluded.n;
    end if;
    return null;
end;
$$;

comment on function turing._ticket_counts_apply() is
'Statement trigger: folds the rows a statement inserted, deleted or re-statused in ticket_open '
'or ticket_history into ticket_counts, one upsert per actor and status into the slot of this '
'transaction (turing._counts_slot(): held by no other open transaction, so writers never wait '
'on each other''s counter rows and cannot deadlock on them). compact_counts() folds the slots '
'into one base row per actor and status.';

drop trigger if exists ticket_open__20_counts_ins on turing.ticket_open;
create trigger ticket_open__20_counts_ins
after insert on turing.ticket_open
referencing new table as new_rows
for each statement execute function turing._ticket_counts_apply();

drop trigger if exists ticket_open__20_counts_upd on turing.ticket_open;
create trigger ticket_open__20_counts_upd
after update on turing.ticket_open
referencing old table as old_rows new table as new_rows
for each statement execute function turing._ticket_counts_apply();

drop trigger if exists ticket_open__20_counts_del on turing.ticket_open;
create trigger ticket_open__20_counts_del
after delete on turing.ticket_open
referencing old table as old_rows
for each statement execute function turing._ticket_counts_apply();

drop trigger if exists ticket_history__20_counts_ins on turing.ticket_history;
create trigger ticket_history__20_counts_ins
after insert on turing.ticket_history
referencing new table as new_rows
for each statement execute function turing._ticket_counts_apply();

drop trigger if exists ticket_history__20_counts_del on turing.ticket_history;
create trigger ticket_history__20_counts_del
after delete on turing.ticket_history
referencing old table as old_rows
for each statement execute function turing._ticket_counts_apply();
