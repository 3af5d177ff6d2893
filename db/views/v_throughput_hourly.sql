-- v_throughput_hourly: finished attempts per actor and hour, the current hour and the 24 before.
-- why: closed hours come from the rollup that tick() keeps; only the attempts after its
-- watermark (normally the current hour) are counted from ticket_history, so the cost of a read
-- does not grow with the day's volume. Without tick() the view is as exact, only slower.
create view turing.v_throughput_hourly as
with since as (
    select date_trunc('hour', statement_timestamp()) - interval '24 hours' as hour
),

live_from as (
    select
        greatest(
            s.hour,
            coalesce(
                (select w.rolled_through from turing.throughput_watermark as w where w.only_row),
                '-infinity'
            )
        ) as at
    from since as s
)

select
    a.name as actor,
    a.model,
    t.hour,
    t.completed,
    t.failed,
    t.run_ms_sum,
    t.run_ms_p95
from turing.actors as a
cross join lateral (
    select
        r.hour,
        r.completed,
        r.failed,
        r.run_ms_sum,
        r.run_ms_p95
    from turing.throughput_hourly as r
    where
        r.actor_id = a.actor_id
        and r.hour >= (select s.hour from since as s)
        and r.hour < (select f.at from live_from as f)
    union all
    select
        date_trunc('hour', h.finished_at) as hour,
        count(*) filter (where h.status = 'completed') as completed,
        count(*) filter (where h.status in ('failed', 'timed_out', 'dead')) as failed,
        coalesce(sum(
            extract(epoch from h.finished_at - h.started_at) * 1000
        ) filter (where h.status = 'completed'), 0)::double precision as run_ms_sum,
        percentile_cont(0.95) within group (
            order by extract(epoch from h.finished_at - h.started_at) * 1000
        ) filter (where h.status = 'completed') as run_ms_p95
    from turing.ticket_history as h
    where
        h.actor_id = a.actor_id and h.finished_at >= (select f.at from live_from as f)
        -- why: implied by live_from, but the planner cannot see a subquery's value; this bound
        -- it can estimate (at most 24 hours, not a third of the history), so it reads the
        -- (actor_id, finished_at) index: 12 ms instead of a 10 s seq scan at 10 M rows.
        and h.finished_at >= date_trunc('hour', statement_timestamp()) - interval '24 hours'
    group by 1
) as t;

comment on view turing.v_throughput_hourly is
'Completed and failed (failed, timed_out, dead) attempts per actor and hour, for the current '
'hour and the 24 before it, with the sum and p95 of the completed ones'' run times (ms). '
'Closed hours are read from throughput_hourly (kept by tick()), the rest is counted from '
'ticket_history; the result is the same either way.';
