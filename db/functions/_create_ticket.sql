-- _create_ticket: the one way explicit work (submit, spawn, the pgmq inbox) enters the queue,
-- with the chain depth limit, the (chain, actor, subject) loop guard and the open-ticket dedup.
create or replace function turing._create_ticket(
    p_actor text,
    p_subject_id text,
    p_input jsonb,
    p_priority integer,
    p_source text,
    p_parent_ticket_id bigint,
    p_run_after timestamptz default null
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
    v_actor turing.actors%rowtype;
    v_id bigint := pg_catalog.nextval('turing.ticket_id_seq');
    v_chain bigint;
    v_depth integer := 0;
    v_existing bigint;
begin
    v_actor := turing._actor_for_tickets(p_actor);
    perform turing._refuse_bad_subject_ids(p_actor, array[p_subject_id]);
    if p_input is not null and jsonb_typeof(p_input) <> 'object' then
        raise exception 'ticket input must be a JSON object, got %', jsonb_typeof(p_input)
            using errcode = 'TR012', hint = 'Write an object of named values, e.g. {"title": '
            '"Nurse"}, or {} for none.';
    end if;
    if p_parent_ticket_id is not null then
        select t.chain_id, t.chain_depth + 1 into v_chain, v_depth
        from (
            select o.chain_id, o.chain_depth from turing.ticket_open as o
            where o.ticket_id = p_parent_ticket_id
            union all
            select h.chain_id, h.chain_depth from turing.ticket_history as h
            where h.ticket_id = p_parent_ticket_id
        ) as t
        limit 1;
        if v_chain is null then
            raise exception 'unknown parent ticket %', p_parent_ticket_id
                using errcode = 'TR010';
        end if;
        if v_depth > 20 then
            raise exception 'chain % is too deep: spawning % for subject % would be depth % (max 20)',
                v_chain, p_actor, p_subject_id, v_depth
                using errcode = 'TR004',
                hint = 'A chain that spawns more than 20 levels is almost always a loop; '
                'check the on_complete functions of this chain.';
        end if;
    else
        v_chain := v_id;
    end if;

    -- why: the primary key of chain_steps is the loop guard (invariant 9).
    insert into turing.chain_steps (chain_id, actor_id, subject_id, ticket_id)
    values (v_chain, v_actor.actor_id, p_subject_id, v_id)
    on conflict do nothing;
    if not found then
        raise exception 'loop: chain % already ran actor "%" on subject %', v_chain, p_actor, p_subject_id
            using errcode = 'TR005',
            hint = 'A chain visits each (actor, subject) once; start a new chain with submit() '
            'to run it again.';
    end if;

    select o.ticket_id into v_existing
    from turing.ticket_open as o
    where o.actor_id = v_actor.actor_id and o.subject_id = p_subject_id;
    if v_existing is not null then
        raise exception 'actor "%" already has open ticket % for subject %', p_actor, v_existing, p_subject_id
            using errcode = 'TR006',
            hint = 'Wait for it to finish, or cancel it first (turing cancel).';
    end if;

    begin
        insert into turing.ticket_open (
            ticket_id, actor_id, model, subject_id, input, priority, source, chain_id,
            chain_depth, parent_ticket_id, run_after
        ) values (
            v_id, v_actor.actor_id, v_actor.model, p_subject_id, coalesce(p_input, '{}'),
            coalesce(p_priority, v_actor.priority), p_source, v_chain, v_depth,
            p_parent_ticket_id, coalesce(p_run_after, '-infinity')
        );
    exception
        when unique_violation then
            raise exception 'actor "%" already has an open ticket for subject %', p_actor, p_subject_id
                using errcode = 'TR006',
                hint = 'Wait for it to finish, or cancel it first (turing cancel).';
    end;
    -- why: a new ticket for the same work handles its dead letter (retry_dead, submit, inbox).
    -- Only here: discover never re-tickets a dead subject, and a retry follows a live attempt.
    delete from turing.dead_letters as d
    where d.actor_id = v_actor.actor_id and d.subject_id = p_subject_id;
    return v_id;
end;
$$;

comment on function turing._create_ticket(text, text, jsonb, integer, text, bigint, timestamptz) is
'Internal: creates a pending ticket for submit/spawn/inbox. Raises TR002 unknown actor, TR004 '
'chain deeper than 20, TR005 loop (chain already visited actor+subject), TR006 an open ticket '
'exists for actor+subject, TR010 unknown parent. Never drops work silently. Removes the dead '
'letters of actor+subject: the new ticket handles them.';
