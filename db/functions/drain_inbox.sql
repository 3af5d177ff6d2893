-- drain_inbox: turn work requests from the pgmq queue turing_inbox into tickets, with the same
-- dedup and loop checks as submit/spawn; rejected messages are kept with their reason.
create or replace function turing.drain_inbox(p_limit integer default 100)
returns table (msg_id bigint, ticket_id bigint, rejected_reason text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_msg record;
    v_ticket bigint;
    v_reason text;
    v_state text;
begin
    -- why: a 60 s visibility timeout: if this transaction dies, the messages reappear for the
    -- next drain instead of being lost.
    for v_msg in select * from pgmq.read('turing_inbox', 60, p_limit) loop
        v_ticket := null;
        v_reason := null;
        begin
            if jsonb_typeof(v_msg.message) is distinct from 'object' then
                raise exception 'message must be a JSON object like {"actor": ..., "subject_id": ...}'
                    using errcode = 'TR012';
            end if;
            if v_msg.message ->> 'actor' is null or v_msg.message ->> 'subject_id' is null then
                raise exception 'message needs "actor" and "subject_id"' using errcode = 'TR012';
            end if;
            v_ticket := turing._create_ticket(
                v_msg.message ->> 'actor',
                v_msg.message ->> 'subject_id',
                coalesce(v_msg.message -> 'input', '{}'),
                (v_msg.message ->> 'priority')::integer,
                'inbox',
                (v_msg.message ->> 'parent_ticket_id')::bigint
            );
        exception
            when others then
                get stacked diagnostics v_reason = message_text, v_state = returned_sqlstate;
                v_reason := format('%s (SQLSTATE %s)', v_reason, v_state);
                insert into turing.inbox_rejections (msg_id, message, reason)
                values (v_msg.msg_id, v_msg.message, v_reason)
                on conflict on constraint inbox_rejections_pkey do nothing;
                perform turing._emit_events(array[jsonb_build_object(
                    'event', 'inbox.rejected', 'msg_id', v_msg.msg_id, 'reason', v_reason,
                    'message', v_msg.message, 'at', clock_timestamp()
                )]);
        end;
        perform pgmq.archive('turing_inbox', v_msg.msg_id);
        msg_id := v_msg.msg_id;
        ticket_id := v_ticket;
        rejected_reason := v_reason;
        return next;
    end loop;
end;
$$;

comment on function turing.drain_inbox(integer) is
'Read up to p_limit messages from the pgmq queue turing_inbox. Each must be {"actor", '
'"subject_id", "input"?, "priority"?, "parent_ticket_id"?}; it becomes a ticket (source inbox) '
'through the same checks as submit/spawn. Accepted and rejected messages are both archived '
'(pgmq.a_turing_inbox); rejected ones are also kept in turing.inbox_rejections with the reason '
'and announced as inbox.rejected events. Called by tick().';
