-- v_failure_rates: per model and actor, how often attempts fail (today and the last 7 days).
-- why: a day is read from metrics_daily once compute_metrics() summed it after it ended (tick
-- does at midnight); today, and any day never summed since it ended, is counted from
-- ticket_history, so the rates are current without waiting for tick.
create view turing.v_failure_rates as
with days as (
    select
        d.day,
        d.day in (
            select m.day from turing.metrics_daily as m
            where m.computed_at >= (m.day + 1)::timestamptz
        ) as summed
    from (
        select (current_date - g.n)::date as day from generate_series(0, 6) as g (n)
    ) as d
),

finished as (
    select
        m.day,
        m.actor_id,
        m.model,
        m.finished::bigint as finished,
        m.completed::bigint as completed
    from turing.metrics_daily as m
    inner join days as d on m.day = d.day and d.summed
    union all
    -- the same counts compute_metrics makes (cancelled attempts are not outcomes), per actor
    -- through its (actor_id, finished_at) index
    select
        d.day,
        a.actor_id,
        h.model,
        count(*) as finished,
        count(*) filter (where h.status = 'completed') as completed
    from days as d
    cross join turing.actors as a
    inner join turing.ticket_history as h
        on
            a.actor_id = h.actor_id
            and h.finished_at >= d.day::timestamptz
            and h.finished_at < (d.day + 1)::timestamptz
    where not d.summed and h.status <> 'cancelled'
    group by d.day, a.actor_id, h.model
)

select
    f.model,
    a.name as actor,
    sum(f.finished) filter (where f.day = current_date)::bigint as finished_today,
    round(
        (sum(f.finished - f.completed) filter (where f.day = current_date))::numeric
        / nullif(sum(f.finished) filter (where f.day = current_date), 0), 4
    ) as failure_rate_today,
    sum(f.finished)::bigint as finished_7d,
    round(sum(f.finished - f.completed)::numeric / nullif(sum(f.finished), 0), 4) as failure_rate_7d
from finished as f
inner join turing.actors as a on f.actor_id = a.actor_id
group by rollup (f.model, a.name);

comment on view turing.v_failure_rates is
'Failure rate (failed + timed_out + dead attempts / finished; cancelled ones do not count) per '
'model and actor, today and over 7 days. Current without tick(): days compute_metrics() summed '
'after they ended come from metrics_daily, today and the rest are counted from ticket_history. '
'Rows with actor NULL are the per-model totals; the row with both NULL is the total.';
