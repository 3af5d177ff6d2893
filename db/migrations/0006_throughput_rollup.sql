-- 0006: hourly throughput kept as a rollup. v_throughput_hourly aggregated every finished
-- attempt of the last 24 hours on each read: 53 ms at 10 M history rows (bench/run.py, section
-- 4), growing with the day's volume. tick() now folds each closed hour into one row per actor,
-- and the view reads those rows plus the attempts after the watermark (the current hour).

create table if not exists turing.throughput_hourly (
    actor_id integer not null references turing.actors (actor_id) on delete cascade,
    hour timestamptz not null,
    completed bigint not null,
    failed bigint not null,
    constraint throughput_hourly_pkey primary key (actor_id, hour)
);

comment on table turing.throughput_hourly is
'Finished attempts per actor and closed hour, folded in by roll_up_throughput() (run by tick()). '
'Hours before throughput_watermark.rolled_through live here; later attempts are counted from '
'ticket_history when v_throughput_hourly is read. Rows older than 8 days are dropped.';
comment on column turing.throughput_hourly.hour is
'Start of the hour (date_trunc(''hour'', finished_at)).';
comment on column turing.throughput_hourly.completed is
'Attempts of this actor that finished completed in this hour.';
comment on column turing.throughput_hourly.failed is
'Attempts that finished failed, timed_out or dead in this hour (cancelled ones are not counted).';

create table if not exists turing.throughput_watermark (
    only_row boolean primary key default true check (only_row),
    rolled_through timestamptz
);

comment on table turing.throughput_watermark is
'One row: how far throughput_hourly has been rolled up. Locked by roll_up_throughput() so two '
'ticks never fold the same hour twice.';
comment on column turing.throughput_watermark.rolled_through is
'Every attempt that finished before this instant (an hour boundary) is counted in '
'throughput_hourly; null until the first roll-up.';

insert into turing.throughput_watermark (only_row, rolled_through)
values (true, null)
on conflict (only_row) do nothing;
