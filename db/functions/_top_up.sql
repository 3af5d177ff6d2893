-- _top_up: discover for the actors of a model whose pending buffer runs low, recording
-- work_query errors instead of raising them (a broken actor must not stop the others).
create or replace function turing._top_up(p_model text, p_want integer)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_actor record;
    v_total integer := 0;
    v_message text;
    v_state text;
    v_now timestamptz := clock_timestamp();
    v_interval interval := turing._setting('discover_interval', '2 seconds')::interval;
    v_backoff interval := turing._setting('discover_error_backoff', '1 minute')::interval;
begin
    for v_actor in
        select a.actor_id, a.name, a.buffer_size
        from turing.actors as a
        left join turing.actor_discovery as d on d.actor_id = a.actor_id
        where a.model = p_model and a.enabled and a.work_query is not null
            and (d.paused_until is null or d.paused_until <= v_now)
            -- why: a drained inbox is re-queried at most once per discover_interval, so idle
            -- runners polling claim_batch do not run every work_query on every poll.
            and (
                d.last_run_at is null or not d.exhausted
                or d.last_run_at <= v_now - v_interval
            )
            and (
                select coalesce(sum(c.n), 0) from turing.ticket_counts as c
                where c.actor_id = a.actor_id and c.status = 'pending'
            ) < greatest(p_want, a.buffer_size / 2)
        order by a.priority desc, a.actor_id
    loop
        begin
            v_total := v_total + turing._discover(v_actor.actor_id);
        exception
            when query_canceled then
                get stacked diagnostics v_message = message_text;
                update turing.actor_discovery
                set last_error = 'work_query cancelled (statement timeout?): ' || v_message,
                    last_run_at = v_now, paused_until = v_now + v_backoff
                where actor_id = v_actor.actor_id;
            when others then
                get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
                update turing.actor_discovery
                set last_error = format('work_query failed: %s (SQLSTATE %s)', v_message, v_state),
                    last_run_at = v_now, paused_until = v_now + v_backoff
                where actor_id = v_actor.actor_id;
                perform turing._emit_events(array[jsonb_build_object(
                    'event', 'actor.discover_failed', 'actor', v_actor.name,
                    'error', v_message, 'at', v_now
                )]);
        end;
    end loop;
    return v_total;
end;
$$;

comment on function turing._top_up(text, integer) is
'Internal: for each enabled actor of the model whose pending tickets are below '
'max(p_want, buffer_size/2), runs discover; a failing work_query is recorded in '
'actor_discovery.last_error (and an actor.discover_failed event) and paused for '
'discover_error_backoff, so other actors keep flowing.';
