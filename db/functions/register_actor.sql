-- register_actor: create or replace an actor from its definition as JSON. Runs in the
-- registrant's session (security invoker) because only that session may act as the run_as role:
-- the owner's half stores the definition, then this function switches to run_as, plans the
-- work_query and creates the actor's wrappers, which therefore belong to run_as.
create or replace function turing.register_actor(p_spec jsonb)
returns integer
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_id integer;
    v_actor turing.actors%rowtype;
    v_me text := current_user::text;
    v_ddl text [] := '{}'::text [];
    v_statement text;
begin
    v_id := turing._register_actor(p_spec, current_user);
    select * into v_actor from turing.actors as a where a.actor_id = v_id;
    if v_actor.work_query is not null then
        v_ddl := v_ddl || format(
            'create function turing_actor.%I() returns table (subject_id text, input jsonb) '
            'language sql stable security definer set search_path = '''' as %L',
            'a' || v_id || '_work',
            'select src.subject_id::text, pg_catalog.to_jsonb(src) - ''subject_id'' from ('
            || v_actor.work_query || e'\n) as src'
        ) || format(
            -- why: volatile because EXPLAIN is refused in a stable function; it only plans.
            'create function turing_actor.%I() returns jsonb language plpgsql volatile '
            'security definer set search_path = '''' as %L',
            'a' || v_id || '_plan',
            format(
                'declare v_plan jsonb; begin execute %L into v_plan; return v_plan; end;',
                'explain (format json) ' || v_actor.work_query
            )
        );
    end if;
    if v_actor.on_complete is not null then
        v_ddl := v_ddl || format(
            'create function turing_actor.%I(bigint, text, jsonb, jsonb) returns void '
            'language sql volatile security definer set search_path = '''' as %L',
            'a' || v_id || '_on_complete',
            format('select %s($1, $2, $3, $4)', v_actor.on_complete)
        );
    end if;
    if v_actor.sql_function is not null then
        v_ddl := v_ddl || format(
            'create function turing_actor.%I(text, jsonb) returns jsonb '
            'language sql volatile security definer set search_path = '''' as %L',
            'a' || v_id || '_sql', format('select %s($1, $2)', v_actor.sql_function)
        );
    end if;

    -- why: SET ROLE is where Postgres itself refuses a run_as the session is not a member of.
    -- It is not undone at function exit (the SET clause covers search_path only), so it is put
    -- back below; an error aborts the (sub)transaction, which puts it back too.
    perform pg_catalog.set_config(
        'role', (select r.rolname from pg_catalog.pg_roles as r where r.oid = v_actor.run_as), true
    );
    if v_actor.work_query is not null then
        perform turing._validate_work_query(v_actor.name, v_actor.work_query);
    end if;
    foreach v_statement in array v_ddl loop
        execute v_statement;
    end loop;
    for v_statement in
        select p.oid::regprocedure::text from pg_catalog.pg_proc as p
        where p.pronamespace = 'turing_actor'::regnamespace
            and p.proname like 'a' || v_id || '\_%'
    loop
        execute format('revoke all on function %s from public', v_statement);
        execute format('grant execute on function %s to turing_owner', v_statement);
        execute format(
            'comment on function %s is %L', v_statement,
            format('The SQL of actor %s, run as %s (created by register_actor).',
                v_actor.name, v_actor.run_as)
        );
    end loop;
    perform pg_catalog.set_config('role', v_me, true);
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
'one read-only SELECT returning subject_id; TR013 for a run_as that is a superuser, a member '
'of turing_owner, or a role the registrant is not a member of. The actor''s SQL runs as run_as '
'(default: the registering role): this function plans its work_query and creates its wrappers '
'in turing_actor as that role, so it runs in the registrant''s session (security invoker). '
'Returns actor_id.';

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
security invoker
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
        'options', p_options, 'description', p_description,
        'final_outbox', p_final_outbox
    ));
$$;

comment on function turing.register_actor(
    text, text, text, text, text, jsonb, text, text, text, text[], text[], integer, integer,
    interval, interval, integer, interval, interval, integer, boolean, text, jsonb, text, text[]
) is
'Deprecated (release 0.1 signature, dropped in the next release): the same as '
'register_actor(jsonb) with one argument per field. New fields are only in the JSON form. '
'p_raq_stage is ignored since 0027 (stages belong to versions: promote).';
