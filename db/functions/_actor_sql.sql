-- _actor_sql: the wrapper through which Turing runs one part of an actor's SQL, checked first.
-- A wrapper belongs to the actor's run_as role, so that role's members could ALTER it to
-- SECURITY INVOKER, which would run its SQL as turing_owner; callers check before and after
-- each call, inside the subtransaction of the call, so a wrapper changed meanwhile rolls back
-- everything it did.
create or replace function turing._actor_sql(p_actor_id integer, p_part text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
    v_name text := 'a' || p_actor_id || '_' || p_part;
    v_wrapper regprocedure;
    v_actor text;
    v_ok boolean;
begin
    v_wrapper := pg_catalog.to_regprocedure(format(
        'turing_actor.%I(%s)', v_name,
        case p_part
            when 'on_complete' then 'bigint, text, jsonb, jsonb'
            when 'sql' then 'text, jsonb'
            else ''
        end
    ));
    select a.name,
        p.prosecdef and p.proowner = a.run_as and not r.rolsuper
        and not pg_catalog.pg_has_role(a.run_as, 'turing_owner', 'member')
    into v_actor, v_ok
    from turing.actors as a
    left join pg_catalog.pg_proc as p on p.oid = v_wrapper
    left join pg_catalog.pg_roles as r on r.oid = a.run_as
    where a.actor_id = p_actor_id;
    if not coalesce(v_ok, false) then
        raise exception 'actor "%" cannot run its % SQL: its wrapper % is missing, or no longer '
            'a SECURITY DEFINER function of its run_as role', coalesce(v_actor, p_actor_id::text),
            p_part, v_name
            using errcode = 'TR013',
            hint = 'Register the actor again (turing actor add -f ...), naming its run_as role.';
    end if;
    return v_wrapper::regproc::text;
end;
$$;

comment on function turing._actor_sql(integer, text) is
'Internal: the qualified name of the wrapper (turing_actor.a<actor_id>_<p_part>, part work, '
'plan, on_complete or sql) that runs that SQL of the actor as its run_as role; raises TR013 '
'when it is missing, not SECURITY DEFINER, not owned by run_as, or run_as became a superuser '
'or a member of turing_owner. Callers check before and after the call.';
