-- startup_state: what a runner (or an operator) finds when it starts: per actor, open work and
-- expired leases, so a restart can log the state instead of needing a manual step.
create or replace function turing.startup_state(p_models text[] default null)
returns table (
    actor text,
    kind text,
    model text,
    enabled boolean,
    pending bigint,
    running bigint,
    expired bigint,
    dead bigint
)
language sql
stable
security definer
set search_path = ''
as $$
    select
        a.name,
        a.kind,
        a.model,
        a.enabled,
        coalesce((select sum(c.n) from turing.ticket_counts as c
                  where c.actor_id = a.actor_id and c.status = 'pending'), 0)::bigint,
        coalesce((select sum(c.n) from turing.ticket_counts as c
                  where c.actor_id = a.actor_id and c.status = 'running'), 0)::bigint,
        (select count(*) from turing.ticket_open as o
         where o.actor_id = a.actor_id and o.status = 'running'
             and o.lease_expires_at < clock_timestamp()),
        coalesce((select sum(c.n) from turing.ticket_counts as c
                  where c.actor_id = a.actor_id and c.status = 'dead'), 0)::bigint
    from turing.actors as a
    where p_models is null or a.model = any(p_models)
    order by a.model, a.name;
$$;

comment on function turing.startup_state(text[]) is
'Per actor (of the given models, or all): its kind and model, pending, running, expired '
'(running with a lapsed lease, about to be reaped) and dead tickets. Runners log it at start; '
'no state needs a manual step.';
