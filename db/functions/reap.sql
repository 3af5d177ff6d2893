-- reap: take back every expired lease (the runner died, stalled or passed the timeout) and
-- retry or bury the work. Any runner, cron or pg_cron may call it, as often as it likes.
create or replace function turing.reap(p_caller text default null)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_ids bigint [];
    v_tokens uuid [];
    v_errors text [];
    v_count integer := 0;
begin
    -- why: one guarded statement picks the expired leases; SKIP LOCKED leaves alone a ticket whose
    -- completion is committing right now (that completion wins), and lets two reapers split the
    -- work instead of waiting on each other.
    select
        array_agg(o.ticket_id order by o.ticket_id),
        array_agg(o.lease_token order by o.ticket_id),
        array_agg(
            case
                when o.lease_expires_at >= o.started_at + a.timeout then format(
                    'timed out: attempt ran past the actor timeout %s (started %s on %s)',
                    a.timeout, o.started_at, coalesce(o.worker, '?')
                )
                else format(
                    'lease expired at %s: runner %s stopped heartbeating (crashed, stalled or '
                    'lost its database connection)', o.lease_expires_at, coalesce(o.worker, '?')
                )
            end
            order by o.ticket_id
        )
    into v_ids, v_tokens, v_errors
    from (
        select x.ticket_id from turing.ticket_open as x
        where x.status = 'running' and x.lease_expires_at < v_started
        order by x.lease_expires_at
        limit 10000
        for update skip locked
    ) as e
    inner join turing.ticket_open as o on o.ticket_id = e.ticket_id
    inner join turing.actors as a on a.actor_id = o.actor_id;

    if v_ids is not null then
        select count(*)::integer into v_count
        from turing._retire(
            v_ids, v_tokens, v_errors,
            array_fill('timed_out'::text, array[cardinality(v_ids)]),
            array_fill(true, array[cardinality(v_ids)]),
            true
        );
    end if;
    -- why: logged also when it found nothing: proof that reaping runs.
    insert into turing.maintenance_log (operation, started_at, rows_affected, caller, detail)
    values ('reap', v_started, v_count, p_caller, jsonb_build_object('ticket_ids', to_jsonb(v_ids)));
    return v_count;
end;
$$;

comment on function turing.reap(text) is
'Take back running tickets whose lease expired: each becomes timed_out with a retry (attempt + '
'1, after backoff) or dead when attempts are exhausted. A late result of a reaped attempt is '
'then refused by complete_ticket. Logs every run in maintenance_log, also when nothing was '
'found. Returns the number reaped (at most 10000 per call).';
