-- _register_actor: the owner's half of register_actor: validate a definition against the one
-- spec (turing.actor_fields, turing.actor_kinds), resolve its run_as role and store it. It runs
-- no SQL of the actor: register_actor (in the registrant's session) plans the work_query and
-- creates the wrappers as run_as.
create or replace function turing._register_actor(p_spec jsonb, p_registrant text)
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
    v_role pg_catalog.pg_roles%rowtype;
    v_wrapper regprocedure;
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
                    when 'interval' then 'Write a duration such as "2 minutes", "90s" or '
                        '"1 hour".'
                    when 'turing.actor_timeout' then 'Write a duration such as "2 minutes" or '
                        '"90s", or auto (p99 x 2 of measured run time, between timeout_floor and '
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
    -- search_path cannot make the name point at another function. Looked up in the catalogue,
    -- not with to_regprocedure: turing_owner has no USAGE on the pipeline's schema (run_as
    -- has, and register_actor's wrapper, created as run_as, calls the function).
    if v_spec ? 'sql_function' then
        v_bad := turing._resolve_function(v_spec ->> 'sql_function', '{text,jsonb}');
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
        v_bad := turing._resolve_function(v_spec ->> 'on_complete', '{bigint,text,jsonb,jsonb}');
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
    -- why: only normalised here; planning it would run the registrant's SQL (an immutable
    -- function is evaluated while planning) as turing_owner. register_actor plans it as run_as.
    if v_spec ? 'work_query' then
        v_spec := v_spec || jsonb_build_object(
            'work_query', regexp_replace(btrim(v_spec ->> 'work_query'), ';\s*$', '')
        );
    end if;
    -- The role the actor's SQL runs as (invariant 14): named, the operator's default, or the
    -- registrant. Postgres checks membership again when register_actor switches to it.
    v_bad := coalesce(v_spec ->> 'run_as', turing._setting('default_run_as', null), p_registrant);
    select r.* into v_role from pg_catalog.pg_roles as r
    where r.oid = pg_catalog.to_regrole(v_bad);
    if v_role.oid is null then
        raise exception 'actor "%": run_as role "%" does not exist', v_name, v_bad
            using errcode = 'TR009',
            hint = 'Create the pipeline''s role first: create role my_pipeline nologin.';
    end if;
    if v_role.rolsuper or pg_catalog.pg_has_role(v_role.oid, 'turing_owner', 'member') then
        raise exception 'actor "%" would run its SQL as %, a superuser or a member of '
            'turing_owner', v_name, v_role.rolname
            using errcode = 'TR013',
            hint = 'Name a run_as role that has only what the actor''s tables need, e.g. '
            'run_as: my_pipeline (see README, roles).';
    end if;
    if not pg_catalog.pg_has_role(session_user, v_role.oid, 'member') then
        raise exception 'actor "%": % is not a member of run_as role %', v_name, session_user,
            v_role.rolname
            using errcode = 'TR013',
            hint = 'An actor runs as its registrant or a role the registrant may SET ROLE to.';
    end if;
    v_spec := v_spec || jsonb_build_object('run_as', v_role.oid::regrole::text);

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
    where a.actor_id = v_id and o.actor_id = v_id and o.model <> a.model
        -- why: a raq ticket runs on its run's model, whatever the actor's is now
        and o.raq_run_id is null;
    insert into turing.actor_discovery (actor_id) values (v_id)
    on conflict (actor_id) do update set exhausted = false, paused_until = null, last_error = null;

    -- why: the wrappers of an earlier registration may belong to another role and run other
    -- SQL; the schema's owner may drop them, and register_actor creates them again as run_as.
    for v_wrapper in
        select p.oid::regprocedure from pg_catalog.pg_proc as p
        where p.pronamespace = 'turing_actor'::regnamespace
            and p.proname like 'a' || v_id || '\_%'
    loop
        execute format('drop function %s', v_wrapper);
    end loop;
    perform turing._version_actors(v_id);
    -- what run_as needs of Turing: to create its wrappers, plan its work_query, spawn and
    -- hand off
    execute format('grant usage, create on schema turing_actor to %I', v_role.rolname);
    execute format('grant usage on schema turing to %I', v_role.rolname);
    execute format(
        'grant execute on function turing._validate_work_query(text, text), '
        'turing.spawn(bigint, text, text, jsonb, integer), turing.hand_off(bigint, text) to %I',
        v_role.rolname
    );
    return v_id;
end;
$$;

comment on function turing._register_actor(jsonb, text) is
'Internal (register_actor''s first half, as turing_owner): validates and stores a definition, '
'resolves run_as (the definition''s, settings.default_run_as, else p_registrant), refuses a '
'superuser, a member of turing_owner or a role session_user is not a member of (TR013), drops '
'the actor''s old wrappers, grants run_as what it needs of Turing and gives the actor the '
'version of its behaviour (_version_actors). Runs none of the actor''s SQL. Returns actor_id.';
