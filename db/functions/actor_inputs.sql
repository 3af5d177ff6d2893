-- actor_inputs: the inputs an actor would run on, without making a ticket: the rows its
-- work_query returns now, then the inputs of its latest tickets for the subjects it does not
-- (a subject already done has left the inbox). Read-only; for `turing harness | matrix | chat`.
create or replace function turing.actor_inputs(
    p_actor text,
    p_subject_ids text[] default null,
    p_limit integer default 100
)
returns table (subject_id text, input jsonb, source text)
language plpgsql
-- why: it only reads (the work_query is one read-only SELECT, checked at registration)
stable
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_actor turing.actors%rowtype;
    v_work text;
begin
    if p_limit is null or p_limit < 1 or p_limit > 10000 then
        raise exception 'actor_inputs: p_limit must be between 1 and 10000, got %', p_limit
            using errcode = 'TR012';
    end if;
    select a.* into v_actor from turing.actors as a
    where a.actor_id = turing._actor_id(p_actor);
    -- why: the work_query runs as the actor's run_as role, through its wrapper (invariant 14);
    -- an actor without one contributes no row of its own (`where false`).
    v_work := case
        when v_actor.work_query is not null then pg_catalog.format(
            'select (r.w).subject_id as subject_id, (r.w).input as input '
            'from (select %s() as w offset 0) as r',
            turing._actor_sql(v_actor.actor_id, 'work')
        )
        else 'select null::text as subject_id, null::jsonb as input where false'
    end;
    for subject_id, input, source in execute pg_catalog.format(
        $q$
        with wq as (
            select w.subject_id, w.input, pg_catalog.row_number() over () as n
            from (%s) as w
            where w.subject_id is not null
                and ($1::text [] is null or w.subject_id = any($1))
            limit $2
        ),
        recent as (
            -- why: bounded: the history may hold millions of this actor's rows; without named
            -- subjects only its latest tickets are read.
            select k.subject_id, k.input, k.ticket_id
            from turing.tickets as k
            where k.actor_id = $3 and ($1::text [] is null or k.subject_id = any($1))
            order by k.ticket_id desc
            limit $2 * 10
        ),
        latest as (
            select distinct on (r.subject_id) r.subject_id, r.input, r.ticket_id
            from recent as r
            where not exists (select from wq where wq.subject_id = r.subject_id)
            order by r.subject_id, r.ticket_id desc
        )
        select u.subject_id, u.input, u.source
        from (
            select wq.subject_id, wq.input, 'work_query'::text as source, 0 as part, wq.n as ord
            from wq
            union all
            select l.subject_id, l.input, 'ticket', 1, -l.ticket_id
            from latest as l
        ) as u
        order by u.part, u.ord
        limit $2
        $q$,
        v_work
    ) using p_subject_ids, p_limit, v_actor.actor_id
    loop
        return next;
    end loop;
    if v_actor.work_query is not null then
        -- why: checked again after the run: a wrapper altered meanwhile raises
        perform turing._actor_sql(v_actor.actor_id, 'work');
    end if;
end;
$$;

comment on function turing.actor_inputs(text, text[], integer) is
'The inputs actor p_actor would run on, without creating a ticket: first the rows its work_query '
'returns now (source work_query, in its order), then for subjects it does not return the input '
'of the latest ticket (source ticket, newest first); only p_subject_ids when given; at most '
'p_limit rows (1..10000). Reads only; the work_query runs as the actor''s run_as role. Raises '
'TR002 for an unknown actor. Used by `turing harness`, `matrix` and `chat`.';
