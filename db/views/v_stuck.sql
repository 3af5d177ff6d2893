-- v_stuck: running work that nobody is looking after any more, and why.
create view turing.v_stuck as
select
    o.ticket_id,
    a.actor,
    o.model,
    o.subject_id,
    o.attempt,
    o.worker,
    o.started_at,
    o.heartbeat_at,
    o.lease_expires_at,
    statement_timestamp() - coalesce(o.heartbeat_at, o.started_at) as silent_for,
    case
        when o.lease_expires_at < statement_timestamp() then 'lease expired: waiting for reap()'
        when r.worker is null then 'runner unknown (never registered)'
        when r.status = 'stopped' then 'runner stopped but still holds the ticket'
        else 'no heartbeat for over half the lease'
    end as reason
from turing.ticket_open as o
inner join turing.actor_timeouts as a on o.actor_id = a.actor_id
left join turing.runners as r on o.worker = r.worker
where
    o.status = 'running'
    and (
        o.lease_expires_at < statement_timestamp()
        or r.worker is null
        or r.status = 'stopped'
        or statement_timestamp() - coalesce(o.heartbeat_at, o.started_at)
        > coalesce(least(a.lease, o.timeout), a.unstarted_lease) / 2
    );

comment on view turing.v_stuck is
'Running tickets that look abandoned: lease expired (reap() will retry them), runner unknown or '
'stopped, or no heartbeat for more than half the lease. Empty in a healthy system.';
