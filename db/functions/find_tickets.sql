-- find_tickets: the tickets an operator asks about, newest first (`turing tickets`, `turing web`).
-- why: open and finished tickets are read apart, each newest first by its primary key and only
-- the filters given, then merged: through the tickets view (a union joined to actors) with
-- `p_x is null or …` filters the newest 100 of 1 M rows took 2 s, every row sorted.
create or replace function turing.find_tickets(
    p_actor text default null,
    p_status text default null,
    p_subject_id text default null,
    p_chain_id bigint default null,
    p_limit integer default 50
)
returns table (
    ticket_id bigint,
    actor text,
    model text,
    subject_id text,
    status text,
    attempt integer,
    chain_id bigint,
    chain_depth integer,
    source text,
    worker text,
    created_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    error text,
    input jsonb,
    output jsonb
)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_limit integer := least(greatest(p_limit, 1), 10000);
    v_actor_id integer;
    v_where text := '';
begin
    if p_actor is not null then
        select a.actor_id into v_actor_id from turing.actors as a where a.name = p_actor;
        if v_actor_id is null then
            return;
        end if;
        v_where := v_where || ' and t.actor_id = $1';
    end if;
    if p_status is not null then
        v_where := v_where || ' and t.status = $2';
    end if;
    if p_subject_id is not null then
        v_where := v_where || ' and t.subject_id = $3';
    end if;
    if p_chain_id is not null then
        v_where := v_where || ' and t.chain_id = $4';
    end if;
    -- why: dynamic so that each call is planned with only the filters it has (a generic plan
    -- of `$1 is null or …` uses no index); the values stay parameters, never spliced in.
    return query execute format(
        $sql$
        select
            x.ticket_id, a.name, x.model, x.subject_id, x.status, x.attempt, x.chain_id,
            x.chain_depth, x.source, x.worker, x.created_at, x.started_at, x.finished_at,
            x.error, x.input, x.output
        from (
            (
                select
                    t.ticket_id, t.actor_id, t.model, t.subject_id, t.status, t.attempt,
                    t.chain_id, t.chain_depth, t.source, t.worker, t.created_at, t.started_at,
                    null::timestamptz as finished_at, t.last_error as error, t.input,
                    null::jsonb as output
                from turing.ticket_open as t
                where true %1$s
                order by t.ticket_id desc
                limit $5
            )
            union all
            (
                select
                    t.ticket_id, t.actor_id, t.model, t.subject_id, t.status, t.attempt,
                    t.chain_id, t.chain_depth, t.source, t.worker, t.created_at, t.started_at,
                    t.finished_at, t.error, t.input, t.output
                from turing.ticket_history as t
                where true %1$s
                order by t.ticket_id desc
                limit $5
            )
        ) as x
        inner join turing.actors as a on x.actor_id = a.actor_id
        order by x.ticket_id desc
        limit $5
        $sql$, v_where
    ) using v_actor_id, p_status, p_subject_id, p_chain_id, v_limit;
end;
$$;

comment on function turing.find_tickets(text, text, text, bigint, integer) is
'Tickets (open and finished) filtered by actor, status, subject and chain, newest first, at most '
'p_limit (1..10000).';
