-- fail_ticket: report one failed attempt (fenced by its lease token).
create or replace function turing.fail_ticket(
    p_ticket_id bigint,
    p_lease_token uuid,
    p_error text,
    p_kind text default 'failed',
    p_retryable boolean default true
)
returns boolean
language sql
security definer
set search_path = ''
as $$
    select f.accepted
    from turing.fail_batch(
        array[p_ticket_id], array[p_lease_token], array[p_error], array[p_kind], array[p_retryable]
    ) as f;
$$;

comment on function turing.fail_ticket(bigint, uuid, text, text, boolean) is
'Report one failed attempt; see fail_batch. Returns false (and changes nothing) when the ticket '
'is not running under that lease token.';
