-- register_actor: create or replace an actor from its definition as JSON, validated against the
-- one spec: the fields of turing.actor_fields and the rules of its kind in turing.actor_kinds.
-- A re-registration replaces every field (the definition is the truth); omitted or null fields
-- take their defaults.
create or replace function turing.register_actor(p_spec jsonb)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_spec jsonb;
    v_name text;
    v_kind turing.actor_kinds%rowtype;
    v_field record;
    v_bad text;
    v_columns text;
    v_updates text;
    v_compare text;
    v_id integer;
begin
    if p_spec is null or jsonb_typeof(p_spec) <> 'object' then
        raise exception 'an actor definition must be a JSON object of fields'
            using errcode = 'TR009',
            hint = 'e.g. {"name": "scorer", "kind": "script", "script": "python score.py"}';
    end if;
    -- why: JSON null means "the default", as an omitted field does.
    select coalesce(jsonb_object_agg(e.key, e.value), '{}') into v_spec
    from jsonb_each(p_spec) as e
    where jsonb_typeof(e.value) <> 'null';
    v_name := v_spec ->> 'name';
    if v_name is null or v_name !~ '^[a-z][a-z0-9_]{0,62}$' then
        raise exception 'invalid actor name "%"', coalesce(v_name, '')
            using errcode = 'TR009',
            hint = 'Use lowercase letters, digits and _, starting with a letter (at most 63).';
    end if;
    select string_agg(k, ', ' order by k) into v_bad
    from jsonb_object_keys(v_spec) as k
    where not exists (select from turing.actor_fields as f where f.field = k);
    if v_bad is not null then
        raise exception 'actor "%": unknown field(s) %', v_name, v_bad
            using errcode = 'TR009',
            hint = 'Actor fields: ' || (
                select string_agg(f.field, ', ' order by f.position) from turing.actor_fields as f
            ) || '.';
    end if;
    select * into v_kind from turing.actor_kinds as k where k.kind = v_spec ->> 'kind';
    if v_kind.kind is null then
        raise exception 'actor "%": unknown kind "%"', v_name, coalesce(v_spec ->> 'kind', '')
            using errcode = 'TR009',
            hint = 'kind is one of ' || (
                select string_agg(k.kind, ', ' order by k.kind) from turing.actor_kinds as k
            ) || '.';
    end if;
    v_spec := v_kind.defaults || v_spec;

    -- each value must fit its field's type; say which field and what to write instead
    for v_field in
        select f.field, f.type, v_spec -> f.field as value
        from turing.actor_fields as f
        where v_spec ? f.field
        order by f.position
    loop
        v_bad := null;
        if v_field.type = 'text' and jsonb_typeof(v_field.value) <> 'string' then
            v_bad := 'not a string';
        elsif v_field.type = 'text[]' and (
            jsonb_typeof(v_field.value) <> 'array'
            or exists (
                select from jsonb_array_elements(v_field.value) as x
                where jsonb_typeof(x) <> 'string'
            )
        ) then
            v_bad := 'not a list of strings';
        elsif v_field.type not in ('text', 'text[]', 'jsonb') then
            begin
                perform pg_catalog.jsonb_populate_record(
                    null::turing.actors, jsonb_build_object(v_field.field, v_field.value)
                );
            exception when others then
                v_bad := sqlerrm;
            end;
        end if;
        if v_bad is not null then
            raise exception 'actor "%": field % must be %, got % (%)', v_name, v_field.field,
                case v_field.type
                    when 'integer' then 'a whole number'
                    when 'interval' then 'a duration'
                    when 'turing.actor_timeout' then 'a duration or auto'
                    when 'turing.actor_think' then 'false, true, low, medium or high'
                    when 'boolean' then 'true or false'
                    when 'text' then 'a string'
                    when 'text[]' then 'a list of strings'
                    else v_field.type
                end,
                left(v_field.value::text, 200), v_bad
                using errcode = 'TR009',
                hint = case v_field.type
                    when 'interval' then 'Write a duration such as "90 seconds", "5 minutes" or '
                        '"1 hour".'
                    when 'turing.actor_timeout' then 'Write a duration such as "5 minutes", or '
                        'auto (p99 x 2 of measured run time, between timeout_floor and '
                        'timeout_ceiling).'
                    when 'text[]' then 'Write a list, e.g. [new] or [new, retried].'
                    when 'integer' then 'Write a number without quotes or decimals, e.g. 10.'
                    else 'See the field list: select * from turing.actor_fields.'
                end;
        end if;
    end loop;

    select string_agg(r, ', ' order by r) into v_bad
    from unnest(v_kind.required) as r
    where coalesce(btrim(v_spec ->> r), '') = '';
    if v_bad is not null then
        raise exception 'actor "%" (kind %) needs: %', v_name, v_kind.kind, v_bad
            using errcode = 'TR009', hint = v_kind.description;
    end if;
    if v_spec ? 'output_schema' and jsonb_typeof(v_spec -> 'output_schema') <> 'object' then
        raise exception 'actor "%": output_schema must be a JSON object (a JSON schema)', v_name
            using errcode = 'TR009',
            hint = 'e.g. {"type": "object", "properties": {"score": {"type": "integer"}}, '
            '"required": ["score"]}';
    end if;
    if v_spec ? 'options' and jsonb_typeof(v_spec -> 'options') <> 'object' then
        raise exception 'actor "%": options must be a JSON object', v_name
            using errcode = 'TR009', hint = 'e.g. {"temperature": 0, "num_predict": 256}';
    end if;
    -- why: functions are stored resolved (schema-qualified, quoted by regproc), so a later
    -- search_path cannot make the name point at another function.
    if v_spec ? 'sql_function' then
        v_bad := pg_catalog.to_regprocedure(
            (v_spec ->> 'sql_function') || '(text, jsonb)'
        )::oid::regproc::text;
        if v_bad is null then
            raise exception 'actor "%": sql_function %(text, jsonb) does not exist', v_name,
                v_spec ->> 'sql_function'
                using errcode = 'TR009',
                hint = 'Create f(p_subject_id text, p_input jsonb) returns jsonb first, '
                'schema-qualified.';
        end if;
        v_spec := v_spec || jsonb_build_object('sql_function', v_bad);
    end if;
    if v_spec ? 'on_complete' then
        v_bad := pg_catalog.to_regprocedure(
            (v_spec ->> 'on_complete') || '(bigint, text, jsonb, jsonb)'
        )::oid::regproc::text;
        if v_bad is null then
            raise exception 'actor "%": on_complete function %(bigint, text, jsonb, jsonb) does not exist',
                v_name, v_spec ->> 'on_complete'
                using errcode = 'TR009',
                hint = 'Create f(p_ticket_id bigint, p_subject_id text, p_input jsonb, '
                'p_output jsonb) returns void first, schema-qualified.';
        end if;
        v_spec := v_spec || jsonb_build_object('on_complete', v_bad);
    end if;
    -- why: stored as the interval prints, so "300", "5 minutes" and "00:05:00" are one
    -- definition (no new revision) and every reader casts it back without surprises.
    if v_spec ? 'timeout' and v_spec ->> 'timeout' <> 'auto' then
        v_spec := v_spec || jsonb_build_object(
            'timeout', ((v_spec ->> 'timeout')::interval)::text
        );
    end if;
    if v_spec ? 'work_query' then
        v_spec := v_spec || jsonb_build_object(
            'work_query', turing._validate_work_query(v_name, v_spec ->> 'work_query')
        );
    end if;

    -- why: the statement is built from the spec, so a new column is registered, replaced and
    -- compared without touching this function. Columns left out of the insert take their
    -- defaults, in the new row and in `excluded`, so a re-registration resets them too.
    select
        string_agg(quote_ident(f.field), ', ' order by f.position)
            filter (where v_spec ? f.field),
        string_agg(format('%1$I = excluded.%1$I', f.field), ', ' order by f.position),
        format(
            '(%s) is distinct from (%s)',
            string_agg('a.' || quote_ident(f.field), ', ' order by f.position),
            string_agg('excluded.' || quote_ident(f.field), ', ' order by f.position)
        )
    into v_columns, v_updates, v_compare
    from turing.actor_fields as f;
    begin
        execute format(
            'insert into turing.actors as a (%1$s) '
            'select %1$s from pg_catalog.jsonb_populate_record(null::turing.actors, $1) '
            'on conflict (name) do update set %2$s, '
            'revision = pg_catalog.nextval(''turing.actor_revision_seq''), '
            'updated_at = pg_catalog.clock_timestamp() '
            'where %3$s '
            'returning a.actor_id',
            v_columns, v_updates, v_compare
        ) into v_id using v_spec;
    exception when check_violation then
        -- why: a range rule of the table (e.g. max_attempts between 1 and 100) is one sentence
        -- naming the rule, not a dump of the failing row: the constraint's comment when it
        -- has one, else its name and definition.
        get stacked diagnostics v_bad = constraint_name;
        raise exception 'actor "%": %', v_name,
            (
                select coalesce(
                    pg_catalog.obj_description(c.oid, 'pg_constraint'),
                    regexp_replace(v_bad, '^actors_', '') || ' ('
                    || pg_catalog.pg_get_constraintdef(c.oid) || ')'
                )
                from pg_catalog.pg_constraint as c
                where c.conname = v_bad and c.conrelid = 'turing.actors'::regclass
            )
            using errcode = 'TR009',
            hint = 'Change the field to satisfy the rule; see select * from turing.actor_fields.';
    end;
    if v_id is null then
        -- an identical re-registration: nothing changed
        select a.actor_id into v_id from turing.actors as a where a.name = v_name;
    end if;

    -- why: claims filter open tickets by their own model column; keep it in step with the actor.
    update turing.ticket_open as o set model = a.model
    from turing.actors as a
    where a.actor_id = v_id and o.actor_id = v_id and o.model <> a.model;
    insert into turing.actor_discovery (actor_id) values (v_id)
    on conflict (actor_id) do update set exhausted = false, paused_until = null, last_error = null;
    return v_id;
