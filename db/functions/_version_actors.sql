-- _version_actors: keep turing.actor_versions and actors.version in step with what each actor
-- does: a new version when the versioned fields or a sql actor's function body changed.
create or replace function turing._version_actors(p_actor_id integer default null)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_made integer := 0;
    v_actor record;
    v_version integer;
begin
    for v_actor in
        with current_state as (
            select
                a.actor_id,
                a.version,
                d.definition,
                (
                    select pg_catalog.pg_get_functiondef(p.oid)
                    from pg_catalog.pg_proc as p
                    where a.kind = 'sql'
                        and p.oid::regproc::text = a.sql_function
                        -- why: the signature _register_actor resolved (overloads differ)
                        and p.proargtypes::text
                        = pg_catalog.array_to_string('{text,jsonb}'::regtype []::oid [], ' ')
                ) as sql_source,
                (
                    select jsonb_object_agg(f.field, d.definition -> f.field)
                    from turing.actor_fields as f
                    where f.versioned
                ) as behaviour
            from turing.actors as a
            cross join lateral turing.actor_definitions(a.name) as d
            where p_actor_id is null or a.actor_id = p_actor_id
        )
        select
            c.actor_id,
            c.version,
            c.definition,
            c.sql_source,
            pg_catalog.encode(
                pg_catalog.sha256(pg_catalog.convert_to(
                    c.behaviour::text || coalesce(c.sql_source, ''), 'UTF8'
                )),
                'hex'
            ) as hash
        from current_state as c
        order by c.actor_id
    loop
        select v.version into v_version
        from turing.actor_versions as v
        where v.actor_id = v_actor.actor_id and v.hash = v_actor.hash;
        if v_version is null then
            -- why: the actor row is locked by register_actor, or here, so two sessions never
            -- number the same version twice.
            perform from turing.actors as a where a.actor_id = v_actor.actor_id for update;
            insert into turing.actor_versions (actor_id, version, hash, definition, sql_source)
            select
                v_actor.actor_id,
                coalesce(max(v.version), 0) + 1,
                v_actor.hash,
                v_actor.definition,
                v_actor.sql_source
            from turing.actor_versions as v
            where v.actor_id = v_actor.actor_id
            on conflict on constraint actor_versions_one_per_hash do nothing
            returning version into v_version;
            if v_version is null then
                -- a concurrent session made it first
                select v.version into v_version
                from turing.actor_versions as v
                where v.actor_id = v_actor.actor_id and v.hash = v_actor.hash;
            else
                v_made := v_made + 1;
            end if;
        end if;
        if v_actor.version is distinct from v_version then
            -- why: an actor in use before stages existed (0027) whose first version is made
            -- now keeps running: that version is production.
            if v_actor.version is null then
                with g as (
                    delete from turing.stage_grandfathered as g
                    where g.actor_id = v_actor.actor_id
                    returning g.actor_id
                )
                insert into turing.promotions (
                    actor_id, version, from_stage, to_stage, evidence, note
                )
                select g.actor_id, v_version, 'develop', 'production',
                    '{"grandfathered": true}',
                    'grandfathered: in use before stages existed (migration 0027)'
                from g;
            end if;
            -- why: the stage belongs to the version: a new one starts in develop, an earlier
            -- one comes back at the stage it had.
            update turing.actors as a
            set version = v_version,
                stage = coalesce((
                    select p.to_stage from turing.promotions as p
                    where p.actor_id = a.actor_id and p.version = v_version
                    order by p.promotion_id desc limit 1
                ), 'develop'),
                production_version = turing._production_version(a.actor_id)
            where a.actor_id = v_actor.actor_id;
        end if;
    end loop;
    return v_made;
end;
$$;

comment on function turing._version_actors(integer) is
'Internal: give one actor (or every actor, p_actor_id null) the version of what it does now: '
'the sha256 of its versioned fields (turing.actor_fields) and, for a sql actor, its function''s '
'source; a hash not seen before is a new row of turing.actor_versions, a hash seen before is '
'that version again. Sets actors.version. Called by register_actor and set_actor, and by '
'maintain about once a minute (a sql function replaced in place). Keeps actors.stage (the '
'new version''s stage: develop, or the one an earlier version had) and production_version. '
'Returns the versions made.';
