-- maintain: the upkeep that must not wait for cron, called by every runner about once a
-- second: the pgmq inbox becomes tickets at once; reaping and alerts run at most once per
-- p_min_interval across all runners.
create or replace function turing.maintain(
    p_caller text default null,
    p_min_interval interval default interval '5 seconds'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_inbox integer;
    v_reaped integer;
    v_alerts integer;
    v_measured integer;
    v_folded integer;
begin
    select count(*)::integer into v_inbox from turing.drain_inbox(100);
    -- why: one maintainer at a time (the others skip, they do not wait), and not more often
    -- than p_min_interval, so a fleet of runners does the work of one.
    if not pg_catalog.pg_try_advisory_xact_lock(7247)
        or exists (
            select from turing.maintenance_log as l
            where l.operation = 'maintain' and l.started_at > v_started - p_min_interval
        ) then
        return jsonb_build_object('inbox', v_inbox);
    end if;
    v_reaped := turing.reap(p_caller);
    -- why: auto timeouts follow the measured run times without cron; measuring every actor's
    -- recent history is worth doing about once a minute, not every few seconds.
    if not exists (
        select from turing.maintenance_log as l
        where l.operation = 'measure_run_times'
            and l.started_at
            > v_started - turing._setting('timeout_auto_interval', '1 minute')::interval
    ) then
        v_measured := turing.measure_run_times();
        -- why: a sql actor's function replaced in place (create or replace) changes what the
        -- actor does without a registration; noticed here within about a minute.
        perform turing._version_actors();
    end if;
    -- why: here and not only in tick(), which may never be scheduled: the counter slots are
    -- folded every few seconds, so readers of the counts sum a handful of rows. After reap,
    -- whose changes it folds too; before the alerts, which read the counts.
    v_folded := turing.compact_counts();
    select count(*)::integer into v_alerts from turing.evaluate_alerts();
    insert into turing.maintenance_log (operation, started_at, rows_affected, caller, detail)
    values (
        'maintain', v_started, v_reaped, p_caller,
        jsonb_build_object(
            'inbox', v_inbox, 'reaped', v_reaped, 'counts_folded', v_folded,
            'alert_changes', v_alerts, 'run_times_measured', v_measured
        )
    );
    return jsonb_build_object(
        'inbox', v_inbox, 'reaped', v_reaped, 'counts_folded', v_folded, 'alert_changes', v_alerts,
        'run_times_measured', v_measured
    );
end;
$$;

comment on function turing.maintain(text, interval) is
'The upkeep runners do themselves (about once a second each), so nothing waits for cron: '
'drain_inbox(100) every call (a pgmq message becomes a ticket within a second); reap(), '
'compact_counts() and evaluate_alerts() (alerts raised and cleared, with their events) at most '
'once per p_min_interval across all callers, by one caller at a time, and measure_run_times() '
'(what auto timeouts follow) and _version_actors() (a sql actor''s function replaced in place '
'is a new actor version) at most once per settings.timeout_auto_interval. Returns what it '
'did. tick() does the rest (discovery of every actor, metrics, roll-ups, retention).';
