-- report_backend: a runner's circuit breaker says whether a model backend answers, so the
-- outage is an alert anyone can see (v_alerts backend_down) and clears when it heals.
create or replace function turing.report_backend(
    p_worker text,
    p_backend text,
    p_model text,
    p_state text,
    p_error text default null,
    p_setting text default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_now timestamptz := clock_timestamp();
begin
    if p_state is null or p_state not in ('up', 'down') then
        raise exception 'report_backend: state must be up or down, got %', p_state
            using errcode = 'TR012';
    end if;
    insert into turing.backend_status as b (
        worker, backend, model, state, since, checked_at, last_error, setting
    ) values (p_worker, p_backend, p_model, p_state, v_now, v_now, p_error, p_setting)
    on conflict (worker, backend, model) do update set
        state = excluded.state,
        since = case when b.state = excluded.state then b.since else excluded.since end,
        checked_at = excluded.checked_at,
        last_error = coalesce(excluded.last_error, b.last_error),
        setting = excluded.setting;
    update turing.runners as r set last_seen_at = v_now where r.worker = p_worker;
end;
$$;

comment on function turing.report_backend(text, text, text, text, text, text) is
'A runner reports what its circuit breaker knows of a model backend (host URL, credentials '
'masked) for one model: down after consecutive infrastructure faults (p_error the last one, '
'p_setting the runner option to blame when every call failed alike), up when its probe answers '
'again. v_alerts raises backend_down while a live runner reports it down.';
