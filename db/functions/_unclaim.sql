-- _unclaim: put claimed tickets back to pending as if never claimed: same attempt, no history
-- row, nothing marked "interrupted". Shared by release_worker, return_tickets and reap.
create or replace function turing._unclaim(
    p_ticket_ids bigint[], p_lease_tokens uuid[], p_reason text
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
begin
    update turing.ticket_open as o
    set status = 'pending', claimed_at = null, started_at = null, timeout = null,
        worker = null, batch_id = null, lease_token = null, lease_expires_at = null,
        heartbeat_at = null,
        -- why: why a ticket went back is worth seeing (a backend down), but a plain release
        -- keeps the error of the attempt before, if any.
        last_error = coalesce(p_reason, o.last_error)
    from unnest(p_ticket_ids, p_lease_tokens) as s (ticket_id, lease_token)
    -- why: fenced by the token (only a running ticket has one): a ticket reaped and claimed
    -- again since the caller looked is left to its new holder.
    where o.ticket_id = s.ticket_id and o.lease_token = s.lease_token;
    get diagnostics v_count = row_count;
    return v_count;
end;
$$;

comment on function turing._unclaim(bigint[], uuid[], text) is
'Internal: the given running tickets (fenced by their lease tokens) back to pending without an '
'attempt charged (same attempt, no history row); p_reason, when given, becomes their '
'last_error. Returns how many.';
