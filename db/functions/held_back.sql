-- held_back: the actors of a model whose pending work a runner of a stage does not claim, so
-- the runner can say why it idles beside pending work.
create or replace function turing.held_back(p_model text, p_stage text)
returns table (actor text, version integer, stage text, pending bigint)
language sql
stable
security definer
set search_path = ''
as $$
    select a.name, a.version, a.stage, count(*)
    from turing.actors as a
    inner join turing.ticket_open as o on o.actor_id = a.actor_id
    where a.model = p_model
        and a.enabled
        and o.status = 'pending'
        and o.raq_run_id is null
        and turing._stage_rank(a.stage) < turing._stage_rank(p_stage)
        and a.production_version is null
    group by a.name, a.version, a.stage
    order by a.name;
$$;

comment on function turing.held_back(text, text) is
'The enabled actors of model p_model with pending work that a runner started with --stage '
'p_stage does not claim: the current version below that stage and no version in production.';
