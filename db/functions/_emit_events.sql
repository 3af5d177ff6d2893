-- _emit_events: send event messages to the pgmq queue turing_events, honouring the
-- `events` setting (all, failures, off).
create or replace function turing._emit_events(p_events jsonb[])
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_mode text := turing._setting('events', 'all');
    v_events jsonb [];
begin
    if p_events is null or cardinality(p_events) = 0 or v_mode = 'off' then
        return;
    end if;
    if v_mode = 'failures' then
        select array_agg(e) into v_events
        from unnest(p_events) as e
        where e ->> 'event' not in ('ticket.completed');
    else
        v_events := p_events;
    end if;
    if v_events is not null and cardinality(v_events) > 0 then
        -- why: one static INSERT into the queue's table (pgmq's layout: vt = visible from, the
        -- message) with a cached plan. pgmq.send_batch reaches the same INSERT through three
        -- wrapper functions and builds and plans it anew on every call: 0.28 ms of the 0.31 ms
        -- an event cost per completion at batch 1 (pg_stat_statements).
        insert into pgmq.q_turing_events (vt, message)
        select clock_timestamp(), e.message
        from unnest(v_events) as e (message);
    end if;
end;
$$;

comment on function turing._emit_events(jsonb[]) is
'Internal: sends events to the pgmq queue turing_events in one batch (setting events: '
'all | failures | off). Message format: {"event", "ticket_id", "actor", "subject_id", '
'"status", "attempt", "chain_id", "at", ...}.';
