-- model_backlog: how much work each of a runner's models has, so a multi-model runner can switch
-- to the model with the most work once its loaded model runs dry.
create or replace function turing.model_backlog(p_models text[])
returns table (model text, pending bigint, ready bigint, running bigint, llm boolean)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_model text;
begin
    -- why: work an actor's work_query would find is not counted until discover materialises it;
    -- topping up first (throttled by discover_interval, one discoverer per actor) makes the
    -- counts mean "work this model could start", not "tickets that happen to exist".
    foreach v_model in array coalesce(p_models, '{}') loop
        perform turing._top_up(v_model, 1);
    end loop;
    return query
    select
        m.model,
        coalesce((select sum(c.n) from turing.ticket_counts as c
                  inner join turing.actors as a on a.actor_id = c.actor_id
                  where a.model = m.model and a.enabled and c.status = 'pending'), 0)::bigint,
        (select count(*) from turing.ticket_open as o
         where o.model = m.model and o.status = 'pending' and o.run_after <= clock_timestamp()
             and exists (select from turing.actors as a where a.actor_id = o.actor_id and a.enabled)),
        coalesce((select sum(c.n) from turing.ticket_counts as c
                  inner join turing.actors as a on a.actor_id = c.actor_id
                  where a.model = m.model and c.status = 'running'), 0)::bigint,
        exists (select from turing.actors as a where a.model = m.model and a.kind = 'llm')
    from unnest(p_models) as m (model)
    order by 3 desc, 2 desc, 1;
end;
$$;

comment on function turing.model_backlog(text[]) is
'Per model of p_models: pending tickets of its enabled actors, how many of them are ready now '
'(run_after passed), running tickets, and whether an llm actor uses it (a model Ollama must '
'load), after topping up the buffers through discover. '
'Ordered by ready work, most first: a runner serving several models on one GPU switches to the '
'first row when its loaded model has nothing left.';
