-- measure_run_times: per actor, p99 of the run time of its recent completed attempts, what an
-- auto timeout follows. Maintenance work (maintain, tick), so a claim only reads the result.
create or replace function turing.measure_run_times()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_samples integer := turing._setting('timeout_auto_samples', '20')::integer;
    v_window interval := turing._setting('timeout_auto_window', '7 days')::interval;
    v_rows integer;
begin
    insert into turing.actor_run_times as r (actor_id, samples, p99_ms, computed_at)
    select
        a.actor_id,
        m.samples,
        case when m.samples >= v_samples then m.p99_ms end,
        v_started
    from turing.actors as a
    cross join lateral (
        select
            count(*)::integer as samples,
            percentile_cont(0.99) within group (order by x.ms) as p99_ms
        from (
            -- why: started_at is when the call began, so time spent claimed ahead in a
            -- runner's queue is not run time; the newest 1000 are plenty for a p99 and keep
            -- this a short backward scan of ticket_history_actor_finished per actor.
            select extract(epoch from h.finished_at - h.started_at) * 1000 as ms
            from turing.ticket_history as h
            where h.actor_id = a.actor_id
                and h.finished_at >= v_started - v_window
                and h.status = 'completed'
                and h.started_at is not null
            order by h.finished_at desc
            limit 1000
        ) as x
    ) as m
    on conflict (actor_id) do update set
        samples = excluded.samples, p99_ms = excluded.p99_ms, computed_at = excluded.computed_at;
    get diagnostics v_rows = row_count;
    insert into turing.maintenance_log (operation, started_at, rows_affected, detail)
    values ('measure_run_times', v_started, v_rows, jsonb_build_object('window', v_window));
    return v_rows;
end;
$$;

comment on function turing.measure_run_times() is
'Measure, per actor, its completed attempts of the last settings.timeout_auto_window (the newest '
'1000): how many, and the p99 of their run time (started_at to finished_at, queue time '
'excluded) once there are settings.timeout_auto_samples of them. Writes actor_run_times, which '
'auto timeouts and v_timeout_recommendations read (turing.actor_timeouts). Called by maintain() '
'(at most every settings.timeout_auto_interval) and tick(). Returns the actors measured.';
