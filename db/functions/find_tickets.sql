-- find_tickets: the tickets an operator asks about, newest first (`turing tickets`).
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
begin
    -- why: an actor name that does not exist is a mistake to say, not an empty answer that
    -- reads like "no tickets yet"; the same holds for a limit that asks for no rows. A removed
    -- actor's name is known: its finished tickets stay (remove_actor).
    if p_actor is not null
        and not exists (select from turing.removed_actors as r where r.name = p_actor) then
        perform turing._actor_id(p_actor);
    end if;
    if p_limit is null or p_limit < 1 then
        raise exception 'find_tickets: p_limit must be at least 1, got %', p_limit
            using errcode = 'TR012', hint = 'Ask for 1 to 10000 tickets, e.g. 50.';
    end if;
    return query
    select
        t.ticket_id, t.actor, t.model, t.subject_id, t.status, t.attempt, t.chain_id,
        t.chain_depth, t.source, t.worker, t.created_at, t.started_at, t.finished_at, t.error,
        t.input, t.output
    from turing.tickets as t
    where (p_actor is null or t.actor = p_actor)
        and (p_status is null or t.status = p_status)
        and (p_subject_id is null or t.subject_id = p_subject_id)
        and (p_chain_id is null or t.chain_id = p_chain_id)
    order by t.ticket_id desc
    limit least(p_limit, 10000);
end;
$$;

comment on function turing.find_tickets(text, text, text, bigint, integer) is
'Tickets (open and finished) filtered by actor, status, subject and chain, newest first, at most '
'p_limit (capped at 10000). Refuses an actor that does not exist and never did (TR002: a '
'removed actor''s tickets are found by its name) and a p_limit below 1 (TR012).';
