-- set_actor: change some fields of an actor, re-validating the whole definition.
create or replace function turing.set_actor(p_actor text, p_changes jsonb)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_current jsonb;
    v_new jsonb;
    v_unknown text;
begin
    select to_jsonb(a) into v_current from turing.actors as a where a.name = p_actor;
    if v_current is null then
        raise exception 'unknown actor "%"', p_actor using errcode = 'TR002';
    end if;
    select string_agg(k, ', ') into v_unknown
    from jsonb_object_keys(p_changes) as k
    where k not in (
        'model', 'work_query', 'prompt_template', 'output_schema', 'script', 'sql_function',
        'on_complete', 'inbox', 'outbox', 'final_outbox', 'batch_size', 'buffer_size', 'timeout',
        'lease', 'max_attempts', 'backoff_base', 'backoff_max', 'priority', 'enabled',
        'raq_stage', 'options', 'description'
    );
    if v_unknown is not null then
        raise exception 'cannot set %: not an actor field (or not changeable)', v_unknown
            using errcode = 'TR012';
    end if;
    v_new := v_current || p_changes;
    -- why: one validation path: the merged definition goes through register_actor.
    return turing.register_actor(
        p_name => p_actor,
        p_kind => v_new ->> 'kind',
        p_model => v_new ->> 'model',
        p_work_query => v_new ->> 'work_query',
        p_prompt_template => v_new ->> 'prompt_template',
        p_output_schema => nullif(v_new -> 'output_schema', 'null'::jsonb),
        p_script => v_new ->> 'script',
        p_sql_function => v_new ->> 'sql_function',
        p_on_complete => v_new ->> 'on_complete',
        p_inbox => array(select jsonb_array_elements_text(v_new -> 'inbox')),
        p_outbox => array(select jsonb_array_elements_text(v_new -> 'outbox')),
        p_batch_size => (v_new ->> 'batch_size')::integer,
        p_buffer_size => (v_new ->> 'buffer_size')::integer,
        p_timeout => (v_new ->> 'timeout')::interval,
        p_lease => (v_new ->> 'lease')::interval,
        p_max_attempts => (v_new ->> 'max_attempts')::integer,
        p_backoff_base => (v_new ->> 'backoff_base')::interval,
        p_backoff_max => (v_new ->> 'backoff_max')::interval,
        p_priority => (v_new ->> 'priority')::integer,
        p_enabled => (v_new ->> 'enabled')::boolean,
        p_raq_stage => v_new ->> 'raq_stage',
        p_options => nullif(v_new -> 'options', 'null'::jsonb),
        p_description => v_new ->> 'description',
        p_final_outbox => array(select jsonb_array_elements_text(v_new -> 'final_outbox'))
    );
end;
$$;

comment on function turing.set_actor(text, jsonb) is
'Change some fields of an actor, e.g. set_actor(''scorer'', ''{"timeout": "10 minutes"}''). '
'The merged definition is validated like register_actor (work_query, functions, kind rules).';
