-- 0026: the hourly rollup keeps run times too, so `turing web` charts latency per model over
-- the last hours from throughput_hourly instead of scanning ticket_history on every read.

alter table turing.throughput_hourly
add column if not exists run_ms_sum double precision not null default 0,
add column if not exists run_ms_p95 double precision;

comment on column turing.throughput_hourly.run_ms_sum is
'Sum of the run times (finished_at - started_at, ms) of the attempts that completed in this '
'hour: divided by completed, the mean run time. 0 for hours folded before 0026.';
comment on column turing.throughput_hourly.run_ms_p95 is
'95th percentile of the run times (ms) of the attempts that completed in this hour; null when '
'none did, or for hours folded before 0026.';
