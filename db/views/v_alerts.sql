-- v_alerts: what needs an operator now. Starvation, stall, failure spike, unwired outbox.
create view turing.v_alerts as
with alive as (
    select
        r.worker,
        unnest(r.models) as model
    from turing.runners as r
    where r.status in ('running', 'stopping') and r.last_seen_at > statement_timestamp() - interval '1 minute'
),

open_work as (
    select
        a.actor_id,
        a.name,
        a.model,
        a.kind,
        a.inbox,
        a.outbox,
        coalesce(sum(c.n) filter (where c.status = 'pending'), 0) as pending,
        coalesce(sum(c.n) filter (where c.status = 'running'), 0) as running
    from turing.actors as a
    left join turing.ticket_counts as c on a.actor_id = c.actor_id
    where a.enabled
    group by a.actor_id
),

model_work as (
    select
        w.model,
        sum(w.pending) as pending,
        sum(w.running) as running
    from open_work as w
    group by w.model
)

-- no runner at all for a model that has work
select
    'starvation' as alert,
    'critical' as severity,
    'model ' || m.model as subject,
    format(
        '%s pending tickets for model %s and no live runner serves it; start turing-runner --model %s',
        m.pending, m.model, m.model
    ) as message
from model_work as m
where
    m.pending > 0 and m.model <> 'human'
    and not exists (select from alive as l where l.model = m.model)
union all
-- a model's runners idle while the actors upstream of it still have work
select distinct on (down.model)
    'starvation' as alert,
    'warning' as severity,
    'model ' || down.model as subject,
    format(
        'runner(s) of model %s are idle while upstream actor %s (model %s) still has %s open '
        'tickets: the GPU waits on %s',
        down.model, up.name, up.model, up.pending + up.running, up.model
    ) as message
from open_work as down
inner join model_work as dm on down.model = dm.model and dm.pending + dm.running = 0
inner join open_work as up on down.model <> up.model and up.outbox && down.inbox
where
    up.pending + up.running > 0
    and exists (select from alive as l where l.model = down.model)
union all
-- everything drained: runners alive, nothing queued anywhere
select
    'drained' as alert,
    'info' as severity,
    'pipeline' as subject,
    format('pipeline drained: %s live runner(s) idle, nothing queued', count(distinct l.worker))
        as message
from alive as l
having count(*) > 0 and not exists (select from model_work as m where m.pending + m.running > 0)
union all
-- work waiting for a person: waiting, not drained
select
    'waiting_for_people' as alert,
    'info' as severity,
    'actor ' || w.name as subject,
    format(
        '%s ticket(s) of actor %s wait for a person; answer them with `turing human --model %s`',
        w.pending, w.name, w.model
    ) as message
from open_work as w
where w.kind = 'human' and w.pending > 0
union all
-- running tickets nobody looks after
select
    'stall' as alert,
    'critical' as severity,
    'tickets of worker ' || coalesce(s.worker, '?') as subject,
    format('%s running ticket(s) without a heartbeat (%s)', count(*), min(s.reason)) as message
from turing.v_stuck as s
group by s.worker
union all
-- a runner that stopped talking without stopping
select
    'stall' as alert,
    'critical' as severity,
    'runner ' || r.worker as subject,
    format(
        'runner %s (models %s) silent since %s', r.worker, array_to_string(r.models, ','),
        r.last_seen_at
    ) as message
from turing.runners as r
where r.status = 'running' and r.last_seen_at < statement_timestamp() - interval '1 minute'
union all
-- an actor failing much more than usual
select
    'failure_spike' as alert,
    'warning' as severity,
    'actor ' || w.name as subject,
    format(
        '%s of the last %s attempts of actor %s (model %s) failed in 15 minutes; last error: %s',
        f.failed, f.finished, w.name, w.model, f.last_error
    ) as message
from open_work as w
cross join
    lateral (
        select
            count(*) as finished,
            count(*) filter (where h.status in ('failed', 'timed_out', 'dead')) as failed,
            (array_agg(h.error order by h.finished_at desc) filter (where h.error is not null))[1]
                as last_error
        from turing.ticket_history as h
        where h.actor_id = w.actor_id and h.finished_at > statement_timestamp() - interval '15 minutes'
    ) as f
where f.finished >= 10 and f.failed >= 0.25 * f.finished
union all
-- a model server a live runner cannot use (its circuit breaker is open)
select
    'backend_down' as alert,
    'critical' as severity,
    'backend ' || b.backend || ' (model ' || b.model || ')' as subject,
    format(
        'runner %s cannot use %s for model %s since %s: %s; it stopped claiming that model, '
        'probes it and resumes by itself%s',
        b.worker, b.backend, b.model, b.since, coalesce(b.last_error, '?'),
        case when b.setting is not null then format(
            '. Every call failed the same way: check the runner setting %s', b.setting
        ) else '' end
    ) as message
from turing.backend_status as b
inner join turing.runners as r on b.worker = r.worker
where b.state = 'down' and r.status in ('running', 'stopping')
union all
-- what discovery could not do (the one rule: v_discovery_problems)
select
    p.problem as alert,
    'warning' as severity,
    'actor ' || p.actor as subject,
    format('actor %s: %s', p.actor, p.message) as message
from turing.v_discovery_problems as p
union all
-- an outbox status no enabled actor reads (the "4,500 results never saved" pain)
select
    'unwired_outbox' as alert,
    'warning' as severity,
    'actor ' || u.actor || ' -> ' || u.status as subject,
    format(
        'actor %s writes status %s but no enabled actor has it in its inbox; wire a consumer or '
        'declare it in final_outbox', u.actor, u.status
    ) as message
from turing.v_unwired_outboxes as u;

comment on view turing.v_alerts is
'Current alerts: starvation (a model with work and no live runner; a model''s runners idle '
'while upstream actors still have work; the whole pipeline drained), waiting_for_people (human '
'tickets open: waiting, not drained), stall (running tickets '
'without heartbeat; a runner silent for over a minute), failure_spike (>= 25 % of >= 10 '
'attempts of an actor failed in 15 minutes), backend_down (a live runner''s breaker is open for '
'a model server: host, last error, the runner setting to blame), discover_failed (a work_query '
'fails), subjects_rejected (rows a work_query returns that cannot be tickets), '
'outbox_not_written (finished subjects a work_query keeps returning), unwired_outbox (an outbox '
'status no enabled actor reads and not declared final). tick() and the runners record raises '
'and clears in alert_state and as events.';
