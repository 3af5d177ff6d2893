-- v_dead_letters: dead tickets nobody has handled yet (no later ticket for the same work).
create view turing.v_dead_letters as
select
    h.ticket_id,
    a.name as actor,
    h.model,
    h.subject_id,
    h.attempt,
    h.failure_kind,
    h.error,
    h.finished_at,
    h.chain_id
from turing.ticket_history as h
inner join turing.actors as a on h.actor_id = a.actor_id
where
    h.status = 'dead'
    and not exists (
        select from turing.ticket_open as o
        where o.actor_id = h.actor_id and o.subject_id = h.subject_id
    )
    and not exists (
        select from turing.ticket_history as l
        where
            l.actor_id = h.actor_id and l.subject_id = h.subject_id
            and l.ticket_id > h.ticket_id
    );

comment on view turing.v_dead_letters is
'Dead tickets (attempts exhausted, or not retryable) with their last error, that no later '
'ticket has retried. Retry one with turing.retry_dead(ticket_id) or `turing dead retry`.';
