-- recent_reaps: the reaper's log, one row per ticket it took back or runner it marked lost,
-- newest first: what `turing metrics` shows under "reaps".
create or replace function turing.recent_reaps(
    p_limit integer default 20,
    p_since interval default interval '1 day'
)
returns table (
    reaped_at timestamptz,
    caller text,
    what text,
    ticket_id bigint,
    actor text,
    subject_id text,
    attempt integer,
    worker text,
    outcome text,
    reason text
)
language sql
stable
security definer
set search_path = ''
as $$
    -- why: reap() logs every run in maintenance_log (also the empty ones, as proof that it
    -- runs) with the ids it took back; the reasons are in the attempts' history rows.
    with runs as (
        select l.started_at, l.caller, l.detail
        from turing.maintenance_log as l
        where l.operation = 'reap' and l.started_at > pg_catalog.clock_timestamp() - p_since
            and (
                jsonb_typeof(l.detail -> 'ticket_ids') = 'array'
                or jsonb_typeof(l.detail -> 'returned_unstarted') = 'array'
                or jsonb_typeof(l.detail -> 'runners_lost') = 'array'
            )
    ),
    items as (
        select r.started_at, r.caller, 'attempt' as what, i.id::bigint as ticket_id, null::text as worker
        from runs as r
        cross join lateral jsonb_array_elements_text(
            case when jsonb_typeof(r.detail -> 'ticket_ids') = 'array' then r.detail -> 'ticket_ids' else '[]' end
        ) as i (id)
        union all
        select r.started_at, r.caller, 'unstarted', i.id::bigint, null
        from runs as r
        cross join lateral jsonb_array_elements_text(
            case
                when jsonb_typeof(r.detail -> 'returned_unstarted') = 'array'
                    then r.detail -> 'returned_unstarted'
                else '[]'
            end
        ) as i (id)
        union all
        select r.started_at, r.caller, 'runner', null, w.name
        from runs as r
        cross join lateral jsonb_array_elements_text(
            case
                when jsonb_typeof(r.detail -> 'runners_lost') = 'array' then r.detail -> 'runners_lost'
                else '[]'
            end
        ) as w (name)
    )
    select
        i.started_at,
        i.caller,
        i.what,
        i.ticket_id,
        a.name,
        t.subject_id,
        t.attempt,
        coalesce(i.worker, case when i.what = 'attempt' then t.worker end),
        case i.what
            when 'attempt' then case t.status when 'dead' then 'dead' else 'retried' end
            when 'unstarted' then 'returned to pending'
            else 'marked lost'
        end,
        case i.what
            when 'attempt' then t.error
            when 'unstarted' then 'claimed ahead by a runner that stopped heartbeating before '
                'starting it; nothing charged'
            else 'silent past settings.runner_lost_after'
        end
    from items as i
    left join lateral (
        select h.actor_id, h.subject_id, h.attempt, h.worker, h.status, h.error
        from turing.ticket_history as h
        where h.ticket_id = i.ticket_id
        union all
        select o.actor_id, o.subject_id, o.attempt, o.worker, o.status, o.last_error
        from turing.ticket_open as o
        where o.ticket_id = i.ticket_id
        limit 1
    ) as t on true
    left join turing.actors as a on a.actor_id = t.actor_id
    order by i.started_at desc, i.ticket_id
    limit p_limit;
$$;

comment on function turing.recent_reaps(integer, interval) is
'The reaper''s log of the last p_since, newest first, at most p_limit rows: per attempt reap() '
'took back (what = attempt; outcome retried or dead; reason = the attempt''s error: ran past its '
'timeout, or its runner stopped heartbeating; worker = the runner that held it), per ticket '
'claimed ahead and returned unstarted (what = unstarted, nothing charged), and per runner '
'marked lost (what = runner). Read from maintenance_log, where reap() records every run, and '
'the tickets. Read-only; turing_viewer may call it (`turing metrics`).';