end;
$$;

comment on function turing.register_actor(jsonb) is
'Create or replace an actor from its definition, e.g. register_actor(''{"name": "scorer", '
'"kind": "script", "script": "python score.py"}''). The fields are turing.actor_fields (omitted '
'or null = the default; a kind may set its own defaults, turing.actor_kinds); a re-registration '
'replaces every field and gives the actor a new revision when anything changed. Refuses, with '
'TR009 naming the field: an unknown field or kind, a value of the wrong type, a field the kind '
'needs, a sql_function or on_complete that does not exist; TR001 for a work_query that is not '
'one read-only SELECT returning subject_id. Returns actor_id.';

-- register_actor (24 arguments): the signature of release 0.1, kept for one release so existing
-- callers go on working; it passes its arguments to register_actor(jsonb). Deprecated.
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
language sql
security definer
set search_path = ''
as $$
    select turing.register_actor(jsonb_build_object(
        'name', p_name, 'kind', p_kind, 'model', p_model, 'work_query', p_work_query,
        'prompt_template', p_prompt_template, 'output_schema', p_output_schema,
        'script', p_script, 'sql_function', p_sql_function, 'on_complete', p_on_complete,
        'inbox', p_inbox, 'outbox', p_outbox, 'batch_size', p_batch_size,
        'buffer_size', p_buffer_size, 'timeout', p_timeout, 'lease', p_lease,
        'max_attempts', p_max_attempts, 'backoff_base', p_backoff_base,
        'backoff_max', p_backoff_max, 'priority', p_priority, 'enabled', p_enabled,
        'raq_stage', p_raq_stage, 'options', p_options, 'description', p_description,
        'final_outbox', p_final_outbox
    ));
$$;

comment on function turing.register_actor(
    text, text, text, text, text, jsonb, text, text, text, text[], text[], integer, integer,
    interval, interval, integer, interval, interval, integer, boolean, text, jsonb, text, text[]
) is
'Deprecated (release 0.1 signature, dropped in the next release): the same as '
'register_actor(jsonb) with one argument per field. New fields are only in the JSON form.';
