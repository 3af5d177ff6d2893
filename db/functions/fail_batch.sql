-- fail_batch: report failed attempts (fenced by their lease tokens), in one call.
create or replace function turing.fail_batch(
    p_ticket_ids bigint[],
    p_lease_tokens uuid[],
    p_errors text[],
    p_kinds text[] default null,
    p_retryable boolean[] default null,
    p_calls jsonb default null
)
returns table (ticket_id bigint, accepted boolean, status text, retry_ticket_id bigint)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_ids bigint [];
    v_status text [];
    v_retry bigint [];
begin
    select
        coalesce(array_agg(d.ticket_id), '{}'), array_agg(d.status), array_agg(d.retry_ticket_id)
    into v_ids, v_status, v_retry
    from turing._retire(
            p_ticket_ids,
            p_lease_tokens,
            p_errors,
            coalesce(p_kinds, array_fill('failed'::text, array[cardinality(p_ticket_ids)])),
            coalesce(p_retryable, array_fill(true, array[cardinality(p_ticket_ids)])),
            true
        ) as d;
    -- why: a failed attempt keeps its call, raw answer included: what the model said is why
    -- it failed.
    perform turing._record_calls(p_calls, v_ids);
    return query
    select s.ticket_id, d.ticket_id is not null, d.status, d.retry_ticket_id
    from unnest(p_ticket_ids) with ordinality as s (ticket_id, ord)
    left join unnest(v_ids, v_status, v_retry) as d (ticket_id, status, retry_ticket_id)
        on d.ticket_id = s.ticket_id
    order by s.ord;
end;
$$;

comment on function turing.fail_batch(bigint[], uuid[], text[], text[], boolean[], jsonb) is
'Report failed attempts: for each running ticket whose lease token matches, record the error '
'(p_kinds: failed or timed_out, default failed) and retry it with backoff, or make it dead when '
'attempts are exhausted or p_retryable is false. accepted = false (nothing changed) when the '
'ticket is not running under that token any more, e.g. it was reaped. p_calls (optional): the '
'call records of the LLM attempts, as for complete_batch; a failed attempt keeps its raw '
'answer and, when it parsed, the output that was not saved.';
