-- start_raq: a repeatability run: the actor's recorded sample of p_n inputs, each made a raq
-- ticket p_runs times, run by the current version on its model (or p_model) through the
-- normal ticket machinery, without on_complete. `turing raq` waits for it and then finish_raq.
create or replace function turing.start_raq(
    p_actor text,
    p_n integer,
    p_runs integer default 3,
    p_model text default null
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_actor turing.actors;
    v_model text;
    v_have integer;
    v_run bigint;
begin
    select a.* into v_actor from turing.actors as a
    where a.actor_id = turing._actor_id(p_actor);
    if p_n is null or p_n < 1 or p_n > 10000 then
        raise exception 'start_raq: n must be between 1 and 10000, got %', p_n
            using errcode = 'TR012';
    end if;
    if p_runs is null or p_runs < 2 or p_runs > 20 then
        raise exception 'start_raq: runs must be between 2 and 20, got %', p_runs
            using errcode = 'TR012', hint = 'Repeatability needs at least 2 runs; 3 is usual.';
    end if;
    v_model := coalesce(p_model, v_actor.model);
    if p_model is not null
        and not exists (select from turing.actors as a where a.model = p_model)
        and not exists (
            select from turing.runners as r
            where p_model = any(r.models) and r.status = 'running'
        ) then
        raise exception 'unknown model "%": no actor uses it and no running runner serves it',
            p_model using errcode = 'TR003',
            hint = 'Start turing-runner --model ' || p_model || ' first, or name a model an '
            'actor uses.';
    end if;

    -- why: the sample is taken once and kept, so every run (and a rerun on another model)
    -- measures the same inputs; a larger n adds inputs after the recorded ones.
    -- why: the actor row lock serialises two raq starts that would both extend the sample.
    perform from turing.actors as a where a.actor_id = v_actor.actor_id for update;
    select count(*)::integer into v_have from turing.raq_samples as s
    where s.actor_id = v_actor.actor_id;
    if v_have < p_n then
        insert into turing.raq_samples (actor_id, item, subject_id, input)
        select v_actor.actor_id, v_have + row_number() over (order by random()), c.subject_id,
            c.input
        from (
            -- the latest input of each subject of the actor's inbox and recent work
            select distinct on (t.subject_id) t.subject_id, t.input
            from (
                select o.subject_id, o.input, o.created_at
                from turing.ticket_open as o
                where o.actor_id = v_actor.actor_id and o.raq_run_id is null
                union all
                select h.subject_id, h.input, h.created_at
                from turing.ticket_history as h
                where h.actor_id = v_actor.actor_id and h.raq_run_id is null
            ) as t
            where not exists (
                select from turing.raq_samples as s
                where s.actor_id = v_actor.actor_id and s.subject_id = t.subject_id
            )
            order by t.subject_id, t.created_at desc
        ) as c
        order by random()
        limit p_n - v_have;
        select count(*)::integer into v_have from turing.raq_samples as s
        where s.actor_id = v_actor.actor_id;
    end if;
    if v_have < p_n then
        raise exception 'actor "%" has % inputs to sample (its open and finished tickets), '
            'fewer than n = %', p_actor, v_have, p_n using errcode = 'TR015',
            hint = 'Write --n ' || v_have || ' or less, or let its inbox fill first (turing '
            'discover, turing submit).';
    end if;

    insert into turing.raq_runs (actor_id, version, model, n, runs, threshold)
    values (v_actor.actor_id, v_actor.version, v_model, p_n, p_runs, v_actor.raq_threshold)
    returning raq_run_id into v_run;
    -- why: subjects of their own (raq:RUN:REP:ITEM), so raq tickets never meet the actor's
    -- own open tickets in the one-open-ticket-per-subject rule, and each is a chain's root.
    with ids as (
        select pg_catalog.nextval('turing.ticket_id_seq') as ticket_id, s.item, r.rep,
            s.input
        from turing.raq_samples as s
        cross join generate_series(1, p_runs) as r (rep)
        where s.actor_id = v_actor.actor_id and s.item <= p_n
        order by r.rep, s.item
    )
    insert into turing.ticket_open (
        ticket_id, actor_id, model, subject_id, input, priority, source, chain_id, raq_run_id
    )
    select i.ticket_id, v_actor.actor_id, v_model,
        'raq:' || v_run || ':' || i.rep || ':' || i.item, i.input, v_actor.priority,
        'raq', i.ticket_id, v_run
    from ids as i
    order by i.ticket_id;
    return v_run;
end;
$$;

comment on function turing.start_raq(text, integer, integer, text) is
'Start a repeatability run of actor p_actor: its recorded sample (turing.raq_samples, taken '
'at random from the subjects of its open and finished tickets the first time and kept) of '
'p_n inputs, each a raq ticket p_runs times (subject raq:RUN:REP:ITEM, source raq), run '
'by the current version on p_model (default the actor''s) by any runner of that model at any '
'stage, without on_complete. Returns the raq_run_id; `turing raq` waits for its tickets and '
'calls finish_raq. Raises TR002 unknown actor, TR003 a model no actor uses and no running '
'runner serves, TR015 fewer inputs than p_n, TR012 a bad n or runs.';
