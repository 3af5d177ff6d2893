-- v_throughput_hourly: finished attempts per actor and hour over the last 24 hours.
create view turing.v_throughput_hourly as
select
    a.name as actor,
    a.model,
    t.hour,
    t.completed,
    t.failed
from turing.actors as a
cross join lateral (
    select
        date_trunc('hour', h.finished_at) as hour,
        count(*) filter (where h.status = 'completed') as completed,
        count(*) filter (where h.status in ('failed', 'timed_out', 'dead')) as failed
    from turing.ticket_history as h
    where h.actor_id = a.actor_id and h.finished_at > statement_timestamp() - interval '24 hours'
    group by 1
) as t;

comment on view turing.v_throughput_hourly is
'Completed and failed attempts per actor and hour over the last 24 hours (index range scan per '
'actor).';
