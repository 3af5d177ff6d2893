-- consume_events: read and archive events of the pgmq queue turing_events in one transaction
-- (`turing events --consume`): the one consumer that takes them off the queue.
create or replace function turing.consume_events(
    p_limit integer default 100,
    p_visibility_s integer default 30
)
returns table (msg_id bigint, enqueued_at timestamptz, message jsonb)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_msg record;
    v_ids bigint [] := '{}'::bigint [];
begin
    -- why: read and archive in one transaction: an event is archived only if it was returned
    -- to this caller, and a caller that dies gets nothing archived.
    for v_msg in
        select r.msg_id, r.enqueued_at, r.message
        from pgmq.read('turing_events', p_visibility_s, least(greatest(p_limit, 1), 10000)) as r
    loop
        msg_id := v_msg.msg_id;
        enqueued_at := v_msg.enqueued_at;
        message := v_msg.message;
        v_ids := v_ids || v_msg.msg_id;
        return next;
    end loop;
    if cardinality(v_ids) > 0 then
        perform pgmq.archive('turing_events', v_ids);
    end if;
end;
$$;

comment on function turing.consume_events(integer, integer) is
'Read up to p_limit (1..10000) visible events from the pgmq queue turing_events and archive them '
'(pgmq.a_turing_events) in one transaction: `turing events --consume`. It changes the queue, so '
'turing_admin may call it and turing_viewer may not (it peeks with peek_events).';
