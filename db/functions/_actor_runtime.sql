-- _actor_runtime: what a runner needs of an actor to run its tickets, as JSON (the fields of
-- turing_pg.db.ActorRuntime but the revision): sent by claim_batch once per revision, and read
-- by actor_runtime for the harness, so both run an actor from the same definition.
create or replace function turing._actor_runtime(
    p_actor_id integer,
    p_version integer default null,
    p_raq_run_id bigint default null
)
returns jsonb
language sql
stable
set search_path = ''
as $$
    select jsonb_build_object(
        'name', a.name, 'kind', s.def -> 'kind',
        -- why: a raq run may try the version on another model
        'model', coalesce(to_jsonb(r.model), s.def -> 'model'),
        'prompt_template', s.def -> 'prompt_template', 'output_schema', s.def -> 'output_schema',
        'script', s.def -> 'script', 'sql_function', s.def -> 'sql_function',
        'options', s.def -> 'options', 'system_prompt', s.def -> 'system_prompt',
        'think', s.def -> 'think',
        -- why: the actor's timeouts now, whichever version runs; null for an auto timeout:
        -- each ticket's comes with its start.
        'timeout_s', case when not t.auto then extract(epoch from t.warm_timeout) end,
        'lease_s', extract(epoch from t.unstarted_lease)
    )
    from turing.actors as a
    inner join turing.actor_timeouts as t on a.actor_id = t.actor_id
    left join turing.raq_runs as r on r.raq_run_id = p_raq_run_id
    -- why: an earlier version (production while the current one climbs the gates) runs the
    -- definition recorded with it; the current one the actor's row
    cross join lateral (
        select coalesce(
            (
                select v.definition from turing.actor_versions as v
                where v.actor_id = a.actor_id and v.version = p_version
                    and p_version is distinct from a.version
            ),
            to_jsonb(a)
        ) as def
    ) as s
    where a.actor_id = p_actor_id;
$$;

comment on function turing._actor_runtime(integer, integer, bigint) is
'Internal: the definition a runner runs an actor''s tickets with, as JSON (name, kind, model, '
'prompt_template, output_schema, script, sql_function, options, system_prompt, think, '
'timeout_s: null for an auto timeout, lease_s): of version p_version (default the current one; '
'an earlier version''s from turing.actor_versions) and on raq run p_raq_run_id''s model when '
'given. claim_batch sends it once per revision; actor_runtime gives the current one to the '
'harness.';
