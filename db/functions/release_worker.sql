-- release_worker: graceful stop. Give a runner's unstarted claims back at once.
create or replace function turing.release_worker(
    p_worker text,
    p_secret text,
    p_ticket_ids bigint[] default null,
    p_stopping boolean default true
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_released integer;
    v_ids bigint [];
    v_tokens uuid [];
    v_now timestamptz := clock_timestamp();
begin
    -- why: another runner's name (or a forged secret) releases nothing.
    if not exists (
        select from turing.runners as r
        where r.worker = p_worker
            and r.secret_hash = turing._secret_hash(p_secret)
    ) then
        return 0;
    end if;
    -- why: a released claim is not an attempt: it goes back to pending with the same attempt
    -- number and no error, so nothing is ever marked "interrupted".
    select array_agg(o.ticket_id), array_agg(o.lease_token) into v_ids, v_tokens
    from turing.ticket_open as o
    where o.status = 'running' and o.worker = p_worker
        and (p_ticket_ids is null or o.ticket_id = any(p_ticket_ids));
    v_released := coalesce(turing._unclaim(v_ids, v_tokens, null), 0);
    if p_stopping then
        update turing.runners as r
        set status = case when exists (
                select from turing.ticket_open as o where o.worker = p_worker and o.status = 'running'
            ) then 'stopping' else 'stopped' end,
            stopped_at = v_now, last_seen_at = v_now
        where r.worker = p_worker;
        perform turing._emit_events(array[jsonb_build_object(
            'event', 'runner.stopped', 'worker', p_worker, 'released', v_released, 'at', v_now
        )]);
    end if;
    return v_released;
end;
$$;

comment on function turing.release_worker(text, text, bigint[], boolean) is
'Only with the secret register_runner issued to p_worker (otherwise 0 and nothing changes). '
'Graceful stop: put the worker''s claimed-but-unstarted tickets (p_ticket_ids, or all its running '
'tickets when NULL) back to pending at once, same attempt, no error. With p_stopping the runner '
'is marked stopping (still finishing calls) or stopped, and a runner.stopped event is sent. '
'Returns the number released.';
