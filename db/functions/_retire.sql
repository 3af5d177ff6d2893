-- _retire: end open tickets that did not complete (failed, timed out, cancelled), in one
-- statement: move each to the history and create its retry with backoff, or make it dead.
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
    v_status text [];
    v_retry bigint [];
    v_events jsonb [];
begin
    if cardinality(p_ticket_ids) is distinct from cardinality(p_lease_tokens)
        or cardinality(p_ticket_ids) is distinct from cardinality(p_errors)
        or cardinality(p_ticket_ids) is distinct from cardinality(p_kinds)
        or cardinality(p_ticket_ids) is distinct from cardinality(p_retryable) then
        raise exception 'ticket ids, lease tokens, errors, kinds and retryable flags must have the same length'
            using errcode = 'TR012';
    end if;
    if exists (select from unnest(p_kinds) as k where k is null or k not in ('failed', 'timed_out', 'cancelled')) then
        raise exception 'failure kind must be failed, timed_out or cancelled'
            using errcode = 'TR012';
    end if;

    with src as (
        select *
        from unnest(p_ticket_ids, p_lease_tokens, p_errors, p_kinds, p_retryable)
            as s (ticket_id, lease_token, error, kind, retryable)
    ),
    gone as (
        delete from turing.ticket_open as o
        using src as s
        where o.ticket_id = s.ticket_id
            -- why: a token matches only a running ticket (ticket_open_lease_iff_running), so
            -- no status test: one would let the planner scan every running ticket through
            -- ticket_open_running instead of looking the given tickets up by key.
            and (
                o.lease_token = s.lease_token
                or (not p_require_running and s.lease_token is null)
            )
        returning o.*, s.error, s.kind, s.retryable
    ),
    decided as (
        select
            g.*,
            a.name as actor_name,
            clock_timestamp() as now_ts,
            (g.kind <> 'cancelled' and g.retryable and g.attempt < a.max_attempts) as will_retry,
            -- exponential backoff with +/-25 % jitter so retries of one failure do not stampede
            least(a.backoff_max, a.backoff_base * power(2, g.attempt - 1))
            * (0.75 + random() * 0.5) as backoff
        from gone as g
        inner join turing.actors as a on a.actor_id = g.actor_id
    ),
    hist as (
        insert into turing.ticket_history (
            ticket_id, actor_id, model, subject_id, status, attempt, priority, input, output,
            error, failure_kind, source, chain_id, chain_depth, parent_ticket_id, created_at,
            run_after, started_at, finished_at, worker, batch_id
        )
        select
            d.ticket_id, d.actor_id, d.model, d.subject_id,
            case
                when d.kind = 'cancelled' then 'cancelled'
                when d.will_retry then d.kind
                else 'dead'
            end,
            d.attempt, d.priority, d.input, null, d.error,
            case when d.kind <> 'cancelled' and not d.will_retry then d.kind end,
            d.source, d.chain_id, d.chain_depth, d.parent_ticket_id, d.created_at, d.run_after,
            d.started_at, greatest(d.now_ts, coalesce(d.started_at, d.created_at)),
            d.worker, d.batch_id
        from decided as d
        returning
            ticket_id, status, actor_id, subject_id, model, attempt, failure_kind, error,
            finished_at, chain_id
    ),
    -- why: this is the only place an attempt ends dead, so the dead letter is recorded here,
    -- in the same statement, and the completion path pays nothing for it.
    dead as (
        insert into turing.dead_letters (
            ticket_id, actor_id, subject_id, model, attempt, failure_kind, error, finished_at,
            chain_id
        )
        select
            h.ticket_id, h.actor_id, h.subject_id, h.model, h.attempt, h.failure_kind, h.error,
            h.finished_at, h.chain_id
        from hist as h
        where h.status = 'dead'
    ),
    retry as (
        insert into turing.ticket_open (
            ticket_id, actor_id, model, subject_id, attempt, priority, input, source, chain_id,
            chain_depth, parent_ticket_id, created_at, run_after, last_error
        )
        select
            pg_catalog.nextval('turing.ticket_id_seq'), d.actor_id, d.model, d.subject_id,
            d.attempt + 1, d.priority, d.input, 'retry', d.chain_id, d.chain_depth,
            d.parent_ticket_id, d.now_ts, d.now_ts + d.backoff, d.error
        from decided as d
        where d.will_retry
        returning ticket_id, actor_id, subject_id
    )
    select
        array_agg(h.ticket_id order by h.ticket_id),
        array_agg(h.status order by h.ticket_id),
        array_agg(r.ticket_id order by h.ticket_id),
        array_agg(jsonb_build_object(
            'event', 'ticket.' || h.status, 'ticket_id', h.ticket_id, 'actor', d.actor_name,
            'subject_id', d.subject_id, 'status', h.status, 'attempt', d.attempt,
            'chain_id', d.chain_id, 'error', d.error, 'retry_ticket_id', r.ticket_id,
            'at', d.now_ts
        ) order by h.ticket_id)
    into v_ids, v_status, v_retry, v_events
    from hist as h
    inner join decided as d on d.ticket_id = h.ticket_id
    left join retry as r on r.actor_id = d.actor_id and r.subject_id = d.subject_id;

    perform turing._emit_events(v_events);
    return query
    select u.ticket_id, u.status, u.retry_ticket_id
    from unnest(v_ids, v_status, v_retry) as u (ticket_id, status, retry_ticket_id);
end;
$$;

comment on function turing._retire(bigint[], uuid[], text[], text[], boolean[], boolean) is
'Internal: moves the given open tickets (fenced by lease token when running) to ticket_history '
'as failed/timed_out with a retry (attempt + 1, run_after = now + backoff with jitter), as dead '
'(recorded in dead_letters) when attempts are exhausted or the failure is not retryable, or as '
'cancelled; emits one event '
'per ticket. Returns the tickets it ended; a ticket whose token did not match is not returned.';
