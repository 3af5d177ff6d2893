-- discover_due: which actors of a model should run their work_query now: enabled, not paused
-- after an error, buffer below what is wanted, and not re-queried too soon after a drained run.
create or replace function turing.discover_due(p_model text, p_want integer default 1)
returns table (actor text)
language sql
stable
security definer
set search_path = ''
as $$
    select a.name
    from turing.actors as a
    left join turing.actor_discovery as d on d.actor_id = a.actor_id
    where a.model = p_model and a.enabled and a.work_query is not null
        and (d.paused_until is null or d.paused_until <= clock_timestamp())
        -- why: a drained inbox is re-queried at most once per discover_interval, so idle
        -- runners asking often do not run every work_query on every poll.
        and (
            d.last_run_at is null or not d.exhausted
            or d.last_run_at <= clock_timestamp()
            - turing._setting('discover_interval', '2 seconds')::interval
        )
        and (
            select coalesce(sum(c.n), 0) from turing.ticket_counts as c
            where c.actor_id = a.actor_id and c.status = 'pending'
        ) < greatest(p_want, a.buffer_size / 2)
    order by a.priority desc, a.actor_id;
$$;

comment on function turing.discover_due(text, integer) is
'The enabled actors of model p_model whose work_query should run now (top_up each): fewer '
'pending tickets than max(p_want, buffer_size / 2), not paused after a failing work_query, and '
'not re-queried within discover_interval after a run that found the inbox drained.';
