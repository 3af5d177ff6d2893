-- v_timeout_recommendations: per actor, the timeout the measured run times suggest, by the same
-- rule an auto timeout follows (turing.actor_timeouts), and what its attempts get now.
create view turing.v_timeout_recommendations as
select
    a.name as actor,
    a.model,
    a.timeout::text as configured_timeout,
    a.timeout_floor,
    a.timeout_ceiling,
    t.samples as completed_measured,
    round(t.p99_ms::numeric, 1) as p99_ms,
    round(t.load_ms::numeric, 1) as model_load_ms,
    -- why: what auto would give a cold start (p99 x 2 + load, within floor and ceiling): a fixed
    -- timeout must also survive the first call after a model load, which warm runs never show.
    t.measured_cold as recommended_timeout,
    t.warm_timeout as current_warm_timeout,
    t.cold_timeout as current_cold_timeout,
    case
        when t.auto and t.p99_ms is null
            then 'auto: the ceiling until enough attempts are measured'
        when t.auto then 'auto: follows p99 x 2 (plus the load time when cold)'
        when t.p99_ms is null then 'not enough data'
        when t.warm_timeout < make_interval(secs => t.p99_ms * 2 / 1000.0)
            then 'raise: timeout is below p99 x 2'
        when
            t.warm_timeout > make_interval(secs => t.p99_ms * 10 / 1000.0)
            and t.warm_timeout > a.timeout_floor
            then 'lower: timeout is over p99 x 10; stuck calls wait too long'
        else 'ok'
    end as verdict
from turing.actors as a
inner join turing.actor_timeouts as t on a.actor_id = t.actor_id;

comment on view turing.v_timeout_recommendations is
'Per actor: its timeout (a duration or auto) against the measured run times of its recent '
'completed attempts (actor_run_times: started_at to finished_at, so queue time never counts; '
'refreshed by maintain() and tick()). recommended_timeout is p99 x 2 plus the model''s load '
'time, within timeout_floor and timeout_ceiling (what an auto timeout gives a cold start); '
'current_warm_timeout and current_cold_timeout are what an attempt starting now gets. The '
'verdict says raise / lower / ok / not enough data (fewer than settings.timeout_auto_samples), '
'or how an auto timeout runs.';
