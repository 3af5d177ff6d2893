-- _actor_runtime: what a runner needs of an actor to run its tickets, as JSON (the fields of
-- turing_pg.db.ActorRuntime but the revision): sent by claim_batch once per revision, and read
-- by actor_runtime for the harness, so both run an actor from the same definition.
create or replace function turing._actor_runtime(p_actor_id integer)
returns jsonb
language sql
stable
set search_path = ''
as $$
    select jsonb_build_object(
        'name', a.name, 'kind', a.kind, 'model', a.model,
        'prompt_template', a.prompt_template, 'output_schema', a.output_schema,
        'script', a.script, 'sql_function', a.sql_function,
        'options', a.options, 'system_prompt', a.system_prompt,
        'think', a.think,
        -- why: null for an auto timeout: each ticket's comes with its start.
        'timeout_s', case when not t.auto then extract(epoch from t.warm_timeout) end,
        'lease_s', extract(epoch from t.unstarted_lease)
    )
    from turing.actors as a
    inner join turing.actor_timeouts as t on a.actor_id = t.actor_id
    where a.actor_id = p_actor_id;
$$;

comment on function turing._actor_runtime(integer) is
'Internal: the definition a runner runs an actor''s tickets with, as JSON (name, kind, model, '
'prompt_template, output_schema, script, sql_function, options, system_prompt, think, '
'timeout_s: null for an auto timeout, lease_s). claim_batch sends it once per revision; '
'actor_runtime gives it to the harness.';
