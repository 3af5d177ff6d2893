-- v_runners: the runner processes, whether they are alive, and what they hold.
create view turing.v_runners as
select
    r.worker,
    r.models,
    r.hostname,
    r.pid,
    r.concurrency,
    r.status,
    r.current_model,
    r.current_batch_id,
    r.started_at,
    r.last_seen_at,
    statement_timestamp() - r.last_seen_at as silent_for,
    (r.status <> 'stopped' and r.last_seen_at > statement_timestamp() - interval '1 minute') as alive,
    (
        select count(*) from turing.ticket_open as o
        where o.worker = r.worker and o.status = 'running'
    ) as in_flight
from turing.runners as r;

comment on view turing.v_runners is
'Runners with their models, state, the batch they work on, tickets in flight, and alive = '
'not stopped and seen (claim or heartbeat) within the last minute.';
