-- _stage_rank: the position of a stage in develop -> stabilize -> prove -> qa -> production, as
-- turing.stages orders them (the one place the order is written).
create or replace function turing._stage_rank(p_stage text)
returns integer
language sql
stable
parallel safe
set search_path = ''
as $$
    select s.rank from turing.stages as s where s.stage = p_stage;
$$;

comment on function turing._stage_rank(text) is
'Internal: the rank of a stage (turing.stages.rank: develop 1 ... production 5), null for a '
'name that is not a stage.';
