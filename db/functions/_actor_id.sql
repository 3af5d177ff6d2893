-- _actor_id: resolve an actor name, failing with a clear message when it does not exist.
create or replace function turing._actor_id(p_actor text)
returns integer
language plpgsql
stable
set search_path = ''
as $$
declare
    v_id integer;
begin
    select a.actor_id into v_id from turing.actors as a where a.name = p_actor;
    if v_id is null then
        raise exception 'unknown actor "%"', p_actor
            using errcode = 'TR002',
            hint = 'List actors with `turing actor list` or select name from turing.actors.';
    end if;
    return v_id;
end;
$$;

comment on function turing._actor_id(text) is
'Internal: actor_id of the named actor; raises TR002 "unknown actor" otherwise.';
