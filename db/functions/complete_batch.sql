-- complete_batch: save the results of several attempts at once. Each is fenced by its lease
-- token; the status change, the actor's on_complete domain write, spawns, counts and the event
-- happen in this transaction or not at all.
create or replace function turing.complete_batch(
    p_ticket_ids bigint[],
    p_lease_tokens uuid[],
    p_outputs jsonb[],
    p_calls jsonb default null
)
returns table (ticket_id bigint, accepted boolean, status text, error text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_ids bigint [];
    v_status text [];
    v_errors text [];
    v_row record;
    v_gone record;
    v_moved integer;
    v_message text;
    v_state text;
begin
    if cardinality(p_ticket_ids) is distinct from cardinality(p_lease_tokens)
        or cardinality(p_ticket_ids) is distinct from cardinality(p_outputs) then
        raise exception 'ticket ids, lease tokens and outputs must have the same length'
            using errcode = 'TR012';
    end if;
    if exists (
        select from unnest(p_outputs) as o
        where o is null or jsonb_typeof(o) not in ('object', 'array')
    ) then
        raise exception 'an output must be a JSON object or array'
            using errcode = 'TR007',
            hint = 'Report a malformed answer with fail_ticket() so it is retried; never save it.';
    end if;

    -- Fast path, set-based: actors without on_complete.
    select coalesce(array_agg(f.ticket_id), '{}') into v_ids
    from turing._finish(
        p_ticket_ids, p_lease_tokens,
        array_fill('completed'::text, array[cardinality(p_ticket_ids)]), p_outputs,
        null, null, null, true, true
    ) as f;
    -- why: the common case (no on_complete, all accepted) ends here without another query.
    if cardinality(v_ids) = cardinality(p_ticket_ids) then
        perform turing._record_calls(p_calls, v_ids);
        return query
        select s.ticket_id, true, 'completed'::text, null::text
        from unnest(p_ticket_ids) as s (ticket_id);
        return;
    end if;
    v_status := array_fill('completed'::text, array[cardinality(v_ids)]);
    v_errors := array_fill(null::text, array[cardinality(v_ids)]);

    -- Slow path: actors with on_complete, one subtransaction each, so a failing on_complete
    -- turns that attempt into a failure (and retry) without losing the others.
    for v_row in
        select s.ticket_id, s.lease_token, s.output, o.subject_id, o.input, a.on_complete,
            a.name as actor_name, a.actor_id
        from unnest(p_ticket_ids, p_lease_tokens, p_outputs) as s (ticket_id, lease_token, output)
        inner join turing.ticket_open as o
            on o.ticket_id = s.ticket_id and o.lease_token = s.lease_token
        inner join turing.actors as a on a.actor_id = o.actor_id
        where a.on_complete is not null and o.raq_run_id is null
        order by s.ticket_id
    loop
        begin
            select count(*)::integer into v_moved
            from turing._finish(
                array[v_row.ticket_id], array[v_row.lease_token], array['completed'],
                array[v_row.output], null, null, null, true, false
            );
            if v_moved = 0 then
                continue;
            end if;
            -- why: on_complete runs as the actor's run_as role, through its wrapper, checked
            -- before and after the call inside this subtransaction (invariant 14).
            execute format(
                'select %s($1, $2, $3, $4)', turing._actor_sql(v_row.actor_id, 'on_complete')
            )
            using v_row.ticket_id, v_row.subject_id, v_row.input, v_row.output;
            perform turing._actor_sql(v_row.actor_id, 'on_complete');
            v_ids := v_ids || v_row.ticket_id;
            v_status := v_status || 'completed'::text;
            v_errors := v_errors || null::text;
        exception
            when others then
                get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
                -- the subtransaction rolled back (its event too): the ticket is running again;
                -- fail it instead
                v_message := format(
                    'on_complete %s of actor %s failed: %s (SQLSTATE %s); the output was not '
                    'saved', v_row.on_complete, v_row.actor_name, v_message, v_state
                );
                -- why: a loop or a too-deep chain raised by spawn() is the definition's fault
                -- (the same output spawns the same way): not retried.
                select r.ticket_id, r.status into v_gone
                from turing._retire(
                    array[v_row.ticket_id], array[v_row.lease_token], array[v_message],
                    array['failed'], array[v_state not in ('TR004', 'TR005')], true
                ) as r;
                if v_gone.ticket_id is not null then
                    v_ids := v_ids || v_gone.ticket_id;
                    v_status := v_status || v_gone.status;
                    v_errors := v_errors || v_message;
                end if;
        end;
    end loop;

    perform turing._record_calls(p_calls, v_ids);
    return query
    select s.ticket_id, d.ticket_id is not null, d.status, d.error
    from unnest(p_ticket_ids) with ordinality as s (ticket_id, ord)
    left join unnest(v_ids, v_status, v_errors) as d (ticket_id, status, error)
        on d.ticket_id = s.ticket_id
    order by s.ord;
end;
$$;

comment on function turing.complete_batch(bigint[], uuid[], jsonb[], jsonb) is
'Save the outputs of several attempts. Each ticket is completed only if it is still running '
'under the given lease token (invariant 4): otherwise accepted = false and nothing is written, '
'e.g. for the late answer of an attempt that reap() already took back. In the same transaction '
'it moves the ticket to ticket_history, runs the actor''s on_complete (domain writes, spawns) '
'and emits a ticket.completed event. If on_complete raises, that attempt is recorded as failed '
'(and retried; not retried when spawn() refused a loop or a chain too deep) with the error, '
'returned in `error`, and its effects are rolled back (invariant 5). on_complete runs as the '
'actor''s run_as role (invariant 14). Outputs must be '
'JSON objects or arrays (TR007). p_calls (optional): the call records of LLM attempts, a JSON '
'array of {ticket_id, model, options, system, prompt, answer, load_duration, '
'prompt_eval_count, prompt_eval_duration, eval_count, eval_duration, total_duration}, kept in '
'turing.calls for the attempts this call ended (see _record_calls).';
