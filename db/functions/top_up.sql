-- top_up: run one actor's work_query now (buffer permitting) and record, never raise, what goes
-- wrong, so a broken or slow actor cannot stop the others. What runners call, off the claim.
create or replace function turing.top_up(p_actor text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id integer := turing._actor_id(p_actor);
    v_message text;
    v_state text;
    v_now timestamptz := clock_timestamp();
    v_backoff interval := turing._setting('discover_error_backoff', '1 minute')::interval;
begin
    begin
        return turing._discover(v_id);
    exception
        -- why: OTHERS does not catch a cancel; a work_query cut by the statement timeout is
        -- recorded like any other failure.
        when query_canceled then
            get stacked diagnostics v_message = message_text;
            v_message := 'work_query cancelled (statement timeout?): ' || v_message;
        when others then
            get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
            v_message := format('work_query failed: %s (SQLSTATE %s)', v_message, v_state);
    end;
    update turing.actor_discovery
    set last_error = v_message, last_run_at = v_now, paused_until = v_now + v_backoff
    where actor_id = v_id;
    perform turing._emit_events(array[jsonb_build_object(
        'event', 'actor.discover_failed', 'actor', p_actor, 'error', v_message, 'at', v_now
    )]);
    return 0;
end;
$$;

comment on function turing.top_up(text) is
'Discover for one actor now (its work_query, up to buffer_size pending). A failing or cancelled '
'work_query does not raise: it is recorded in actor_discovery.last_error (shown by turing '
'status, turing check and v_alerts), announced as an actor.discover_failed event, and the actor '
'is skipped for discover_error_backoff. Returns the tickets created. Runners call it from their '
'discovery thread for each actor discover_due() names, so a slow work_query never holds up a '
'claim or another actor.';
