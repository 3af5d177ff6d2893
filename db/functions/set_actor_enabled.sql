-- set_actor_enabled: enable or disable an actor without touching the rest of its definition.
create or replace function turing.set_actor_enabled(p_actor text, p_enabled boolean)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id integer := turing._actor_id(p_actor);
begin
    update turing.actors set enabled = p_enabled, updated_at = clock_timestamp()
    where actor_id = v_id;
    if p_enabled then
        update turing.actor_discovery set exhausted = false, paused_until = null
        where actor_id = v_id;
        -- why: wake the model's runners; a disabled actor's pending tickets become claimable.
        perform pg_catalog.pg_notify('turing_work', (select a.model from turing.actors as a where a.actor_id = v_id));
    end if;
    return p_enabled;
end;
$$;

comment on function turing.set_actor_enabled(text, boolean) is
'Enable or disable an actor. A disabled actor keeps its tickets but none is claimed or discovered.';
