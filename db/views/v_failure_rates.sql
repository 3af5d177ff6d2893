-- v_failure_rates: per model and actor, how often attempts fail (today and the last 7 days).
create view turing.v_failure_rates as
select
    m.model,
    a.name as actor,
    sum(m.finished) filter (where m.day = current_date)::bigint as finished_today,
    round(
        (sum(m.finished - m.completed) filter (where m.day = current_date))::numeric
        / nullif(sum(m.finished) filter (where m.day = current_date), 0), 4
    ) as failure_rate_today,
    sum(m.finished)::bigint as finished_7d,
    round(sum(m.finished - m.completed)::numeric / nullif(sum(m.finished), 0), 4) as failure_rate_7d
from turing.metrics_daily as m
inner join turing.actors as a on m.actor_id = a.actor_id
where m.day > current_date - 7
group by rollup (m.model, a.name);

comment on view turing.v_failure_rates is
'Failure rate (failed + timed_out + dead attempts / finished) per model and actor, today and '
'over 7 days, from metrics_daily (refreshed by tick()). Rows with actor NULL are the per-model '
'totals; the row with both NULL is the total.';
