-- compute_metrics: roll one day of finished attempts up into metrics_daily.
create or replace function turing.compute_metrics(p_day date default current_date)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_rows integer;
begin
    insert into turing.metrics_daily as m (
        day, actor_id, model, finished, completed, failed, timed_out, dead, failure_rate,
        p50_ms, p95_ms, p99_ms, max_ms, computed_at
    )
    select
        p_day, h.actor_id, h.model,
        count(*),
        count(*) filter (where h.status = 'completed'),
        count(*) filter (where h.status = 'failed'),
        count(*) filter (where h.status = 'timed_out'),
        count(*) filter (where h.status = 'dead'),
        (count(*) filter (where h.status in ('failed', 'timed_out', 'dead')))::double precision
        / count(*),
        percentile_cont(0.5) within group (order by d.ms) filter (where h.status = 'completed'),
        percentile_cont(0.95) within group (order by d.ms) filter (where h.status = 'completed'),
        percentile_cont(0.99) within group (order by d.ms) filter (where h.status = 'completed'),
        max(d.ms) filter (where h.status = 'completed'),
        clock_timestamp()
    from turing.ticket_history as h
    cross join lateral (
        select extract(epoch from h.finished_at - h.started_at) * 1000 as ms
    ) as d
    where h.actor_id in (select a.actor_id from turing.actors as a)
        and h.finished_at >= p_day::timestamptz
        and h.finished_at < (p_day + 1)::timestamptz
        and h.status <> 'cancelled'
    group by h.actor_id, h.model
    on conflict (day, actor_id, model) do update set
        finished = excluded.finished, completed = excluded.completed, failed = excluded.failed,
        timed_out = excluded.timed_out, dead = excluded.dead,
        failure_rate = excluded.failure_rate, p50_ms = excluded.p50_ms,
        p95_ms = excluded.p95_ms, p99_ms = excluded.p99_ms, max_ms = excluded.max_ms,
        computed_at = excluded.computed_at;
    get diagnostics v_rows = row_count;
    insert into turing.maintenance_log (operation, started_at, rows_affected, detail)
    values ('compute_metrics', v_started, v_rows, jsonb_build_object('day', p_day));
    return v_rows;
end;
$$;

comment on function turing.compute_metrics(date) is
'Aggregate the attempts finished on p_day (server time zone) per actor and model into '
'metrics_daily: counts per outcome, failure rate, and p50/p95/p99/max run time in ms of '
'completed attempts. Idempotent (recomputes the day). Returns rows written.';
