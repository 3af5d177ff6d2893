-- retry_dead: give a dead letter another round of attempts, as a new chain.
create or replace function turing.retry_dead(p_ticket_id bigint)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_dead record;
begin
    select d.actor, d.subject_id, h.input, h.priority into v_dead
    from turing.v_dead_letters as d
    inner join turing.ticket_history as h on d.ticket_id = h.ticket_id
    where d.ticket_id = p_ticket_id;
    if v_dead.actor is null then
        raise exception 'ticket % is not an unhandled dead letter', p_ticket_id
            using errcode = 'TR010',
            hint = 'List them with `turing dead` or select * from turing.v_dead_letters.';
    end if;
    return turing._create_ticket(
        v_dead.actor, v_dead.subject_id, v_dead.input, v_dead.priority, 'submit', null
    );
end;
$$;

comment on function turing.retry_dead(bigint) is
'Retry a dead letter: a new pending ticket (attempt 1, same input, a new chain) for the same '
'actor and subject. The dead row stays as it was (history is immutable) and leaves '
'v_dead_letters. Returns the new ticket id; TR010 when the ticket is not an unhandled dead letter.';
