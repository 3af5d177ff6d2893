-- actor_runtime: one actor's current definition as a runner runs it, for the tools that run an
-- actor outside the queue (`turing harness | matrix | chat`): the same JSON claim_batch sends.
create or replace function turing.actor_runtime(p_actor text)
returns table (
    actor_revision bigint,
    actor_version integer,
    timeout_s double precision,
    actor jsonb
)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
    return query
    select a.revision, t.version, extract(epoch from t.warm_timeout)::double precision,
        turing._actor_runtime(a.actor_id)
    from turing.actors as a
    inner join turing.actor_timeouts as t on a.actor_id = t.actor_id
    where a.name = p_actor;
    if not found then
        raise exception 'unknown actor "%"', p_actor
            using errcode = 'TR002',
            hint = 'List actors with `turing actor list` or select name from turing.actors.';
    end if;
end;
$$;

comment on function turing.actor_runtime(text) is
'The named actor''s current definition as a runner runs it: its revision, version, the timeout '
'an attempt started now (warm) gets, and the JSON claim_batch sends (_actor_runtime). Reads '
'only. Raises TR002 for an unknown actor. Used by `turing harness`, `matrix` and `chat`.';
