-- set_actor: change some fields of an actor; the merged definition goes through register_actor,
-- so it is validated exactly like a new one.
create or replace function turing.set_actor(p_actor text, p_changes jsonb)
returns integer
language plpgsql
-- why: register_actor switches to the actor's run_as role, which only the caller's own session
-- may do (SET ROLE is refused inside SECURITY DEFINER functions).
security invoker
set search_path = ''
as $$
declare
    v_current jsonb;
    v_refused text;
begin
    select d.definition into v_current from turing.actor_definitions(p_actor) as d;
    if v_current is null then
        raise exception 'unknown actor "%"', p_actor
            using errcode = 'TR002',
            hint = 'List actors with `turing actor list` or select name from turing.actors.';
    end if;
    if p_changes is null or jsonb_typeof(p_changes) <> 'object' then
        raise exception 'set_actor: the changes must be a JSON object of fields'
            using errcode = 'TR012', hint = 'e.g. {"timeout": "10 minutes"}';
    end if;
    select string_agg(k, ', ' order by k) into v_refused
    from jsonb_object_keys(p_changes) as k
    where not exists (select from turing.actor_fields as f where f.field = k and f.settable);
    if v_refused is not null then
        raise exception 'cannot set %: not an actor field (or not changeable)', v_refused
            using errcode = 'TR012',
            hint = 'Changeable fields: ' || (
                select string_agg(f.field, ', ' order by f.position)
                from turing.actor_fields as f where f.settable
            ) || '. To rename an actor or change its kind, register a new one.';
    end if;
    -- why: null in p_changes means "back to the default", as in register_actor.
    return turing.register_actor(v_current || p_changes);
end;
$$;

comment on function turing.set_actor(text, jsonb) is
'Change some fields of an actor, e.g. set_actor(''scorer'', ''{"timeout": "10 minutes"}''); a '
'null value resets a field to its default. The merged definition is validated like '
'register_actor (field types, kind rules, work_query, functions). Fields: turing.actor_fields '
'where settable.';
