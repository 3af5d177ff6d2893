-- v_dashboard: one row per actor, what `turing status` shows: open work, the last hour, speed.
create view turing.v_dashboard as
select
    a.name as actor,
    a.model,
    a.kind,
    a.enabled,
    coalesce(c.pending, 0) as pending,
    coalesce(c.running, 0) as running,
    coalesce(c.dead, 0) as dead,
    h.done_1h as done_last_hour,
    h.failed_1h as failed_last_hour,
    round(h.done_5m / 5.0, 1) as rate_per_min,
    round(h.p95_ms::numeric, 1) as p95_ms,
    case
        when coalesce(c.pending, 0) + coalesce(c.running, 0) = 0 then interval '0'
        when h.done_5m > 0
            then make_interval(
                secs => (coalesce(c.pending, 0) + coalesce(c.running, 0)) * 300.0 / h.done_5m
            )
    end as eta,
    (
        -- why: per actor through calls_actor_at, the last hour only; generation speed as the
        -- model server measured it (output tokens per second of eval_duration).
        select round(sum(x.eval_count) / nullif(sum(x.eval_duration) / 1e9, 0), 1)
        from turing.calls as x
        where
            x.actor_id = a.actor_id and x.at > statement_timestamp() - interval '1 hour'
            and x.eval_duration > 0
    ) as tokens_per_s
from turing.actors as a
left join lateral (
    select
        sum(x.n) filter (where x.status = 'pending')::bigint as pending,
        sum(x.n) filter (where x.status = 'running')::bigint as running,
        sum(x.n) filter (where x.status = 'dead')::bigint as dead
    from turing.ticket_counts as x
    where x.actor_id = a.actor_id
) as c on true
cross join lateral (
    -- why: per actor through the (actor_id, finished_at) index: reads the last hour only,
    -- whatever the size of the history.
    select
        count(*) filter (where t.status = 'completed') as done_1h,
        count(*) filter (where t.status in ('failed', 'timed_out', 'dead')) as failed_1h,
        count(*) filter (
            where t.status = 'completed' and t.finished_at > statement_timestamp() - interval '5 minutes'
        ) as done_5m,
        percentile_cont(0.95) within group (
            order by extract(epoch from t.finished_at - t.started_at) * 1000
        ) filter (where t.status = 'completed') as p95_ms
    from turing.ticket_history as t
    where t.actor_id = a.actor_id and t.finished_at > statement_timestamp() - interval '1 hour'
) as h;

comment on view turing.v_dashboard is
'Per actor: model, kind, enabled, pending/running/dead tickets (trigger-kept counts), '
'completed and failed in the last hour, rate per minute over the last 5 minutes, p95 run time '
'(ms) over the last hour, and ETA of the open work at the current rate (NULL when nothing '
'completed in 5 minutes), and tokens_per_s: the generation speed of its LLM calls in the last '
'hour (output tokens per second of the server''s eval_duration; NULL without such calls).';
