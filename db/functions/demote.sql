-- demote: move an actor's current version down the stages (no gate: going back needs no
-- evidence), recorded like a promotion.
create or replace function turing.demote(
    p_actor text,
    p_to_stage text default 'develop',
    p_note text default null
)
returns table (actor text, version integer, from_stage text, to_stage text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_actor turing.actors;
begin
    select a.* into v_actor from turing.actors as a
    where a.actor_id = turing._actor_id(p_actor) for update;
    if turing._stage_rank(p_to_stage) is null then
        raise exception 'unknown stage "%"', p_to_stage using errcode = 'TR012',
            hint = 'Write one of develop, stabilize, prove, qa, production.';
    end if;
    if turing._stage_rank(p_to_stage) >= turing._stage_rank(v_actor.stage) then
        raise exception 'actor "%" version % is at %; demote moves it down', p_actor,
            v_actor.version, v_actor.stage using errcode = 'TR015',
            hint = 'Use turing actor promote ' || p_actor || ' to move it up.';
    end if;
    insert into turing.promotions (actor_id, version, from_stage, to_stage, note)
    values (v_actor.actor_id, v_actor.version, v_actor.stage, p_to_stage, p_note);
    update turing.actors as a
    set stage = p_to_stage,
        production_version = turing._production_version(a.actor_id),
        revision = nextval('turing.actor_revision_seq')
    where a.actor_id = v_actor.actor_id;
    return query select p_actor, v_actor.version, v_actor.stage, p_to_stage;
end;
$$;

comment on function turing.demote(text, text, text) is
'Move the current version of actor p_actor down to p_to_stage (default develop), recorded in '
'turing.promotions; a demoted production version stops running in production (an earlier '
'production version, if any, runs instead). Raises TR015 when the stage is not lower, TR012 '
'for an unknown stage, TR002 for an unknown actor.';
