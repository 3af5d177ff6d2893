-- submit_many: submit() for many subjects of one actor in one call, set-based (one statement per
-- table, one counts upsert), each subject the root of a new chain. For bulk loads.
create or replace function turing.submit_many(
    p_actor text,
    p_subject_ids text[],
    p_inputs jsonb[] default null,
    p_priority integer default null,
    p_run_after timestamptz default null
)
returns table (item integer, subject_id text, ticket_id bigint, skipped text)
language plpgsql
security definer
set search_path = ''
-- why: the planner sees 100,000-row unnests and JIT-compiles the one-pass insert, which costs
-- about half a second (a fifth of the call) and buys nothing.
set jit = off
as $$
#variable_conflict use_column
declare
    v_actor turing.actors%rowtype;
    v_created bigint[];
    v_bad_item bigint;
    v_bad_type text;
begin
    v_actor := turing._actor_for_tickets(p_actor);
    if p_subject_ids is null then
        raise exception 'submit_many for actor "%" needs an array of subject ids, got NULL', p_actor
            using errcode = 'TR012';
    end if;
    if p_inputs is not null and cardinality(p_inputs) <> cardinality(p_subject_ids) then
        raise exception 'submit_many: % subject ids but % inputs; pass one input per subject or none',
            cardinality(p_subject_ids), cardinality(p_inputs)
            using errcode = 'TR012';
    end if;
    -- why: a bad element refuses the whole call, before anything is written, so a bulk load
    -- never half-happens because of one malformed row; the rule is submit()'s, in one place.
    perform turing._refuse_bad_subject_ids(p_actor, p_subject_ids);
    select i.n, jsonb_typeof(i.input) into v_bad_item, v_bad_type
    from unnest(p_inputs) with ordinality as i (input, n)
    where i.input is not null and jsonb_typeof(i.input) <> 'object'
    order by i.n
    limit 1;
    if v_bad_item is not null then
        raise exception 'element %: ticket input must be a JSON object, got %', v_bad_item, v_bad_type
            using errcode = 'TR012', hint = 'Write an object of named values, e.g. {"title": '
            '"Nurse"}, or {} for none.';
    end if;

    with src as (
        select
            pg_catalog.nextval('turing.ticket_id_seq') as ticket_id, u.item, u.subject_id,
            coalesce(u.input, '{}') as input
        -- why: ticket ids follow the order of the array, so equal-priority work is claimed in
        -- the order it was submitted (claims order by priority, run_after, ticket_id).
        from unnest(p_subject_ids, p_inputs) with ordinality as u (subject_id, input, item)
    ),

    created as (
        -- why: ON CONFLICT DO NOTHING on ticket_open_actor_subject (invariant 1) skips a subject
        -- that has an open ticket, and every repeat of a subject after its first occurrence.
        -- Inserted in subject order, so two bulk submits that overlap wait for each other in
        -- one order and cannot deadlock; a concurrent insert of the same subject is waited
        -- for and then skipped.
        insert into turing.ticket_open as o (
            ticket_id, actor_id, model, subject_id, input, priority, source, chain_id, run_after
        )
        select
            s.ticket_id, v_actor.actor_id, v_actor.model, s.subject_id, s.input,
            coalesce(p_priority, v_actor.priority), 'submit', s.ticket_id,
            coalesce(p_run_after, '-infinity')
        from src as s
        order by s.subject_id collate "C", s.item
        on conflict (actor_id, subject_id) do nothing
        returning o.ticket_id, o.subject_id
    ),

    -- why: each ticket is the root of its own chain (chain_id = ticket_id), so the loop guard
    -- (the primary key of chain_steps) cannot refuse any of them.
    steps as (
        insert into turing.chain_steps (chain_id, actor_id, subject_id, ticket_id)
        select c.ticket_id, v_actor.actor_id, c.subject_id, c.ticket_id
        from created as c
    ),

    -- why: as in _create_ticket, the new ticket handles the dead letter of the same work.
    letters as (
        delete from turing.dead_letters as d
        using created as c
        where d.actor_id = v_actor.actor_id and d.subject_id = c.subject_id
    )

    -- why: aligned with p_subject_ids (src has every item), so the report zips the two arrays;
    -- subscripting a PL/pgSQL array per row inside a query copies it each time (quadratic).
    select array_agg(c.ticket_id order by s.item)
    into v_created
    from src as s
    left join created as c on s.ticket_id = c.ticket_id;

    -- why: the common bulk load creates every ticket; its report needs no joins and no sort.
    if pg_catalog.array_position(v_created, null) is null then
        return query
        select r.item::integer, r.subject_id, r.ticket_id, null::text
        from unnest(p_subject_ids, v_created) with ordinality as r (subject_id, ticket_id, item);
        return;
    end if;
    -- why: a second statement, so the open ticket that made a subject skip is visible even when
    -- a concurrent transaction committed it after the insert began.
    return query
    with r as (
        select r.item, r.subject_id, r.ticket_id
        from unnest(p_subject_ids, v_created) with ordinality as r (subject_id, ticket_id, item)
    ),

    mine as (
        select distinct on (r.subject_id) r.subject_id, r.ticket_id, r.item
        from r where r.ticket_id is not null
        order by r.subject_id, r.item
    )

    select
        r.item::integer, r.subject_id,
        coalesce(r.ticket_id, m.ticket_id, o.ticket_id),
        case
            when r.ticket_id is not null then null
            when m.item < r.item then 'repeated'
            else 'open_ticket'
        end
    from r
    left join mine as m on r.ticket_id is null and r.subject_id = m.subject_id
    left join turing.ticket_open as o
        on
            r.ticket_id is null and m.ticket_id is null
            and o.actor_id = v_actor.actor_id and o.subject_id = r.subject_id
    order by r.item;
end;
$$;

comment on function turing.submit_many(text, text[], jsonb[], integer, timestamptz) is
'submit() for many subjects of actor p_actor at once, set-based: one insert per table and one '
'counts change for the whole call (docs/benchmarks.md measures 100,000). p_inputs, when given, '
'has one JSON object (or NULL = {}) per subject; p_priority overrides the actor''s; p_run_after '
'delays them all (as in submit). Each '
'created ticket starts a new chain, and removes the dead letters of its actor and subject. '
'Returns one row per element of p_subject_ids, in order: item (1-based position), subject_id, '
'ticket_id and skipped. skipped is NULL when the ticket was created (ticket_id is the new '
'ticket); ''open_ticket'' when the actor already has an open ticket for the subject, which is '
'left alone and whose id is returned (NULL if it finished meanwhile); ''repeated'' when the '
'subject occurs earlier in the same call (ticket_id is the one created there). Skipping, not '
'refusing: a bulk load that overlaps queued work enqueues the rest. Refuses the whole call, '
'creating nothing: TR002 unknown actor; TR012 a NULL array, a subject id that submit() would '
'refuse (NULL, empty, over 1024 bytes), an input that is not a JSON object, or p_inputs of '
'another length; the message names the element.';
