-- return_tickets: a runner gives back claimed tickets it could not run because the
-- infrastructure failed (the model server down, a person skipped): no attempt is charged,
-- unless the same ticket met too many faults (then its own input may be the cause).
create or replace function turing.return_tickets(
    p_worker text,
    p_ticket_ids bigint[],
    p_lease_tokens uuid[],
    p_reason text,
    p_fault boolean default false
)
returns table (ticket_id bigint, status text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_limit integer := turing._setting('fault_charge_after', '3')::integer;
    v_charge bigint [];
    v_charge_tokens uuid [];
    v_charge_faults integer [];
    v_back bigint [];
    v_back_tokens uuid [];
begin
    if cardinality(p_ticket_ids) is distinct from cardinality(p_lease_tokens) then
        raise exception 'ticket ids and lease tokens must have the same length'
            using errcode = 'TR012';
    end if;
    update turing.runners as r set last_seen_at = clock_timestamp() where r.worker = p_worker;
    -- why: fenced by the token, like every report; a fault is counted on the ticket, so the
    -- count follows it from runner to runner.
    select
        array_agg(o.ticket_id) filter (where p_fault and o.faults + 1 >= v_limit),
        array_agg(o.lease_token) filter (where p_fault and o.faults + 1 >= v_limit),
        array_agg(o.faults + 1) filter (where p_fault and o.faults + 1 >= v_limit),
        array_agg(o.ticket_id) filter (where not p_fault or o.faults + 1 < v_limit),
        array_agg(o.lease_token) filter (where not p_fault or o.faults + 1 < v_limit)
    into v_charge, v_charge_tokens, v_charge_faults, v_back, v_back_tokens
    from unnest(p_ticket_ids, p_lease_tokens) as s (ticket_id, lease_token)
    inner join turing.ticket_open as o
        on o.ticket_id = s.ticket_id and o.lease_token = s.lease_token;
    if v_back is not null then
        if p_fault then
            update turing.ticket_open as o set faults = o.faults + 1
            where o.ticket_id = any(v_back);
        end if;
        perform turing._unclaim(v_back, v_back_tokens, p_reason);
        return query select b.id, 'pending'::text from unnest(v_back) as b (id);
    end if;
    if v_charge is not null then
        return query
        select r.ticket_id, r.status
        from turing._retire(
            v_charge, v_charge_tokens,
            array(
                select format(
                    'the infrastructure failed %s times in a row on this ticket alone (last: %s); '
                    'charged as an attempt, in case its input is the cause',
                    f, p_reason
                )
                from unnest(v_charge_faults) as f
            ),
            array_fill('failed'::text, array[cardinality(v_charge)]),
            array_fill(true, array[cardinality(v_charge)]),
            true
        ) as r;
    end if;
end;
$$;

comment on function turing.return_tickets(text, bigint[], uuid[], text, boolean) is
'Give claimed tickets back to pending without charging an attempt, with p_reason as their '
'last_error: for infrastructure faults (p_fault: model server unreachable, 503 past retries, its '
'runner process crashed) and for skips and settings refused on every call (p_fault false). A '
'fault is counted on the ticket (ticket_open.faults); the one that reaches '
'settings.fault_charge_after is charged as a failed attempt instead (retried with backoff, '
'then dead), so a ticket whose input crashes the server cannot loop. Fenced by the lease '
'token; returns each ticket that was still held and what became of it (pending, failed, '
'dead).';
