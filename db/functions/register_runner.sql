-- register_runner: a runner announces itself at start (and again after a reconnect, with the
-- secret it was issued), and gets the secret its later calls must present.
create or replace function turing.register_runner(
    p_worker text,
    p_models text[],
    p_hostname text default null,
    p_pid integer default null,
    p_concurrency integer default null,
    p_info jsonb default '{}',
    p_secret text default null
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_now timestamptz := clock_timestamp();
    v_unknown text;
    v_known turing.runners%rowtype;
    v_secret text := p_secret;
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
    -- why: the row lock orders two registrations of one name; the second sees the first's secret.
    select * into v_known from turing.runners as r where r.worker = p_worker for update;
    if v_known.secret_hash is null or v_secret is null
        or turing._secret_hash(v_secret) <> v_known.secret_hash then
        -- why: a name is taken over only from a runner that is gone (stopped, or lost to reap());
        -- a running one keeps it, so another runner's name gets nothing.
        if v_known.secret_hash is not null and v_known.status in ('running', 'stopping') then
            raise exception 'worker name "%" belongs to a running runner', p_worker
                using errcode = 'TR014',
                hint = 'Give this runner its own --worker name, or wait until reap() marks the '
                'other one lost (settings.runner_lost_after).';
        end if;
        -- 244 random bits (two v4 UUIDs), as hex
        v_secret := pg_catalog.replace(
            pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''
        );
    end if;
    insert into turing.runners as r (
        worker, models, hostname, pid, concurrency, status, started_at, last_seen_at, info,
        secret_hash
    ) values (
        p_worker, p_models, p_hostname, p_pid, p_concurrency, 'running', v_now, v_now, p_info,
        turing._secret_hash(v_secret)
    )
    on conflict (worker) do update set
        models = excluded.models, hostname = excluded.hostname, pid = excluded.pid,
        concurrency = excluded.concurrency, status = 'running', last_seen_at = v_now,
        stopped_at = null, info = excluded.info, secret_hash = excluded.secret_hash;
    perform turing._emit_events(array[jsonb_build_object(
        'event', 'runner.started', 'worker', p_worker, 'models', to_jsonb(p_models),
        'hostname', p_hostname, 'pid', p_pid, 'at', v_now
    )]);
    return v_secret;
end;
$$;

comment on function turing.register_runner(text, text[], text, integer, integer, jsonb, text) is
'Register (or re-register) a runner process: its worker id and the models it serves. Returns the '
'secret heartbeat() and release_worker() need: a new one, or p_secret again when it is this '
'name''s secret (a reconnect). Raises TR014 when the name belongs to a running runner and '
'p_secret is not its secret (a stopped or lost runner''s name is taken over with a new secret), '
'TR003 for a model no actor uses. Only the secret''s sha256 is stored. Emits runner.started.';
