-- runner_board: every runner with what its circuit breakers know, for `turing web`'s runners page.
create or replace function turing.runner_board()
returns table (
    worker text,
    models text[],
    hostname text,
    status text,
    alive boolean,
    current_model text,
    current_batch_id bigint,
    in_flight bigint,
    started_at timestamptz,
    last_seen_at timestamptz,
    silent_for interval,
    breakers jsonb
)
language sql
stable
security definer
set search_path = ''
as $$
    select
        r.worker, r.models, r.hostname, r.status, r.alive, r.current_model,
        r.current_batch_id, r.in_flight, r.started_at, r.last_seen_at, r.silent_for,
        coalesce((
            select jsonb_agg(jsonb_build_object(
                'backend', b.backend, 'model', b.model, 'state', b.state, 'since', b.since,
                'checked_at', b.checked_at, 'last_error', b.last_error, 'setting', b.setting
            ) order by b.model, b.backend)
            from turing.backend_status as b
            where b.worker = r.worker
        ), '[]'::jsonb)
    from turing.v_runners as r
    order by r.alive desc, r.worker;
$$;

comment on function turing.runner_board() is
'Runners (v_runners: models, state, alive, the model loaded now, its batch, tickets in flight, '
'last heartbeat) with breakers: what each runner''s circuit breaker reports of its model '
'backends (backend_status: up or down, since when, the last error). Alive ones first.';
