-- actor_history: the versions of one actor, newest first, with what changed in each.
create or replace function turing.actor_history(p_actor text)
returns table (
    version integer,
    hash text,
    created_at timestamptz,
    created_by text,
    is_current boolean,
    changed text[],
    definition jsonb
)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_actor turing.actors%rowtype;
begin
    select a.* into v_actor from turing.actors as a
    where a.actor_id = turing._actor_id(p_actor);
    return query
    select
        v.version,
        v.hash,
        v.created_at,
        v.created_by,
        v.version = v_actor.version,
        -- why: against the version made just before it, so each row says what that change was
        (
            select coalesce(array_agg(f.field order by f.position), '{}')
            from turing.actor_fields as f
            where f.versioned and p.version is not null
                and p.definition -> f.field is distinct from v.definition -> f.field
        ) || case
            when p.version is not null and p.sql_source is distinct from v.sql_source
                then '{sql_source}'::text []
            else '{}'::text []
        end,
        v.definition
    from turing.actor_versions as v
    left join turing.actor_versions as p
        on p.actor_id = v.actor_id and p.version = v.version - 1
    where v.actor_id = v_actor.actor_id
    order by v.version desc;
end;
$$;

comment on function turing.actor_history(text) is
'The versions of actor p_actor (turing.actor_versions), newest first: version, hash, when and by '
'whom it was made, whether it is the current one, the versioned fields (and sql_source) that '
'differ from the version before it, and the whole definition. TR002 for an unknown actor. '
'`turing actor history NAME` prints it.';
