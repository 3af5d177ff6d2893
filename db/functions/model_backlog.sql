-- model_backlog: how much work each of a runner's models has, so a multi-model runner picks the
-- right model whenever it is idle (at start, when work appears, once its loaded model runs dry)
-- and records that choice for the others.
create or replace function turing.model_backlog(
    p_models text[], p_worker text default null, p_stage text default null
)
returns table (
    model text, pending bigint, ready bigint, running bigint, llm boolean, served_by integer
)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := clock_timestamp();
    v_current text;
begin
    -- why: advisory lock 7245 serialises the choice between runners that pick at the same
    -- moment (two GPUs starting together), so the second one sees the first one's choice in
    -- served_by and takes another model instead of loading the same one.
    perform pg_catalog.pg_advisory_xact_lock(7245);
    select r.current_model into v_current from turing.runners as r where r.worker = p_worker;
    return query
    with b as (
        select
            m.model,
            coalesce((select sum(c.n) from turing.ticket_counts as c
                      inner join turing.actors as a on a.actor_id = c.actor_id
                      where a.model = m.model and a.enabled and c.status = 'pending'), 0
            )::bigint as pending,
            (select count(*) from turing.ticket_open as o
             where o.model = m.model and o.status = 'pending' and o.run_after <= v_now
                 and exists (
                     select from turing.actors as a
                     where a.actor_id = o.actor_id and a.enabled
                         -- why: what claim_batch would hand a runner of p_stage, so a GPU
                         -- never switches to a model whose work it may not run
                         and (
                             o.raq_run_id is not null
                             or p_stage is null
                             or turing._stage_rank(a.stage) >= turing._stage_rank(p_stage)
                             or a.production_version is not null
                         )
                 )) as ready,
            coalesce((select sum(c.n) from turing.ticket_counts as c
                      inner join turing.actors as a on a.actor_id = c.actor_id
                      where a.model = m.model and c.status = 'running'), 0)::bigint as running,
            exists (
                select from turing.actors as a where a.model = m.model and a.kind = 'llm'
            ) as llm,
            (select count(*) from turing.runners as r
             where r.current_model = m.model and r.worker is distinct from p_worker
                 and r.status = 'running' and r.last_seen_at > v_now - interval '1 minute'
            )::integer as served_by
        from unnest(p_models) as m (model)
    ),
    ranked as (
        select b.*, row_number() over (
            order by
                b.ready > 0 desc, b.served_by = 0 desc,
                b.model is not distinct from v_current desc,
                b.ready desc, b.pending desc, b.model
        ) as rank
        from b
    ),
    chosen as (
        update turing.runners as r
        set current_model = k.model, last_seen_at = v_now
        from ranked as k
        where r.worker = p_worker and k.rank = 1 and k.ready > 0
        returning r.worker
    )
    select k.model, k.pending, k.ready, k.running, k.llm, k.served_by
    from ranked as k
    order by k.rank;
end;
$$;

comment on function turing.model_backlog(text[], text, text) is
'Per model of p_models: pending tickets of its enabled actors, how many are ready now (run_after '
'passed), running tickets, whether an llm actor uses it (a model Ollama must load), and how many '
'other live runners are serving it now (of materialised tickets: a runner''s discovery thread '
'keeps every model''s buffers topped up). Ordered by choice: models with ready work first, then '
'models no other runner serves (two GPUs start on different models), then the model p_worker is '
'on now (model-first: a loaded model with work is kept rather than swapped for a bigger backlog),'
' then most ready work. The first row, when it has ready work, is recorded as p_worker''s '
'current_model, under an advisory lock, so runners choosing at once choose apart. ready counts '
'only what claim_batch(..., p_stage) would claim (null: every stage).';
