-- fail_batch: report failed attempts (fenced by their lease tokens), in one call.
create or replace function turing.fail_batch(
    p_ticket_ids bigint[],
    p_lease_tokens uuid[],
    p_errors text[],
    p_kinds text[] default null,
    p_retryable boolean[] default null
)
returns table (ticket_id bigint, accepted boolean, status text, retry_ticket_id bigint)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
    return query
    with src as (
        select u.ticket_id, u.ord
        from unnest(p_ticket_ids) with ordinality as u (ticket_id, ord)
    ),
    done as (
        select *
        from turing._retire(
            p_ticket_ids,
            p_lease_tokens,
            p_errors,
            coalesce(p_kinds, array_fill('failed'::text, array[cardinality(p_ticket_ids)])),
            coalesce(p_retryable, array_fill(true, array[cardinality(p_ticket_ids)])),
            true
        )
    )
    select s.ticket_id, d.ticket_id is not null, d.status, d.retry_ticket_id
    from src as s
    left join done as d on d.ticket_id = s.ticket_id
    order by s.ord;
end;
$$;

comment on function turing.fail_batch(bigint[], uuid[], text[], text[], boolean[]) is
'Report failed attempts: for each running ticket whose lease token matches, record the error '
'(p_kinds: failed or timed_out, default failed) and retry it with backoff, or make it dead when '
'attempts are exhausted or p_retryable is false. accepted = false (nothing changed) when the '
'ticket is not running under that token any more, e.g. it was reaped.';
