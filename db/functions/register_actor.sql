-- register_actor: create or replace an actor from its full definition, validating it first.
-- A re-registration replaces every field (the definition file is the truth); NULL = default.
create or replace function turing.register_actor(
    p_name text,
    p_kind text,
    p_model text default null,
    p_work_query text default null,
    p_prompt_template text default null,
    p_output_schema jsonb default null,
    p_script text default null,
    p_sql_function text default null,
    p_on_complete text default null,
    p_inbox text[] default null,
    p_outbox text[] default null,
    p_batch_size integer default null,
    p_buffer_size integer default null,
    p_timeout interval default null,
    p_lease interval default null,
    p_max_attempts integer default null,
    p_backoff_base interval default null,
    p_backoff_max interval default null,
    p_priority integer default null,
    p_enabled boolean default null,
    p_raq_stage text default null,
    p_options jsonb default null,
    p_description text default null,
    p_final_outbox text[] default null
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_model text := p_model;
    v_query text;
    v_on_complete text;
    v_sql_function text;
    v_id integer;
begin
    if p_name is null or p_name !~ '^[a-z][a-z0-9_]{0,62}$' then
        raise exception 'invalid actor name "%"', p_name
            using errcode = 'TR009',
            hint = 'Use lowercase letters, digits and _, starting with a letter (at most 63).';
    end if;
    if p_kind is null or p_kind not in ('llm', 'script', 'sql', 'human') then
        raise exception 'actor "%": unknown kind "%"', p_name, p_kind
            using errcode = 'TR009', hint = 'kind is one of llm, script, sql, human.';
    end if;
    if v_model is null then
        if p_kind = 'llm' then
            raise exception 'actor "%": an llm actor needs a model (e.g. qwen2.5:7b)', p_name
                using errcode = 'TR009';
        end if;
        v_model := case p_kind when 'human' then 'human' else 'cpu' end;
    end if;
    if p_kind = 'llm' and (coalesce(btrim(p_prompt_template), '') = '' or p_output_schema is null) then
        raise exception 'actor "%": an llm actor needs a prompt_template and an output_schema', p_name
            using errcode = 'TR009',
            hint = 'The schema is sent as Ollama `format` and every answer is validated against it.';
    end if;
    if p_output_schema is not null and jsonb_typeof(p_output_schema) <> 'object' then
        raise exception 'actor "%": output_schema must be a JSON object (a JSON schema)', p_name
            using errcode = 'TR009';
    end if;
    if p_kind = 'script' and coalesce(btrim(p_script), '') = '' then
        raise exception 'actor "%": a script actor needs a script (the command to run)', p_name
            using errcode = 'TR009';
    end if;
    if p_kind = 'sql' then
        v_sql_function := pg_catalog.to_regprocedure(p_sql_function || '(text, jsonb)')::oid::regproc::text;
        if v_sql_function is null then
            raise exception 'actor "%": sql_function %(text, jsonb) does not exist', p_name,
                coalesce(p_sql_function, '<none>')
                using errcode = 'TR009',
                hint = 'Create f(p_subject_id text, p_input jsonb) returns jsonb first, '
                'schema-qualified.';
        end if;
    end if;
    if p_on_complete is not null then
        v_on_complete := pg_catalog.to_regprocedure(p_on_complete || '(bigint, text, jsonb, jsonb)')::oid::regproc::text;
        if v_on_complete is null then
            raise exception 'actor "%": on_complete function %(bigint, text, jsonb, jsonb) does not exist',
                p_name, p_on_complete
                using errcode = 'TR009',
                hint = 'Create f(p_ticket_id bigint, p_subject_id text, p_input jsonb, '
                'p_output jsonb) returns void first, schema-qualified.';
        end if;
    end if;
    if p_work_query is not null then
        v_query := turing._validate_work_query(p_name, p_work_query);
    end if;

    insert into turing.actors as a (
        name, kind, model, work_query, prompt_template, output_schema, script, sql_function,
        on_complete, inbox, outbox, final_outbox, batch_size, buffer_size, timeout, lease, max_attempts,
        backoff_base, backoff_max, priority, enabled, raq_stage, options, description
    ) values (
        p_name, p_kind, v_model, v_query, p_prompt_template, p_output_schema, p_script,
        v_sql_function, v_on_complete,
        coalesce(p_inbox, '{}'), coalesce(p_outbox, '{}'), coalesce(p_final_outbox, '{}'),
        coalesce(p_batch_size, 10), coalesce(p_buffer_size, 1000),
        coalesce(p_timeout, interval '5 minutes'),
        coalesce(p_lease, case when p_kind = 'human' then coalesce(p_timeout, interval '1 day')
                               else interval '30 seconds' end),
        coalesce(p_max_attempts, 3),
        coalesce(p_backoff_base, interval '10 seconds'), coalesce(p_backoff_max, interval '1 hour'),
        coalesce(p_priority, 0), coalesce(p_enabled, true), p_raq_stage,
        coalesce(p_options, '{}'), p_description
    )
    on conflict (name) do update set
        kind = excluded.kind, model = excluded.model, work_query = excluded.work_query,
        prompt_template = excluded.prompt_template, output_schema = excluded.output_schema,
        script = excluded.script, sql_function = excluded.sql_function,
        on_complete = excluded.on_complete, inbox = excluded.inbox, outbox = excluded.outbox,
        final_outbox = excluded.final_outbox,
        batch_size = excluded.batch_size, buffer_size = excluded.buffer_size,
        timeout = excluded.timeout, lease = excluded.lease,
        max_attempts = excluded.max_attempts, backoff_base = excluded.backoff_base,
        backoff_max = excluded.backoff_max, priority = excluded.priority,
        enabled = excluded.enabled, raq_stage = excluded.raq_stage, options = excluded.options,
        description = excluded.description, updated_at = clock_timestamp()
    returning a.actor_id into v_id;

    -- why: claims filter open tickets by their own model column; keep it in step with the actor.
    update turing.ticket_open as o set model = v_model
    where o.actor_id = v_id and o.model <> v_model;
    insert into turing.actor_discovery (actor_id) values (v_id)
    on conflict (actor_id) do update set exhausted = false, paused_until = null, last_error = null;
    return v_id;
end;
$$;

comment on function turing.register_actor(
    text, text, text, text, text, jsonb, text, text, text, text[], text[], integer, integer,
    interval, interval, integer, interval, interval, integer, boolean, text, jsonb, text, text[]
) is
'Create or replace an actor (every field; NULL means the default). Validates the kind, the '
'model, the work_query (one read-only SELECT returning subject_id: TR001 otherwise), the '
'prompt/schema of llm actors, and that sql_function/on_complete exist (TR009). Returns actor_id.';
