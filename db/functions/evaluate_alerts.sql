-- evaluate_alerts: compare v_alerts with the recorded state; raise and clear, with events.
create or replace function turing.evaluate_alerts()
returns table (alert text, subject text, change text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := clock_timestamp();
    v_events jsonb [];
begin
    return query
    with now_alerts as materialized (
        select v.alert, v.subject, v.severity, v.message from turing.v_alerts as v
    ),
    raised as (
        insert into turing.alert_state as s (alert, subject, severity, message, raised_at, last_seen_at)
        select n.alert, n.subject, n.severity, n.message, v_now, v_now
        from now_alerts as n
        on conflict (alert, subject) where cleared_at is null
        do update set message = excluded.message, severity = excluded.severity,
            last_seen_at = v_now
        returning s.alert, s.subject, (s.raised_at = v_now) as is_new
    ),
    cleared as (
        update turing.alert_state as s set cleared_at = v_now
        where s.cleared_at is null
            and not exists (
                select from now_alerts as n where n.alert = s.alert and n.subject = s.subject
            )
        returning s.alert, s.subject
    )
    select r.alert, r.subject, 'raised' from raised as r where r.is_new
    union all
    select c.alert, c.subject, 'cleared' from cleared as c;

    select array_agg(jsonb_build_object(
        'event', 'alert.' || case when s.cleared_at = v_now then 'cleared' else 'raised' end,
        'alert', s.alert, 'subject', s.subject, 'severity', s.severity, 'message', s.message,
        'at', v_now
    ))
    into v_events
    from turing.alert_state as s
    where s.cleared_at = v_now or (s.raised_at = v_now and s.cleared_at is null);
    perform turing._emit_events(v_events);
end;
$$;

comment on function turing.evaluate_alerts() is
'Evaluate turing.v_alerts against alert_state: new alerts are raised, ended ones cleared, each '
'change sent as an alert.raised / alert.cleared event. Returns the changes. Called by tick().';
