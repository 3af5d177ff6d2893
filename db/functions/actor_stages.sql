-- actor_stages: every version of an actor with its stage and its last promotion, and which
-- one is current and which one production runs (`turing actor stage`).
create or replace function turing.actor_stages(p_actor text)
returns table (
    version integer, stage text, is_current boolean, in_production boolean,
    changed_at timestamptz, changed_by text, evidence jsonb, note text
)
language plpgsql
stable
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_actor turing.actors;
begin
    select a.* into v_actor from turing.actors as a
    where a.actor_id = turing._actor_id(p_actor);
    return query
    select
        v.version, coalesce(p.to_stage, 'develop'), v.version = v_actor.version,
        v.version is not distinct from v_actor.production_version, p.promoted_at,
        p.promoted_by, p.evidence, p.note
    from turing.actor_versions as v
    left join lateral (
        select * from turing.promotions as x
        where x.actor_id = v.actor_id and x.version = v.version
        order by x.promotion_id desc limit 1
    ) as p on true
    where v.actor_id = v_actor.actor_id
    order by v.version;
end;
$$;

comment on function turing.actor_stages(text) is
'The versions of actor p_actor with the stage of each (its last promotion; develop when none), '
'is_current (actors.version), in_production (what a production runner runs), and who moved '
'it last, when, with what evidence and note. Raises TR002 for an unknown actor.';
