-- return_tickets: a runner gives back claimed tickets it could not run because the
-- infrastructure failed (the model server down, a person skipped): no attempt is charged.
create or replace function turing.return_tickets(
    p_worker text,
    p_ticket_ids bigint[],
    p_lease_tokens uuid[],
    p_reason text
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
begin
    if cardinality(p_ticket_ids) is distinct from cardinality(p_lease_tokens) then
        raise exception 'ticket ids and lease tokens must have the same length'
            using errcode = 'TR012';
    end if;
    update turing.runners as r set last_seen_at = clock_timestamp() where r.worker = p_worker;
    return turing._unclaim(p_ticket_ids, p_lease_tokens, p_reason);
end;
$$;

comment on function turing.return_tickets(text, bigint[], uuid[], text) is
'Give claimed tickets back to pending without charging an attempt, with p_reason as their '
'last_error: for infrastructure faults (model server unreachable, 503 past retries, its runner '
'process crashed) and skips. Fenced by the lease token; returns how many went back.';
