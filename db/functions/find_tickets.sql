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
language sql
stable
security definer
set search_path = ''
as $$
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
    limit least(greatest(p_limit, 1), 10000);
$$;

comment on function turing.find_tickets(text, text, text, bigint, integer) is
'Tickets (open and finished) filtered by actor, status, subject and chain, newest first, at most '
'p_limit (1..10000).';
