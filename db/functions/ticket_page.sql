-- ticket_page: one ticket as a document (its row, timings, lease events, the subject's other
-- attempts), for `turing web`'s ticket page.
create or replace function turing.ticket_page(p_ticket_id bigint)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_ticket record;
begin
    select t.* into v_ticket from turing.tickets as t where t.ticket_id = p_ticket_id;
    if not found then
        raise exception 'no ticket %', p_ticket_id
            using errcode = 'TR010', hint = 'Find tickets with `turing tickets`.';
    end if;
    return jsonb_build_object(
        'ticket', to_jsonb(v_ticket) - 'actor_id',
        'open', v_ticket.finished_at is null,
        'timings', jsonb_build_object(
            'queued_ms', round(extract(epoch from v_ticket.started_at - v_ticket.created_at) * 1000),
            'run_ms', round(extract(epoch from v_ticket.finished_at - v_ticket.started_at) * 1000),
            'total_ms', round(extract(epoch from v_ticket.finished_at - v_ticket.created_at) * 1000)
        ),
        'lease_events', coalesce((
            select jsonb_agg(jsonb_build_object('at', e.at, 'event', e.event, 'detail', e.detail)
                order by e.at, e.n)
            from (
                select v_ticket.created_at as at, 1 as n, 'created' as event,
                    'by ' || v_ticket.source as detail
                union all
                select v_ticket.run_after, 2, 'due', 'backoff before this attempt'
                where v_ticket.run_after > v_ticket.created_at
                union all
                select v_ticket.started_at, 3, 'started',
                    'by ' || coalesce(v_ticket.worker, 'the database')
                    || coalesce(', batch ' || v_ticket.batch_id, '')
                union all
                select v_ticket.heartbeat_at, 4, 'lease extended', 'heartbeat'
                where v_ticket.heartbeat_at is not null
                union all
                select v_ticket.lease_expires_at, 5, 'lease expires', 'unless extended'
                where v_ticket.lease_expires_at is not null and v_ticket.finished_at is null
                union all
                -- why: the reaper's log names the attempts it took back; read by (operation,
                -- started_at) over the ticket's lifetime only.
                select l.started_at, 6, 'reaped', 'by ' || coalesce(l.caller, 'reap')
                from turing.maintenance_log as l
                where l.operation = 'reap'
                    and l.started_at >= v_ticket.created_at
                    and l.started_at <= coalesce(v_ticket.finished_at, 'infinity')
                    and jsonb_typeof(l.detail -> 'ticket_ids') = 'array'
                    and exists (
                        select from jsonb_array_elements_text(l.detail -> 'ticket_ids') as i (id)
                        where i.id = p_ticket_id::text
                    )
                union all
                select v_ticket.finished_at, 7, v_ticket.status,
                    coalesce(v_ticket.failure_kind, '')
                where v_ticket.finished_at is not null
            ) as e
            where e.at is not null
        ), '[]'::jsonb),
        'attempts', coalesce((
            select jsonb_agg(jsonb_build_object(
                'ticket_id', a.ticket_id, 'attempt', a.attempt, 'status', a.status,
                'created_at', a.created_at, 'finished_at', a.finished_at
            ) order by a.ticket_id)
            from (
                select o.ticket_id, o.attempt, o.status, o.created_at, null::timestamptz as finished_at
                from turing.ticket_open as o
                where o.actor_id = v_ticket.actor_id and o.subject_id = v_ticket.subject_id
                union all
                select h.ticket_id, h.attempt, h.status, h.created_at, h.finished_at
                from turing.ticket_history as h
                where h.actor_id = v_ticket.actor_id and h.subject_id = v_ticket.subject_id
            ) as a
        ), '[]'::jsonb),
        -- the attempt's call record (rendered prompt, raw answer, tokens, timings): the one
        -- shape `turing tickets show` prints; null for an attempt that made no call
        'call', turing.ticket_story(p_ticket_id) -> 'call'
    );
end;
$$;

comment on function turing.ticket_page(bigint) is
'One ticket (open or finished) as a document: its row of turing.tickets (input, output, error, '
'worker, lease), timings (queued, run, total ms), lease events in order (created, due, started, '
'lease extended, lease expires, reaped, finished), the other attempts of its actor and subject, '
'and call (its call record as ticket_story gives it; null when it made no call). TR010 when '
'there is no such ticket.';
