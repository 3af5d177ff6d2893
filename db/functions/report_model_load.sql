-- report_model_load: a runner says how long its model server took to load a model, the time an
-- auto timeout adds when an attempt starts with that model cold.
create or replace function turing.report_model_load(
    p_worker text,
    p_model text,
    p_load_s double precision
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    if p_load_s is null or p_load_s < 0 or p_load_s = 'infinity' then
        raise exception 'report_model_load: p_load_s must be a duration in seconds, got %',
            p_load_s
            using errcode = 'TR012';
    end if;
    insert into turing.model_loads as l (model, load_ms, recent_ms, worker, measured_at)
    values (p_model, p_load_s * 1000, array[p_load_s * 1000], p_worker, clock_timestamp())
    on conflict (model) do update set
        -- why: the last 10 loads, so one slow load (a cold disk) counts for a while and then
        -- goes, and a model moved to a faster disk is measured anew.
        recent_ms = (l.recent_ms || excluded.recent_ms)[
            greatest(1, cardinality(l.recent_ms) - 8):
        ],
        load_ms = (
            select max(x)
            from unnest((l.recent_ms || excluded.recent_ms)[
                greatest(1, cardinality(l.recent_ms) - 8):
            ]) as x
        ),
        worker = excluded.worker,
        measured_at = excluded.measured_at;
end;
$$;

comment on function turing.report_model_load(text, text, double precision) is
'A runner reports that its model server loaded p_model in p_load_s seconds (a preload at a model '
'switch, or the load_duration of a call that loaded it). model_loads keeps the last 10 per '
'model; the longest of them is what an auto timeout adds for an attempt started cold.';
