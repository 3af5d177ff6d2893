-- ticket_story: one attempt's whole story as one JSON document: the ticket, its input and
-- output, the call it made (prompt, raw answer, timings, tokens), its error and what happened
-- to its lease. `turing tickets show ID` prints it.
create or replace function turing.ticket_story(p_ticket_id bigint)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_t record;
    v_call jsonb;
    v_lease jsonb;
    v_retry bigint;
begin
    select t.* into v_t from turing.tickets as t where t.ticket_id = p_ticket_id;
    if not found then
        raise exception 'no ticket has id %', p_ticket_id
            using errcode = 'TR010',
            hint = 'Give a ticket id as `turing tickets` lists them.';
    end if;

    select jsonb_build_object(
        'model', c.model,
        'options', c.options,
        'system_prompt', s.text,
        'prompt', p.text,
        'prompt_sha256', pg_catalog.encode(p.sha256, 'hex'),
        'answer', c.answer,
        -- the output the answer parsed to: the ticket's when it was saved, else what the
        -- answer parsed to before it was refused (NULL when it was not JSON)
        'output', coalesce(v_t.output, c.output),
        'saved', v_t.output is not null,
        'tokens', jsonb_build_object(
            'prompt', c.prompt_eval_count, 'output', c.eval_count,
            'per_s', round(c.eval_count / nullif(c.eval_duration / 1e9, 0), 1)
        ),
        'timings_ms', jsonb_build_object(
            'load', round(c.load_duration / 1e6, 1),
            'prompt_eval', round(c.prompt_eval_duration / 1e6, 1),
            'eval', round(c.eval_duration / 1e6, 1),
            'total', round(c.total_duration / 1e6, 1)
        ),
        'counters', jsonb_build_object(
            'load_duration', c.load_duration, 'prompt_eval_count', c.prompt_eval_count,
            'prompt_eval_duration', c.prompt_eval_duration, 'eval_count', c.eval_count,
            'eval_duration', c.eval_duration, 'total_duration', c.total_duration
        ),
        'at', c.at
    ) into v_call
    from turing.calls as c
    inner join turing.prompts as p on p.prompt_id = c.prompt_id
    left join turing.prompts as s on s.prompt_id = c.system_prompt_id
    where c.ticket_id = p_ticket_id;

    -- the retry that followed this attempt (same actor, subject and chain, next attempt)
    select t.ticket_id into v_retry
    from turing.tickets as t
    where
        t.actor_id = v_t.actor_id and t.subject_id = v_t.subject_id
        and t.chain_id = v_t.chain_id and t.attempt = v_t.attempt + 1
    order by t.ticket_id
    limit 1;

    -- why: the lease's life is spread over the ticket row, the claim's batch and the reaper's
    -- log (maintenance_log, searched only around this attempt's own run).
    select coalesce(jsonb_agg(e.event order by e.at, e.ord), '[]'::jsonb) into v_lease
    from (
        select 1 as ord, v_t.created_at as at,
            jsonb_build_object('event', 'created', 'at', v_t.created_at, 'source', v_t.source) as event
        union all
        select 2, v_t.run_after,
            jsonb_build_object('event', 'due', 'at', v_t.run_after)
        where v_t.run_after > v_t.created_at
        union all
        select 3, b.claimed_at,
            jsonb_build_object(
                'event', 'claimed', 'at', b.claimed_at, 'worker', b.worker,
                'batch_id', b.batch_id, 'batch_size', b.size
            )
        from turing.batches as b
        where b.batch_id = v_t.batch_id
        union all
        select 4, v_t.started_at,
            jsonb_build_object(
                'event', 'started', 'at', v_t.started_at, 'worker', v_t.worker,
                'timeout', v_t.timeout
            )
        where v_t.started_at is not null
        union all
        select 5, v_t.heartbeat_at,
            jsonb_build_object('event', 'heartbeat', 'at', v_t.heartbeat_at)
        where v_t.heartbeat_at is not null
        union all
        select 6, l.started_at,
            jsonb_build_object(
                'event', case when k.key = 'ticket_ids' then 'reaped' else 'returned_unstarted' end,
                'at', l.started_at, 'by', l.caller
            )
        from turing.maintenance_log as l
        cross join lateral (values ('ticket_ids'), ('returned_unstarted')) as k (key)
        where
            l.operation = 'reap'
            and l.started_at >= v_t.created_at
            and l.started_at <= coalesce(v_t.finished_at, 'infinity') + interval '1 minute'
            and jsonb_typeof(l.detail -> k.key) = 'array'
            and exists (
                select from jsonb_array_elements_text(l.detail -> k.key) as i (id)
                where i.id = p_ticket_id::text
            )
        union all
        select 7, v_t.lease_expires_at,
            jsonb_build_object('event', 'lease_expires', 'at', v_t.lease_expires_at)
        where v_t.lease_expires_at is not null
        union all
        select 8, v_t.finished_at,
            jsonb_build_object(
                'event', 'finished', 'at', v_t.finished_at, 'status', v_t.status,
                'failure_kind', v_t.failure_kind
            )
        where v_t.finished_at is not null
        union all
        -- why: the retry is made in the transaction that ends this attempt, a moment before
        -- its finished_at is stamped; it is told after it.
        select 9, greatest(r.created_at, v_t.finished_at),
            jsonb_build_object('event', 'retried', 'at', r.created_at, 'ticket_id', r.ticket_id)
        from turing.tickets as r
        where r.ticket_id = v_retry
    ) as e
    where e.at is not null;

    return jsonb_build_object(
        'ticket_id', v_t.ticket_id,
        'actor', v_t.actor,
        'model', v_t.model,
        'subject_id', v_t.subject_id,
        'status', v_t.status,
        'attempt', v_t.attempt,
        'source', v_t.source,
        'chain_id', v_t.chain_id,
        'chain_depth', v_t.chain_depth,
        'parent_ticket_id', v_t.parent_ticket_id,
        'retry_ticket_id', v_retry,
        'worker', v_t.worker,
        'created_at', v_t.created_at,
        'started_at', v_t.started_at,
        'finished_at', v_t.finished_at,
        'duration_ms', round((extract(epoch from v_t.finished_at - v_t.started_at) * 1000)::numeric, 1),
        'input', v_t.input,
        'output', v_t.output,
        -- why: an open ticket's error column is the previous attempt's error, not its own
        'error', case when v_t.status not in ('pending', 'running') then v_t.error end,
        'previous_error', case when v_t.status in ('pending', 'running') then v_t.error end,
        'failure_kind', v_t.failure_kind,
        'call', v_call,
        'lease', v_lease
    );
end;
$$;

comment on function turing.ticket_story(bigint) is
'One attempt as JSON: the ticket (actor, model, subject_id, status, attempt, source, chain, '
'parent, retry_ticket_id = the next attempt if one followed, worker, created/started/'
'finished_at, duration_ms), its input and output, its error (previous_error for an open '
'ticket: the error of the attempt it retries), the call record if it made an LLM call (model, '
'options, system_prompt, prompt, answer = the raw text, output = what the answer parsed to, '
'saved = whether the output was saved, tokens {prompt, output, per_s}, timings_ms {load, '
'prompt_eval, eval, total}, the raw counters in nanoseconds) and its lease events in order '
'(created, due, claimed, started, heartbeat, reaped or returned_unstarted, lease_expires, '
'finished, retried). Raises TR010 when no ticket has that id. Read-only; turing_viewer may '
'call it (`turing tickets show`).';
