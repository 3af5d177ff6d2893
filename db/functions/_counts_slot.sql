-- _counts_slot: the ticket_counts slot this transaction writes, taken on its first count change
-- and held to its end, so no two open transactions ever write the same counter rows.
create or replace function turing._counts_slot()
returns smallint
language plpgsql
set search_path = ''
as $$
declare
    -- why: one slot for every backend that can hold a transaction at once (client backends,
    -- prepared transactions, which keep their locks, and background workers such as pg_cron's),
    -- so the writers alone never fill the ring; slot numbers never exceed it (smallint).
    v_ring integer := least(
        pg_catalog.current_setting('max_connections')::integer
        + pg_catalog.current_setting('max_prepared_transactions')::integer
        + pg_catalog.current_setting('max_worker_processes')::integer,
        32767
    );
    -- why: start from the pid: pooled backends, whose pids are consecutive, mostly start on
    -- slots of their own and get them at the first try.
    v_slot integer := pg_catalog.pg_backend_pid() % v_ring;
    v_tries integer := 0;
begin
    -- why: advisory lock (7246, slot) = "an open transaction writes this slot". Only ever tried,
    -- never waited for: this runs in an after-statement trigger while the transaction may hold
    -- ticket row locks, and a wait here could close a cycle with the slot's holder. A free
    -- slot is always near: other writers hold one each, and a full ring can only mean a
    -- compact_counts() holding the rest, which never waits and so ends within milliseconds.
    while not pg_catalog.pg_try_advisory_xact_lock(7246, v_slot) loop
        v_slot := (v_slot + 1) % v_ring;
        v_tries := v_tries + 1;
        if v_tries % v_ring = 0 then
            perform pg_catalog.pg_sleep(0.001);
        end if;
    end loop;
    -- why: remembered transaction-locally; a rolled-back savepoint forgets both the setting and
    -- the lock, a released one keeps both, so the two never disagree.
    perform pg_catalog.set_config(
        'turing.counts_slot', pg_catalog.pg_current_xact_id()::text || '/' || v_slot::text, true
    );
    return v_slot::smallint;
end;
$$;

comment on function turing._counts_slot() is
'Internal: takes a ticket_counts slot that no other open transaction holds (advisory lock '
'7246/slot, tried from pg_backend_pid() around a ring of max_connections + '
'max_prepared_transactions + max_worker_processes slots, never waited for), remembers it in the '
'transaction-local setting turing.counts_slot (as xid/slot) and returns it. Called by the counts '
'trigger on a transaction''s first count change.';
