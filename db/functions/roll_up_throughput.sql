-- roll_up_throughput: fold closed hours of ticket_history into throughput_hourly (from tick()).
create or replace function turing.roll_up_throughput()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_from timestamptz;
    -- why: an attempt's finished_at is taken inside its completing transaction, which commits a
    -- moment later; hours are folded only once they closed 5 minutes ago, so a completion that
    -- commits late is still in ticket_history when its hour is read.
    v_to timestamptz := date_trunc('hour', clock_timestamp() - interval '5 minutes');
    v_rows integer := 0;
begin
    select w.rolled_through into v_from
    from turing.throughput_watermark as w
    where w.only_row
    for update;
    -- why: the view shows 24 hours; older history is never folded.
    v_from := greatest(coalesce(v_from, '-infinity'), v_to - interval '25 hours');
    if v_to > v_from then
        insert into turing.throughput_hourly as t (
            actor_id, hour, completed, failed, run_ms_sum, run_ms_p95
        )
        select
            h.actor_id,
            date_trunc('hour', h.finished_at),
            count(*) filter (where h.status = 'completed'),
            count(*) filter (where h.status in ('failed', 'timed_out', 'dead')),
            coalesce(sum(
                extract(epoch from h.finished_at - h.started_at) * 1000
            ) filter (where h.status = 'completed'), 0),
            percentile_cont(0.95) within group (
                order by extract(epoch from h.finished_at - h.started_at) * 1000
            ) filter (where h.status = 'completed')
        from turing.ticket_history as h
        where h.finished_at >= v_from and h.finished_at < v_to
            -- why: live actors only; a removed actor's recent history is not rolled up again
            and h.actor_id in (select a.actor_id from turing.actors as a)
        group by 1, 2
        on conflict (actor_id, hour) do update
        set completed = excluded.completed, failed = excluded.failed,
            run_ms_sum = excluded.run_ms_sum, run_ms_p95 = excluded.run_ms_p95;
        get diagnostics v_rows = row_count;
        update turing.throughput_watermark as w set rolled_through = v_to where w.only_row;
    end if;
    delete from turing.throughput_hourly as t where t.hour < v_to - interval '8 days';
    return v_rows;
end;
$$;

comment on function turing.roll_up_throughput() is
'Fold the attempts that finished in closed hours (ended over 5 minutes ago, at most the last 25) '
'into throughput_hourly, one row per actor and hour (counts, run-time sum and p95), and move '
'throughput_watermark to the last folded hour. Serialised by a row lock; idempotent. Returns '
'the rows written. Called by tick(); v_throughput_hourly stays exact without it, only slower.';
