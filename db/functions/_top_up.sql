-- _top_up: top_up every actor of a model that discover_due names, one after another (tick, and
-- the claim of 0.1 runners; runners of this release discover from their own thread).
create or replace function turing._top_up(p_model text, p_want integer)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_actor text;
    v_total integer := 0;
begin
    for v_actor in select d.actor from turing.discover_due(p_model, p_want) as d loop
        v_total := v_total + turing.top_up(v_actor);
    end loop;
    return v_total;
end;
$$;

comment on function turing._top_up(text, integer) is
'Internal: top_up() each actor of the model that discover_due(p_model, p_want) names; returns '
'the tickets created. Used by tick() and the deprecated 3-argument claim_batch.';
