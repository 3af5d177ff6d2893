-- actor_timeouts: the timeout an attempt of each actor starts with now, warm and cold: the one
-- rule claim_batch and start_tickets apply, and that v_timeout_recommendations shows.
create view turing.actor_timeouts as
select
    m.actor_id,
    m.actor,
    m.model,
    m.revision,
    m.version,
    m.stage,
    m.production_version,
    m.lease,
    m.auto,
    m.samples,
    m.p99_ms,
    m.load_ms,
    m.unstarted_lease,
    m.measured_warm,
    m.measured_cold,
    -- why: too few runs to trust a p99: the ceiling never cuts a slow first run short.
    case when m.auto then coalesce(m.measured_warm, m.ceiling) else m.fixed end as warm_timeout,
    case when m.auto then coalesce(m.measured_cold, m.ceiling) else m.fixed end as cold_timeout
from (
    select
        a.actor_id,
        a.name as actor,
        a.model,
        a.revision,
        a.version,
        a.stage,
        a.production_version,
        a.lease,
        a.timeout = 'auto' as auto,
        case when a.timeout <> 'auto' then a.timeout::interval end as fixed,
        a.timeout_ceiling as ceiling,
        r.samples,
        r.p99_ms,
        l.load_ms,
        -- why: a claim not started yet has no timeout of its own; its lease is capped by the
        -- shortest timeout it could start with (the fixed one, or the floor of an auto one).
        least(
            a.lease,
            case when a.timeout = 'auto' then a.timeout_floor else a.timeout::interval end
        ) as unstarted_lease,
        -- why: explicit cases, since greatest() skips a NULL p99 and would give the floor.
        case when r.p99_ms is not null then least(
            a.timeout_ceiling,
            greatest(a.timeout_floor, make_interval(secs => ceil(r.p99_ms * 2 / 1000.0)))
        ) end as measured_warm,
        case when r.p99_ms is not null then least(
            a.timeout_ceiling,
            greatest(
                a.timeout_floor,
                make_interval(secs => ceil((r.p99_ms * 2 + coalesce(l.load_ms, 0)) / 1000.0))
            )
        ) end as measured_cold
    from turing.actors as a
    left join turing.actor_run_times as r on a.actor_id = r.actor_id
    left join turing.model_loads as l on a.model = l.model
) as m;

comment on view turing.actor_timeouts is
'Per actor, the timeout an attempt gets if it starts now: warm_timeout when the runner''s model '
'is loaded, cold_timeout when the runner must load it first (it says so: claim_batch and '
'start_tickets p_cold). A fixed timeout is the same in both. An auto one is measured_warm / '
'measured_cold: p99 x 2 of the measured run time (actor_run_times), plus the model''s load time '
'(model_loads) when cold, rounded up to a whole second and kept between timeout_floor and '
'timeout_ceiling (NULL, and the ceiling is used, while fewer than settings.timeout_auto_samples '
'attempts are measured). unstarted_lease caps the lease of a claim that waits in its runner.';
