-- skip_ticket: a person passes on a ticket (`turing human`, s): it goes back to pending with no
-- attempt charged, and behind the work that is ready, so the next claim hands out another one.
create or replace function turing.skip_ticket(
    p_worker text,
    p_ticket_id bigint,
    p_lease_token uuid,
    p_for interval default interval '10 minutes'
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_for is null or p_for < interval '0' then
        raise exception 'skip_ticket: p_for must be a duration of zero or more, got %', p_for
            using errcode = 'TR012', hint = 'e.g. interval ''10 minutes''';
    end if;
    -- why: fenced by the lease token and the worker, like every report: a ticket reaped or
    -- cancelled since the person looked is left as it is. run_after first, while the token
    -- still names the claim; _unclaim then clears the claim in the same transaction.
    update turing.ticket_open as o
    set run_after = greatest(o.run_after, pg_catalog.clock_timestamp() + p_for)
    where o.ticket_id = p_ticket_id and o.lease_token = p_lease_token and o.worker = p_worker;
    if not found then
        return false;
    end if;
    update turing.runners as r set last_seen_at = pg_catalog.clock_timestamp()
    where r.worker = p_worker;
    return turing._unclaim(
        array[p_ticket_id], array[p_lease_token], 'skipped by ' || p_worker
    ) = 1;
end;
$$;

comment on function turing.skip_ticket(text, bigint, uuid, interval) is
'A person skips a claimed ticket: back to pending without an attempt charged (same attempt, '
'no history row, last_error says who skipped it), not claimable for p_for (10 minutes by '
'default), so the next claim, by this person or another, hands out other work first. Fenced by '
'the lease token and the worker; false when the ticket is no longer theirs. `turing human` '
'also passes over the tickets it skipped for the rest of its session.';
