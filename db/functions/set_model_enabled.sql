-- set_model_enabled: pause or resume every actor of one model (set_actor_enabled for each).
create or replace function turing.set_model_enabled(p_model text, p_enabled boolean)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_actor text;
    v_count integer := 0;
begin
    for v_actor in
        select a.name from turing.actors as a where a.model = p_model order by a.name
    loop
        perform turing.set_actor_enabled(v_actor, p_enabled);
        v_count := v_count + 1;
    end loop;
    if v_count = 0 then
        raise exception 'no actor uses model %', p_model
            using errcode = 'TR003', hint = 'List the actors and their models with `turing status`.';
    end if;
    return v_count;
end;
$$;

comment on function turing.set_model_enabled(text, boolean) is
'Pause (p_enabled false) or resume every actor of one model, as set_actor_enabled does for one; '
'returns how many actors. TR003 when no actor uses the model.';
