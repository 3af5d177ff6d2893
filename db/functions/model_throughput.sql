-- model_throughput: per model and hour, what `turing web` charts (throughput, latency, tokens).
-- why: read from v_throughput_hourly, whose closed hours come from the rollup, so a chart of the
-- last hours costs the same at 10 M history rows as at 10.
create or replace function turing.model_throughput(p_hours integer default 6)
returns table (
    model text,
    hour timestamptz,
    completed bigint,
    failed bigint,
    mean_ms double precision,
    p95_ms double precision,
    tokens bigint
)
language sql
stable
security definer
set search_path = ''
as $$
    select
        v.model,
        v.hour,
        sum(v.completed)::bigint,
        sum(v.failed)::bigint,
        sum(v.run_ms_sum) / nullif(sum(v.completed), 0),
        max(v.run_ms_p95),
        -- why: the call records' tokens (v_tokens_hourly reads the last 25 hours of calls
        -- through calls_actor_at, not the history)
        (
            select (k.prompt_tokens + k.output_tokens)::bigint
            from turing.v_tokens_hourly as k
            where k.model = v.model and k.hour = v.hour
        )
    from turing.v_throughput_hourly as v
    where v.hour >= date_trunc('hour', statement_timestamp())
        - make_interval(hours => least(greatest(p_hours, 1), 24) - 1)
    group by v.model, v.hour
    order by v.model, v.hour;
$$;

comment on function turing.model_throughput(integer) is
'Per model and hour, the current hour and the p_hours - 1 before it (1..24): attempts completed '
'and failed, mean run time of the completed ones (ms), p95 run time of its slowest actor in that '
'hour (ms), and tokens (prompt + output, from the call records: v_tokens_hourly). Read from '
'v_throughput_hourly, so closed hours come from the rollup.';
