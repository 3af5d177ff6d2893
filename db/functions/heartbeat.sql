-- heartbeat: a runner extends the leases of the tickets it is running and says it is alive.
create or replace function turing.heartbeat(
    p_worker text,
    p_secret text,
    p_ticket_ids bigint[] default '{}',
    p_lease_tokens uuid[] default '{}'
)
returns table (ticket_id bigint, held boolean, lease_expires_at timestamptz)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := clock_timestamp();
begin
    -- why: a heartbeat also revives a runner reap() marked lost (it was only cut off).
    update turing.runners as r
    set last_seen_at = v_now, status = case when r.status = 'lost' then 'running' else r.status end
    where r.worker = p_worker
        and r.secret_hash = turing._secret_hash(p_secret);
    -- why: another runner's name (or a forged secret) gets nothing: no lease is extended.
    if not found then
        return query
        select s.ticket_id, false, null::timestamptz
        from unnest(p_ticket_ids) with ordinality as s (ticket_id, ord)
        order by s.ord;
        return;
    end if;
    return query
    with src as (
        select *
        from unnest(p_ticket_ids, p_lease_tokens) with ordinality as s (ticket_id, lease_token, ord)
    ),
    extended as (
        update turing.ticket_open as o
        -- why: a heartbeat never extends past the hard deadline (started_at + the timeout
        -- fixed at the start, the one the runner counts down), so a call that hangs while its
        -- runner stays alive is still taken back by reap(). A ticket claimed ahead and not
        -- started yet has no deadline: only the lease holds it.
        set lease_expires_at = least(
            v_now + coalesce(least(a.lease, o.timeout), a.unstarted_lease),
            coalesce(o.started_at + o.timeout, 'infinity')
        ),
            heartbeat_at = v_now
        from src as s, turing.actor_timeouts as a
        -- why: the token alone fences (only a running ticket has one); a status test would
        -- let the planner scan every running ticket through ticket_open_running.
        where o.ticket_id = s.ticket_id and o.lease_token = s.lease_token
            and a.actor_id = o.actor_id
        returning o.ticket_id, o.lease_expires_at
    )
    select s.ticket_id, e.ticket_id is not null, e.lease_expires_at
    from src as s
    left join extended as e on e.ticket_id = s.ticket_id
    order by s.ord;
end;
$$;

comment on function turing.heartbeat(text, text, bigint[], uuid[]) is
'Only with the secret register_runner issued to p_worker (otherwise nothing changes and every '
'held is false): mark the runner alive (a lost one running again) and extend the leases of '
'the tickets it holds to now + lease, never past started_at + timeout (the timeout fixed '
'when the ticket started; a ticket not started yet has no deadline). '
'held = false means that ticket is no longer this runner''s (reaped, cancelled): the runner '
'should stop it; its result would be discarded anyway.';
