-- record_review: a person's verdict on one completed ticket (`turing qa`).
create or replace function turing.record_review(
    p_ticket_id bigint,
    p_verdict text,
    p_note text default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_ticket record;
begin
    if p_verdict is null or p_verdict not in ('right', 'wrong', 'unsure') then
        raise exception 'a verdict is right, wrong or unsure, got "%"', p_verdict
            using errcode = 'TR012';
    end if;
    select h.actor_id, h.actor_version, h.status into v_ticket
    from turing.ticket_history as h where h.ticket_id = p_ticket_id;
    if not found or v_ticket.status <> 'completed' or v_ticket.actor_version is null then
        raise exception 'ticket % is not a completed ticket of a known version', p_ticket_id
            using errcode = 'TR010', hint = 'Review tickets turing qa offers.';
    end if;
    insert into turing.qa_reviews (ticket_id, actor_id, version, verdict, note)
    values (p_ticket_id, v_ticket.actor_id, v_ticket.actor_version, p_verdict, p_note)
    on conflict (ticket_id) do update
    set verdict = excluded.verdict, note = excluded.note, reviewed_at = excluded.reviewed_at,
        reviewed_by = excluded.reviewed_by;
end;
$$;

comment on function turing.record_review(bigint, text, text) is
'Record a person''s verdict (right, wrong or unsure) and note on completed ticket p_ticket_id, '
'for the version that ran it (turing.qa_reviews; a second verdict replaces the first). '
'Raises TR012 for another verdict, TR010 for a ticket that is not a completed, versioned one.';
