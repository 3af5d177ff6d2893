-- _production_version: which version a production runner runs of an actor: the last one
-- promoted to production that is still there.
create or replace function turing._production_version(p_actor_id integer)
returns integer
language sql
stable
set search_path = ''
as $$
    select s.version
    from (
        -- the stage of each version: its last promotion
        select distinct on (p.version) p.version, p.to_stage, p.promotion_id
        from turing.promotions as p
        where p.actor_id = p_actor_id
        order by p.version, p.promotion_id desc
    ) as s
    where s.to_stage = 'production'
    order by s.promotion_id desc
    limit 1;
$$;

comment on function turing._production_version(integer) is
'Internal: the version of an actor last promoted to production and not demoted since (null: '
'none); kept in actors.production_version by promote, demote and _version_actors.';
