-- reap: take back every expired lease (the runner died, stalled or passed the timeout) and
-- retry or bury the work; mark silent runners lost and forget old ones. Any runner, cron or
-- pg_cron may call it, as often as it likes.
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
    v_unstarted bigint [];
    v_unstarted_tokens uuid [];
    v_count integer := 0;
    v_returned integer := 0;
    v_lost text [];
    v_lost_after interval := turing._setting('runner_lost_after', '30 seconds')::interval;
    v_keep interval := turing._setting('runner_retention', '1 hour')::interval;
    v_server_start timestamptz := pg_catalog.pg_postmaster_start_time();
begin
    -- why: one guarded statement picks the expired leases; SKIP LOCKED leaves alone a ticket
    -- whose completion is committing right now (that completion wins), and lets two reapers
    -- split the work instead of waiting on each other.
    select
        array_agg(o.ticket_id order by o.ticket_id) filter (where o.started_at is not null),
        array_agg(o.lease_token order by o.ticket_id) filter (where o.started_at is not null),
        array_agg(
            case
                -- why: the timeout fixed at the start, the deadline the runner and heartbeat
                -- counted: an auto value that moved since does not change it.
                when o.lease_expires_at >= o.started_at + o.timeout then format(
                    'timed out: the attempt ran past the actor timeout %s (as fixed when it '
                    'started, %s on %s)',
                    o.timeout, o.started_at, coalesce(o.worker, '?')
                )
                else format(
                    'lease expired at %s: runner %s stopped heartbeating while the attempt '
                    'ran (crashed, stalled or lost its database connection)',
                    o.lease_expires_at, coalesce(o.worker, '?')
                )
            end
            order by o.ticket_id
        ) filter (where o.started_at is not null),
        array_agg(o.ticket_id order by o.ticket_id) filter (where o.started_at is null),
        array_agg(o.lease_token order by o.ticket_id) filter (where o.started_at is null)
    into v_ids, v_tokens, v_errors, v_unstarted, v_unstarted_tokens
    from (
        select x.ticket_id from turing.ticket_open as x
        where x.status = 'running' and x.lease_expires_at < v_started
            -- why: a lease that ran out while the server itself was down (it expired before
            -- this server started) is no sign that its runner died: its holder gets
            -- runner_lost_after from the start to reconnect and heartbeat it again. Without
            -- this, the first reap after a restart would charge every attempt in flight.
            and not (
                x.lease_expires_at < v_server_start and v_started < v_server_start + v_lost_after
            )
        order by x.lease_expires_at
        limit 10000
        for update skip locked
    ) as e
    inner join turing.ticket_open as o on o.ticket_id = e.ticket_id;

    if v_ids is not null then
        select count(*)::integer into v_count
        from turing._retire(
            v_ids, v_tokens, v_errors,
            array_fill('timed_out'::text, array[cardinality(v_ids)]),
            array_fill(true, array[cardinality(v_ids)]),
            true
        );
    end if;
    -- why: a ticket claimed ahead whose runner died never started: no attempt was made, so it
    -- goes back to pending as it was, nothing charged.
    if v_unstarted is not null then
        v_returned := turing._unclaim(
            v_unstarted, v_unstarted_tokens,
            'claimed ahead by a runner that stopped heartbeating before starting it'
        );
    end if;

    -- why: a runner silent past runner_lost_after (SIGKILL, power cut) would otherwise stay
    -- "running" for ever, with its stall alert; it revives itself if it was only cut off.
    with lost as (
        update turing.runners as r set status = 'lost', stopped_at = v_started
        where r.status in ('running', 'stopping') and r.last_seen_at < v_started - v_lost_after
        returning r.worker
    )
    select array_agg(l.worker order by l.worker) into v_lost from lost as l;
    if v_lost is not null then
        perform turing._emit_events(array(
            select jsonb_build_object(
                'event', 'runner.lost', 'worker', w, 'at', v_started,
                'silent_for', v_lost_after
            )
            from unnest(v_lost) as w
        ));
    end if;
    delete from turing.runners as r
    where r.status in ('stopped', 'lost') and r.last_seen_at < v_started - v_keep
        and not exists (select from turing.ticket_open as o where o.worker = r.worker);
    delete from turing.backend_status as b
    where not exists (select from turing.runners as r where r.worker = b.worker);

    -- why: logged also when it found nothing: proof that reaping runs.
    insert into turing.maintenance_log (operation, started_at, rows_affected, caller, detail)
    values (
        'reap', v_started, v_count, p_caller,
        jsonb_build_object(
            'ticket_ids', to_jsonb(v_ids), 'returned_unstarted', to_jsonb(v_unstarted),
            'runners_lost', to_jsonb(v_lost)
        )
    );
    return v_count + v_returned;
end;
$$;

comment on function turing.reap(text) is
'Take back running tickets whose lease expired: a started one becomes timed_out (the reason '
'says whether it ran past the timeout it started with or its runner stopped heartbeating) with a retry '
'(attempt + 1, after backoff) or dead when attempts are exhausted; one claimed ahead and never '
'started goes back to pending with nothing charged. A late result of a reaped attempt is then '
'refused by complete_ticket. Marks runners silent past settings.runner_lost_after lost '
'(runner.lost event) and deletes stopped and lost runners older than runner_retention. A lease '
'that expired while the server was down is left to its holder for runner_lost_after after the '
'server started (it could not heartbeat; a restart must not charge the attempts in flight). Logs '
'every run in maintenance_log, also when nothing was found. Returns the number of tickets '
'taken back (at most 10000 per call).';
