-- tickets: the one logical queue and audit log: open work and finished attempts together.
create view turing.tickets as
-- why: finished tickets outlive their actor: a removed actor's name comes from removed_actors.
with actor_names as (
    select
        l.actor_id,
        l.name
    from turing.actors as l
    union all
    select
        r.actor_id,
        r.name
    from turing.removed_actors as r
)

select
    o.ticket_id,
    o.actor_id,
    a.name as actor,
    o.model,
    o.subject_id,
    o.status,
    o.attempt,
    o.priority,
    o.input,
    null::jsonb as output,
    o.last_error as error,
    null::text as failure_kind,
    o.source,
    o.chain_id,
    o.chain_depth,
    o.parent_ticket_id,
    o.created_at,
    o.run_after,
    o.started_at,
    o.timeout,
    null::timestamptz as finished_at,
    o.worker,
    o.batch_id,
    o.lease_expires_at,
    o.heartbeat_at,
    o.actor_version
from turing.ticket_open as o
inner join turing.actors as a on o.actor_id = a.actor_id
union all
select
    h.ticket_id,
    h.actor_id,
    a.name,
    h.model,
    h.subject_id,
    h.status,
    h.attempt,
    h.priority,
    h.input,
    h.output,
    h.error,
    h.failure_kind,
    h.source,
    h.chain_id,
    h.chain_depth,
    h.parent_ticket_id,
    h.created_at,
    h.run_after,
    h.started_at,
    h.timeout,
    h.finished_at,
    h.worker,
    h.batch_id,
    null::timestamptz,
    null::timestamptz,
    h.actor_version
from turing.ticket_history as h
inner join actor_names as a on h.actor_id = a.actor_id;

comment on view turing.tickets is
'Every ticket, one row per attempt: open ones (pending, running; from ticket_open) and finished '
'ones (completed, failed, timed_out, cancelled, dead; from ticket_history). Read-only: change '
'tickets through the API functions. For open tickets, error is the previous attempt''s error. '
'timeout is the one the attempt runs (ran) with, fixed when it started. actor_version: the '
'version of the actor that ran it (turing.actor_versions). The finished tickets of a removed '
'actor (remove_actor) stay here under its name.';
