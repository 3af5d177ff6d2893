-- hand_off: from an on_complete, say which subject the next actor will find in its inbox when
-- it is not the ticket's own (the on_complete created a new domain row), so the ticket that
-- discover() makes for it continues this ticket's chain.
create or replace function turing.hand_off(p_ticket_id bigint, p_subject_id text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_ticket record;
begin
    select h.actor_id, a.name as actor, h.subject_id, h.chain_id, h.chain_depth, h.status,
        h.finished_at
    into v_ticket
    from turing.ticket_history as h
    inner join turing.actors as a on a.actor_id = h.actor_id
    where h.ticket_id = p_ticket_id;
    -- why: only the on_complete of the ticket may hand it on: a ticket finished in an earlier
    -- transaction (finished_at before this one began) is refused, so no role that may call
    -- hand_off can graft work onto a chain that is not its own.
    if v_ticket.status is distinct from 'completed' or v_ticket.finished_at < pg_catalog.now() then
        raise exception 'hand_off: ticket % is not being completed in this transaction',
            p_ticket_id
            using errcode = 'TR010',
            hint = 'Call hand_off(p_ticket_id, subject) from the on_complete of that ticket.';
    end if;
    perform turing._refuse_bad_subject_ids(v_ticket.actor, array[p_subject_id]);
    -- why: refused here, like spawn(), while the on_complete can still fail the attempt with
    -- the reason; a discovered ticket deeper than 20 would otherwise be dead on arrival.
    if v_ticket.chain_depth >= 20 then
        raise exception 'chain % is too deep: handing subject % on from ticket % would be depth % '
            '(max 20)', v_ticket.chain_id, p_subject_id, p_ticket_id, v_ticket.chain_depth + 1
            using errcode = 'TR004',
            hint = 'A chain that hands off more than 20 times is almost always a loop; '
            'check the on_complete functions of this chain.';
    end if;
    insert into turing.hand_offs as h (
        subject_id, ticket_id, actor_id, chain_id, chain_depth, explicit
    ) values (
        p_subject_id, p_ticket_id, v_ticket.actor_id, v_ticket.chain_id, v_ticket.chain_depth, true
    )
    on conflict (subject_id, ticket_id) do update set explicit = true;
    -- why: an on_complete that names where its work goes names all of it: the implicit
    -- hand-off of its own subject (which the next actors may not read at all) is dropped, so
    -- an unrelated row that happens to share that id never joins this chain.
    delete from turing.hand_offs as h
    where h.subject_id = v_ticket.subject_id and h.ticket_id = p_ticket_id and not h.explicit;
end;
$$;

comment on function turing.hand_off(bigint, text) is
'From an on_complete: the ticket p_ticket_id hands subject p_subject_id on (a domain row it '
'created or moved into another actor''s inbox). The ticket that discover() creates for that '
'subject, in an actor whose inbox shares a status with this actor''s outbox, continues this '
'chain at depth + 1 with this ticket as parent. Without a call the ticket hands on its own '
'subject; the first call replaces that (call hand_off(p_ticket_id, p_subject_id) too to keep '
'it). Raises TR010 when the ticket is not being completed in this transaction (only its own '
'on_complete may hand it on), TR004 when it is at depth 20 (the attempt then fails without '
'retry, as with spawn), TR012 for an empty or too long subject id.';
