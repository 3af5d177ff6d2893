-- _stage_rank: the position of a stage in develop -> stabilize -> prove -> qa -> production,
-- inlined into claims (no lookup of turing.stages per ticket).
create or replace function turing._stage_rank(p_stage text)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
    select case p_stage
        when 'develop' then 1
        when 'stabilize' then 2
        when 'prove' then 3
        when 'qa' then 4
        when 'production' then 5
    end;
$$;

comment on function turing._stage_rank(text) is
'Internal: the rank of a stage (turing.stages.rank: develop 1 ... production 5), null for a '
'name that is not a stage.';
