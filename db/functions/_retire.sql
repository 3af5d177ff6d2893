-- _retire: end open tickets that did not complete (failed, timed out, cancelled): decide each
-- outcome by the retry rules, end them through _finish, and create the retries with backoff.
-- Shared by fail_batch, reap and cancel_ticket so the retry rules live in one place.
create or replace function turing._retire(
    p_ticket_ids bigint[],
    p_lease_tokens uuid[],
    p_errors text[],
    p_kinds text[],
    p_retryable boolean[],
    p_require_running boolean
)
returns table (ticket_id bigint, status text, retry_ticket_id bigint)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_ids bigint [];
    v_tokens uuid [];
    v_statuses text [];
    v_errors text [];
    v_kinds text [];
    v_retry bigint [];
    v_backoff interval [];
    v_now timestamptz := clock_timestamp();
begin
    if cardinality(p_ticket_ids) is distinct from cardinality(p_lease_tokens)
        or cardinality(p_ticket_ids) is distinct from cardinality(p_errors)
        or cardinality(p_ticket_ids) is distinct from cardinality(p_kinds)
        or cardinality(p_ticket_ids) is distinct from cardinality(p_retryable) then
        raise exception 'ticket ids, lease tokens, errors, kinds and retryable flags must have the same length'
            using errcode = 'TR012';
    end if;
    if exists (
        select from unnest(p_kinds) as k
        where k is null or k not in ('failed', 'timed_out', 'cancelled')
    ) then
        raise exception 'failure kind must be failed, timed_out or cancelled'
            using errcode = 'TR012';
    end if;

    -- why: the rows are locked while their outcome is decided, so nothing can end or change
    -- them before _finish moves them; a ticket completing concurrently is waited for and then
    -- skipped (it is gone), exactly as its fence requires.
    select
        array_agg(d.ticket_id order by d.ticket_id),
        array_agg(d.lease_token order by d.ticket_id),
        array_agg(
            case
                when d.kind = 'cancelled' then 'cancelled'
                when d.will_retry then d.kind
                else 'dead'
            end
            order by d.ticket_id
        ),
        array_agg(d.error order by d.ticket_id),
        array_agg(
            case when d.kind <> 'cancelled' and not d.will_retry then d.kind end
            order by d.ticket_id
        ),
        array_agg(
            case when d.will_retry then pg_catalog.nextval('turing.ticket_id_seq') end
            order by d.ticket_id
        ),
        -- exponential backoff with +/-25 % jitter so retries of one failure do not stampede
        array_agg(d.backoff * (0.75 + random() * 0.5) order by d.ticket_id)
    into v_ids, v_tokens, v_statuses, v_errors, v_kinds, v_retry, v_backoff
    from (
        select
            o.ticket_id,
            o.lease_token,
            s.error,
            s.kind,
            (s.kind <> 'cancelled' and s.retryable and o.attempt < a.max_attempts) as will_retry,
            least(a.backoff_max, a.backoff_base * power(2, o.attempt - 1)) as backoff
        from unnest(p_ticket_ids, p_lease_tokens, p_errors, p_kinds, p_retryable)
            as s (ticket_id, lease_token, error, kind, retryable)
        inner join turing.ticket_open as o
            on
                o.ticket_id = s.ticket_id
                -- why: a token matches only a running ticket (ticket_open_lease_iff_running),
                -- so no status test: one would let the planner scan every running ticket
                -- through ticket_open_running instead of looking the given tickets up by key.
                and (
                    o.lease_token = s.lease_token
                    or (not p_require_running and s.lease_token is null)
                )
        inner join turing.actors as a on a.actor_id = o.actor_id
        for update of o
    ) as d;
    if v_ids is null then
        return;
    end if;

    perform from turing._finish(
        v_ids, v_tokens, v_statuses, null, v_errors, v_kinds, v_retry, p_require_running, false
    );
    -- the retry: a new ticket, attempt + 1, after the backoff, with the error it follows
    insert into turing.ticket_open (
        ticket_id, actor_id, model, subject_id, attempt, priority, input, source, chain_id,
        chain_depth, parent_ticket_id, created_at, run_after, last_error, raq_run_id
    )
    select
        r.retry_ticket_id, h.actor_id, h.model, h.subject_id, h.attempt + 1, h.priority, h.input,
        'retry', h.chain_id, h.chain_depth, h.parent_ticket_id, v_now, v_now + r.backoff,
        h.error, h.raq_run_id
    from unnest(v_ids, v_retry, v_backoff) as r (ticket_id, retry_ticket_id, backoff)
    inner join turing.ticket_history as h on h.ticket_id = r.ticket_id
    where r.retry_ticket_id is not null;

    return query
    select u.ticket_id, u.status, u.retry_ticket_id
    from unnest(v_ids, v_statuses, v_retry) as u (ticket_id, status, retry_ticket_id);
end;
$$;

comment on function turing._retire(bigint[], uuid[], text[], text[], boolean[], boolean) is
'Internal: ends the given open tickets (fenced by lease token when running) through _finish: '
'failed/timed_out with a retry (attempt + 1, run_after = now + backoff_base * 2^(attempt-1) '
'capped at backoff_max, +/-25 % jitter), dead when attempts are exhausted or the failure is not '
'retryable, or cancelled. Returns the tickets it ended; a ticket whose token did not match is '
'not returned.';
