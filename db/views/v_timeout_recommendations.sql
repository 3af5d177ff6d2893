-- v_timeout_recommendations: per actor, the timeout the measured latency suggests.
create view turing.v_timeout_recommendations as
with recent as (
    select
        m.actor_id,
        sum(m.completed)::bigint as completed,
        max(m.p99_ms) as p99_ms,
        max(m.max_ms) as max_ms
    from turing.metrics_daily as m
    where m.day >= current_date - 7
    group by m.actor_id
)

select
    a.name as actor,
    a.model,
    a.timeout as configured_timeout,
    r.completed as completed_last_7_days,
    round(r.p99_ms::numeric, 1) as p99_ms,
    round(r.max_ms::numeric, 1) as max_ms,
    make_interval(secs => ceil(r.p99_ms * 2 / 1000.0)) as recommended_timeout,
    case
        when r.completed is null or r.completed < 20 then 'not enough data (under 20 completed)'
        when a.timeout < make_interval(secs => r.p99_ms * 2 / 1000.0) then 'raise: timeout is below p99 x 2'
        when
            a.timeout > make_interval(secs => r.p99_ms * 10 / 1000.0)
            then 'lower: timeout is over p99 x 10; stuck calls wait too long'
        else 'ok'
    end as verdict
from turing.actors as a
left join recent as r on a.actor_id = r.actor_id;

comment on view turing.v_timeout_recommendations is
'Per actor: configured timeout against p99 x 2 of completed run times over the last 7 days of '
'metrics_daily (the worst daily p99), with a verdict (raise / lower / ok / not enough data). '
'Run compute_metrics() or tick() to refresh the numbers.';
