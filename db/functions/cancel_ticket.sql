-- cancel_ticket: stop an open ticket for good (no retry); a running attempt's result will be
-- discarded by the fenced completion.
create or replace function turing.cancel_ticket(p_ticket_id bigint, p_reason text default null)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_token uuid;
    v_found boolean;
begin
    select o.lease_token, true into v_token, v_found
    from turing.ticket_open as o where o.ticket_id = p_ticket_id;
    if v_found is null then
        return false;
    end if;
    return exists (
        select from turing._retire(
            array[p_ticket_id], array[v_token],
            array['cancelled: ' || coalesce(p_reason, 'by an operator')],
            array['cancelled'], array[false], false
        )
    );
end;
$$;

comment on function turing.cancel_ticket(bigint, text) is
'Cancel an open (pending or running) ticket: it moves to the history as cancelled, is not '
'retried and its subject is not rediscovered by this actor. Returns false when the ticket is '
'not open.';
