-- tick: the periodic maintenance entry point for cron (`turing tick`) or pg_cron.
create or replace function turing.tick(p_caller text default 'tick')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_reaped integer;
    v_discovered integer := 0;
    v_model text;
    v_metrics integer;
    v_pruned bigint;
    v_rolled integer;
    v_measured integer;
    v_inbox integer;
    v_alerts integer;
    v_folded integer;
    v_result jsonb;
begin
    v_reaped := turing.reap(p_caller);
    select count(*)::integer into v_inbox from turing.drain_inbox(1000);
    for v_model in select distinct a.model from turing.actors as a where a.enabled order by 1 loop
        v_discovered := v_discovered + turing._top_up(v_model, 1);
    end loop;
    v_metrics := turing.compute_metrics(current_date);
    -- why: attempts that finished just before midnight are folded into yesterday's row too.
    if clock_timestamp() - current_date::timestamptz < interval '1 hour' then
        v_metrics := v_metrics + turing.compute_metrics(current_date - 1);
    end if;
    v_measured := turing.measure_run_times();
    v_rolled := turing.roll_up_throughput();
    v_pruned := turing.prune_history();
    -- why: after the steps that end or prune tickets, so their count changes are folded too,
    -- and before the alerts, which read the counts.
    v_folded := turing.compact_counts();
    select count(*)::integer into v_alerts from turing.evaluate_alerts();
    v_result := jsonb_build_object(
        'reaped', v_reaped, 'inbox', v_inbox, 'discovered', v_discovered, 'metrics_rows', v_metrics,
        'run_times_measured', v_measured, 'throughput_rows', v_rolled, 'pruned', v_pruned,
        'counts_folded', v_folded, 'alert_changes', v_alerts
    );
    insert into turing.maintenance_log (operation, started_at, rows_affected, caller, detail)
    values ('tick', v_started, v_reaped + v_discovered, p_caller, v_result);
    return v_result;
end;
$$;

comment on function turing.tick(text) is
'Periodic maintenance in one call: reap(), drain_inbox(1000), discover for every model whose '
'buffers run low, compute_metrics(today), measure_run_times() (auto timeouts), '
'roll_up_throughput(), prune_history(), compact_counts(), evaluate_alerts(). Returns what it '
'did as JSON. Call it every minute: `* * * * * turing tick` from cron, or select '
'cron.schedule(''turing-tick'', ''* * * * *'', '
'''select turing.tick()'') with pg_cron.';
