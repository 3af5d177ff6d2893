-- v_dead_letters: dead tickets nobody has handled yet (no later ticket for the same work).
-- why: read from turing.dead_letters (kept by _retire, _create_ticket and prune_history) instead
-- of probing the history for each dead attempt; a read costs the number of dead letters, not
-- the size of the history.
create view turing.v_dead_letters as
select
    d.ticket_id,
    a.name as actor,
    d.model,
    d.subject_id,
    d.attempt,
    d.failure_kind,
    d.error,
    d.finished_at,
    d.chain_id
from turing.dead_letters as d
inner join turing.actors as a on d.actor_id = a.actor_id;

comment on view turing.v_dead_letters is
'Dead tickets (attempts exhausted, or not retryable) with their last error, that no later '
'ticket has retried. Retry one with turing.retry_dead(ticket_id) or `turing dead retry`.';
