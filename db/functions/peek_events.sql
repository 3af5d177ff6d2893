-- peek_events: the newest events of the pgmq queue turing_events, read without consuming them
-- (`turing events`), so a viewer can watch the stream that consumers own.
create or replace function turing.peek_events(
    p_after_msg_id bigint default 0,
    p_limit integer default 100
)
returns table (msg_id bigint, enqueued_at timestamptz, message jsonb)
language sql
stable
security definer
set search_path = ''
as $$
    -- why: the queue and its archive together are the stream: a message a consumer archived
    -- (or `turing events --consume` did) is still an event that happened. Each branch walks
    -- its msg_id primary key backwards and stops at p_limit, whatever the archive's size.
    select e.msg_id, e.enqueued_at, e.message
    from (
        (
            select q.msg_id, q.enqueued_at, q.message
            from pgmq.q_turing_events as q
            where q.msg_id > p_after_msg_id
            order by q.msg_id desc
            limit least(greatest(p_limit, 1), 10000)
        )
        union all
        (
            select a.msg_id, a.enqueued_at, a.message
            from pgmq.a_turing_events as a
            where a.msg_id > p_after_msg_id
            order by a.msg_id desc
            limit least(greatest(p_limit, 1), 10000)
        )
        order by msg_id desc
        limit least(greatest(p_limit, 1), 10000)
    ) as e
    order by e.msg_id;
$$;

comment on function turing.peek_events(bigint, integer) is
'The newest p_limit (1..10000) events after msg_id p_after_msg_id, oldest first, from the pgmq '
'queue turing_events and its archive, without reading (no visibility timeout) or archiving '
'them: what `turing events` prints. Read-only, so turing_viewer may call it; consumers use '
'consume_events or pgmq.read.';
