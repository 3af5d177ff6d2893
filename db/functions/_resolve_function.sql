-- _resolve_function: a schema-qualified function name with given argument types, as regproc
-- prints it, found in the catalogue without needing USAGE on its schema (the owner has none on
-- a pipeline's schema; the actor's run_as role calls the function).
create or replace function turing._resolve_function(p_name text, p_args regtype[])
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
    v_parts text [];
begin
    begin
        v_parts := pg_catalog.parse_ident(p_name);
    exception when invalid_parameter_value then
        return null;
    end;
    if cardinality(v_parts) <> 2 then
        return null;
    end if;
    return (
        select p.oid::regproc::text
        from pg_catalog.pg_proc as p
        inner join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
        where n.nspname = v_parts[1] and p.proname = v_parts[2]
            -- why: oidvector casts to a zero-based array, which never equals a one-based one
            and p.proargtypes::text = pg_catalog.array_to_string(p_args::oid [], ' ')
    );
end;
$$;

comment on function turing._resolve_function(text, regtype[]) is
'Internal: the function schema.name(p_args) as regproc text (quoted, qualified), or NULL when '
'the name is not schema-qualified or no such function exists.';
