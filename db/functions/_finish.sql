-- _finish: the one way an attempt ends. Moves open tickets to ticket_history with the outcome
-- the caller decided, records the dead letters and sends the events, in one set-based
-- statement. complete_batch (both paths) and _retire (failures, reaps, cancels) call it.
create or replace function turing._finish(
    p_ticket_ids bigint[],
    p_lease_tokens uuid[],
    p_statuses text[],
    p_outputs jsonb[],
    p_errors text[],
    p_failure_kinds text[],
    p_retry_ticket_ids bigint[],
    p_require_token boolean,
    p_skip_on_complete boolean
)
returns table (ticket_id bigint, status text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_ids bigint [];
    v_statuses text [];
    v_events jsonb [];
    v_now timestamptz := clock_timestamp();
    v_plan_mode text := pg_catalog.current_setting('plan_cache_mode');
begin
    -- why: a cached generic plan (key lookups per ticket). In the default mode the planner kept
    -- choosing custom plans and planned this statement anew on every call, 0.28 ms of the
    -- 0.6 ms a completion took at batch 1. Scoped to this statement: the caller's on_complete
    -- functions and work_queries keep the caller's setting.
    perform pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true);
    with src as (
        -- unnest pads the shorter arrays (null outputs, errors, kinds, retries) with nulls
        select *
        from unnest(
            p_ticket_ids, p_lease_tokens, p_statuses, p_outputs, p_errors, p_failure_kinds,
            p_retry_ticket_ids
        ) as s (ticket_id, lease_token, status, output, error, failure_kind, retry_ticket_id)
    ),
    gone as (
        delete from turing.ticket_open as o
        using src as s, turing.actors as a
        where
            o.ticket_id = s.ticket_id
            -- why: the token alone fences, since only a running ticket has one
            -- (ticket_open_lease_iff_running). A status test here would let the planner scan
            -- the partial index ticket_open_running, i.e. every running ticket of the fleet,
            -- once per batch, instead of looking up the batch's tickets by key. Without
            -- p_require_token (cancel) a pending ticket is ended by passing no token.
            and (
                o.lease_token = s.lease_token
                or (not p_require_token and s.lease_token is null)
            )
            and a.actor_id = o.actor_id
            -- why: a raq ticket measures the actor and never writes its domain rows
            and (not p_skip_on_complete or a.on_complete is null or o.raq_run_id is not null)
        returning
            o.*, s.status as new_status, s.output, s.error, s.failure_kind, s.retry_ticket_id,
            a.name as actor_name,
            greatest(v_now, coalesce(o.started_at, o.created_at)) as finished_at
    ),
    hist as (
        insert into turing.ticket_history (
            ticket_id, actor_id, model, subject_id, status, attempt, priority, input, output,
            error, failure_kind, source, chain_id, chain_depth, parent_ticket_id, created_at,
            run_after, started_at, finished_at, worker, batch_id, timeout, actor_version,
            raq_run_id
        )
        select
            g.ticket_id, g.actor_id, g.model, g.subject_id, g.new_status, g.attempt, g.priority,
            g.input, g.output, g.error, g.failure_kind, g.source, g.chain_id, g.chain_depth,
            g.parent_ticket_id, g.created_at, g.run_after, g.started_at, g.finished_at,
            g.worker, g.batch_id, g.timeout, g.actor_version, g.raq_run_id
        from gone as g
    ),
    -- why: the dead letter is recorded where the attempt ends dead, in the same statement, so
    -- v_dead_letters reads a small table instead of probing the history.
    dead as (
        insert into turing.dead_letters (
            ticket_id, actor_id, subject_id, model, attempt, failure_kind, error, finished_at,
            chain_id
        )
        select
            g.ticket_id, g.actor_id, g.subject_id, g.model, g.attempt, g.failure_kind, g.error,
            g.finished_at, g.chain_id
        from gone as g
        where g.new_status = 'dead'
    ),
    -- why: the chain a discovered ticket continues (turing.hand_offs): a completion whose
    -- on_complete feeds another actor's inbox hands its subject on in the statement that ends
    -- it. The fast path (p_skip_on_complete) ends only actors without on_complete, so it skips
    -- this at once.
    handed as (
        insert into turing.hand_offs (
            subject_id, ticket_id, actor_id, chain_id, chain_depth, handed_at
        )
        select g.subject_id, g.ticket_id, g.actor_id, g.chain_id, g.chain_depth, g.finished_at
        from gone as g
        inner join turing.actors as a on a.actor_id = g.actor_id
        where not p_skip_on_complete and g.new_status = 'completed' and a.on_complete is not null
            and exists (select from turing.actors as r where r.inbox && a.outbox)
        on conflict do nothing
    )
    -- why: hist inserts every row of gone or the statement fails, so the result is read from
    -- gone alone; joining the two CTE scans back cost a nested loop of batch x batch.
    select
        coalesce(array_agg(g.ticket_id), '{}'),
        coalesce(array_agg(g.new_status), '{}'),
        array_agg(
            jsonb_build_object(
                'event', 'ticket.' || g.new_status, 'ticket_id', g.ticket_id,
                'actor', g.actor_name, 'subject_id', g.subject_id, 'status', g.new_status,
                'attempt', g.attempt, 'chain_id', g.chain_id, 'at', v_now
            )
            || case
                when g.new_status = 'completed' then '{}'::jsonb
                else jsonb_build_object('error', g.error, 'retry_ticket_id', g.retry_ticket_id)
            end
        )
    into v_ids, v_statuses, v_events
    from gone as g;
    perform pg_catalog.set_config('plan_cache_mode', v_plan_mode, true);
    perform turing._emit_events(v_events);
    return query
    select u.ticket_id, u.status
    from unnest(v_ids, v_statuses) as u (ticket_id, status);
end;
$$;

comment on function turing._finish(
    bigint[], uuid[], text[], jsonb[], text[], text[], bigint[], boolean, boolean
) is
'Internal: the one way an attempt ends. Moves each given open ticket to ticket_history with the '
'given status (completed, failed, timed_out, cancelled or dead), output, error and failure kind, '
'fenced by its lease token (p_require_token = false also ends a pending ticket passed without '
'one), adds the dead letters, and sends one ticket.<status> event each (with error and '
'retry_ticket_id for failures). p_skip_on_complete leaves the tickets of actors with an '
'on_complete alone. Returns the tickets it ended.';
