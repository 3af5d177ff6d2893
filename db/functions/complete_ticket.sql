-- complete_ticket: save the result of one attempt (fenced by its lease token).
create or replace function turing.complete_ticket(
    p_ticket_id bigint,
    p_lease_token uuid,
    p_output jsonb
)
returns boolean
language sql
security definer
set search_path = ''
as $$
    select coalesce(c.status = 'completed', false)
    from turing.complete_batch(array[p_ticket_id], array[p_lease_token], array[p_output]) as c;
$$;

comment on function turing.complete_ticket(bigint, uuid, jsonb) is
'Save one attempt''s output; see complete_batch. Returns true when saved. Returns false when it '
'was not saved: the ticket is not running under that lease token (nothing changed; a late result '
'of a reaped attempt is discarded, never written), or on_complete raised (the attempt is '
'recorded as failed; complete_batch reports which).';
