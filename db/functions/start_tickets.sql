-- start_tickets: a runner starts tickets it claimed ahead: their attempt, timeout and latency
-- count from now (invariant 12), and each gets the timeout it runs with, fixed from now on.
create or replace function turing.start_tickets(
    p_worker text,
    p_ticket_ids bigint[],
    p_lease_tokens uuid[],
    p_cold boolean default false
)
returns table (ticket_id bigint, held boolean, timeout_s double precision)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := clock_timestamp();
begin
    if cardinality(p_ticket_ids) is distinct from cardinality(p_lease_tokens) then
        raise exception 'ticket ids and lease tokens must have the same length'
            using errcode = 'TR012';
    end if;
    return query
    with src as (
        select *
        from unnest(p_ticket_ids, p_lease_tokens) with ordinality as s (ticket_id, lease_token, ord)
    ),
    begun as (
        update turing.ticket_open as o
        set started_at = greatest(v_now, o.created_at),
            timeout = case when p_cold then a.cold_timeout else a.warm_timeout end,
            lease_expires_at = greatest(v_now, o.created_at) + least(
                a.lease, case when p_cold then a.cold_timeout else a.warm_timeout end
            ),
            heartbeat_at = v_now
        from src as s, turing.actor_timeouts as a
        -- why: fenced by the token like every runner call; a ticket already started keeps its
        -- start (a repeated call changes nothing).
        where o.ticket_id = s.ticket_id and o.lease_token = s.lease_token
            and o.started_at is null and a.actor_id = o.actor_id
        returning o.ticket_id, o.timeout
    )
    -- why: h is the snapshot before this statement (it sees no timeout on the tickets begun
    -- here, begun does); a repeated call returns the timeout the ticket already runs with.
    select
        s.ticket_id, b.ticket_id is not null or h.ticket_id is not null,
        extract(epoch from coalesce(b.timeout, h.timeout))::double precision
    from src as s
    left join begun as b on b.ticket_id = s.ticket_id
    left join lateral (
        select o.ticket_id, o.timeout from turing.ticket_open as o
        where o.ticket_id = s.ticket_id and o.lease_token = s.lease_token
    ) as h on true
    order by s.ord;
    update turing.runners as r set last_seen_at = v_now where r.worker = p_worker;
end;
$$;

comment on function turing.start_tickets(text, bigint[], uuid[], boolean) is
'A runner starts tickets it claimed ahead (claim_batch started = false): started_at = now, the '
'lease from now, and the timeout the attempt runs with, counted from now and fixed: timeout_s, '
'from turing.actor_timeouts (the cold one when p_cold says the runner must load the model '
'first). Fenced by the lease token; held = false means the ticket is no longer this runner''s '
'(reaped, cancelled): do not run it. A ticket already started keeps its start and timeout.';
