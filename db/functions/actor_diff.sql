-- actor_diff: what differs between two versions of one actor, field by field.
create or replace function turing.actor_diff(p_actor text, p_from integer, p_to integer)
returns table (field text, from_value jsonb, to_value jsonb)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_actor_id integer;
    v_from turing.actor_versions%rowtype;
    v_to turing.actor_versions%rowtype;
    v_known text;
begin
    v_actor_id := turing._actor_id(p_actor);
    select v.* into v_from from turing.actor_versions as v
    where v.actor_id = v_actor_id and v.version = p_from;
    select v.* into v_to from turing.actor_versions as v
    where v.actor_id = v_actor_id and v.version = p_to;
    if v_from.version is null or v_to.version is null then
        select string_agg(v.version::text, ', ' order by v.version) into v_known
        from turing.actor_versions as v where v.actor_id = v_actor_id;
        raise exception 'actor "%" has no version %', p_actor,
            case when v_from.version is null then p_from else p_to end
            using errcode = 'TR002',
            hint = 'Its versions: ' || coalesce(v_known, 'none yet') || ' (turing actor history '
            || p_actor || ').';
    end if;
    return query
    select d.field, d.from_value, d.to_value
    from (
        select f.field, v_from.definition -> f.field, v_to.definition -> f.field, f.position
        from turing.actor_fields as f
        where v_from.definition -> f.field is distinct from v_to.definition -> f.field
        union all
        select 'sql_source', to_jsonb(v_from.sql_source), to_jsonb(v_to.sql_source), 1000
        where v_from.sql_source is distinct from v_to.sql_source
    ) as d (field, from_value, to_value, position)
    order by d.position;
end;
$$;

comment on function turing.actor_diff(text, integer, integer) is
'The fields whose values differ between versions p_from and p_to of actor p_actor (every '
'field of the two definitions, versioned or not, and sql_source), as JSON. TR002 for an '
'unknown actor or version. `turing actor diff NAME V1 V2` prints it, text fields as a '
'unified diff.';
