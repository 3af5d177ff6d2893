-- register_runner: a runner announces itself at start (and again after a reconnect).
create or replace function turing.register_runner(
    p_worker text,
    p_models text[],
    p_hostname text default null,
    p_pid integer default null,
    p_concurrency integer default null,
    p_info jsonb default '{}'
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_now timestamptz := clock_timestamp();
    v_unknown text;
begin
    select string_agg(m, ', ') into v_unknown
    from unnest(p_models) as m
    where not exists (select from turing.actors as a where a.model = m);
    if v_unknown is not null then
        raise exception 'unknown model(s): % (no actor uses them)', v_unknown
            using errcode = 'TR003',
            hint = 'Known models: ' || coalesce(
                (select string_agg(distinct a.model, ', ') from turing.actors as a), 'none'
            ) || '.';
    end if;
    insert into turing.runners as r (
        worker, models, hostname, pid, concurrency, status, started_at, last_seen_at, info
    ) values (p_worker, p_models, p_hostname, p_pid, p_concurrency, 'running', v_now, v_now, p_info)
    on conflict (worker) do update set
        models = excluded.models, hostname = excluded.hostname, pid = excluded.pid,
        concurrency = excluded.concurrency, status = 'running', last_seen_at = v_now,
        stopped_at = null, info = excluded.info;
    perform turing._emit_events(array[jsonb_build_object(
        'event', 'runner.started', 'worker', p_worker, 'models', to_jsonb(p_models),
        'hostname', p_hostname, 'pid', p_pid, 'at', v_now
    )]);
end;
$$;

comment on function turing.register_runner(text, text[], text, integer, integer, jsonb) is
'Register (or re-register) a runner process: its worker id and the models it serves. Raises '
'TR003 for a model no actor uses. Emits a runner.started event.';
