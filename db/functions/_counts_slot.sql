-- _counts_slot: the ticket_counts slot this transaction writes, taken on its first count change
-- and held to its end, so no two open transactions ever write the same counter rows.
create or replace function turing._counts_slot()
returns smallint
language plpgsql
set search_path = ''
as $$
declare
    -- why: the start is spread over max_connections (+ prepared transactions, which keep their
    -- locks): pooled backends, whose pids are consecutive, mostly start on slots of their own
    -- and get them at the first try.
    v_slot integer := pg_catalog.pg_backend_pid() % (
        pg_catalog.current_setting('max_connections')::integer
        + pg_catalog.current_setting('max_prepared_transactions')::integer
    );
begin
    -- why: advisory lock (7246, slot) = "an open transaction writes this slot". Only ever tried,
    -- never waited for: this runs in an after-statement trigger while the transaction may hold
    -- ticket row locks, and a wait here could close a cycle with the slot's holder. Probing
    -- upward always ends: at most one slot is held per open transaction (plus those a running
    -- compact_counts holds), so some slot above them is free; no wrap-around is needed.
    while not pg_catalog.pg_try_advisory_xact_lock(7246, v_slot) loop
        v_slot := v_slot + 1;
    end loop;
    -- why: remembered transaction-locally; a rolled-back savepoint forgets both the setting and
    -- the lock, a released one keeps both, so the two never disagree.
    perform pg_catalog.set_config('turing.counts_slot', v_slot::text, true);
    return v_slot;
end;
$$;

comment on function turing._counts_slot() is
'Internal: takes a ticket_counts slot that no other open transaction holds (advisory lock '
'7246/slot, tried from pg_backend_pid() % (max_connections + max_prepared_transactions) '
'upward, never waited for), remembers it in the transaction-local setting turing.counts_slot '
'and returns it. Called by the counts trigger on a transaction''s first count change.';
