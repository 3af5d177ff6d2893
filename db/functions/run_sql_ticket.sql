-- run_sql_ticket: run a claimed ticket of a `sql` actor inside the database and report it, in
-- one transaction: the function's effects, on_complete, spawns and the status change commit
-- together or not at all.
create or replace function turing.run_sql_ticket(p_ticket_id bigint, p_lease_token uuid)
returns table (accepted boolean, status text, error text)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_fn text;
    v_actor text;
    v_subject text;
    v_input jsonb;
    v_output jsonb;
    v_message text;
    v_state text;
    v_error text;
    v_actor_id integer;
begin
    select a.sql_function, a.name, o.subject_id, o.input, a.actor_id
    into v_fn, v_actor, v_subject, v_input, v_actor_id
    from turing.ticket_open as o
    inner join turing.actors as a on a.actor_id = o.actor_id
    where o.ticket_id = p_ticket_id and o.lease_token = p_lease_token
        and a.kind = 'sql';
    if not found then
        -- why: same fence as complete_ticket: a reaped or foreign claim changes nothing.
        return query select false, null::text,
            'ticket is not running under this lease token, or its actor is not a sql actor'::text;
        return;
    end if;

    begin
        -- why: the function runs as the actor's run_as role, through its wrapper, checked
        -- before and after the call inside this subtransaction (invariant 14).
        execute format('select %s($1, $2)', turing._actor_sql(v_actor_id, 'sql'))
        into v_output using v_subject, v_input;
        perform turing._actor_sql(v_actor_id, 'sql');
        if v_output is null or jsonb_typeof(v_output) not in ('object', 'array') then
            v_error := format(
                'actor %s: %s(%L, input) returned %s; a sql actor must return a JSON object or '
                'array', v_actor, v_fn, v_subject, coalesce(jsonb_typeof(v_output), 'NULL')
            );
        end if;
    exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
        v_error := format('actor %s: %s(%L, input) raised: %s (SQLSTATE %s)',
                          v_actor, v_fn, v_subject, v_message, v_state);
    end;

    if v_error is not null then
        return query
        select f.accepted, f.status, v_error
        from turing.fail_batch(
            array[p_ticket_id], array[p_lease_token], array[v_error], array['failed'], array[true]
        ) as f;
        return;
    end if;
    return query
    select c.accepted, c.status, c.error
    from turing.complete_batch(array[p_ticket_id], array[p_lease_token], array[v_output]) as c;
end;
$$;

comment on function turing.run_sql_ticket(bigint, uuid) is
'Run a claimed ticket of a sql actor: call its sql_function(subject_id, input) and save the '
'result through complete_batch (on_complete included), all in this transaction; a raising '
'function or a non-object result fails the attempt (retried per max_attempts) with the error '
'returned; the function runs as the actor''s run_as role. Fenced like complete_ticket: returns '
'accepted = false and changes nothing when the '
'ticket is not running under p_lease_token.';
