-- release_unheld: a runner whose claim broke off (the connection died as it committed) gives
-- back what the database says it claimed but it does not hold: nothing of it ever ran here.
create or replace function turing.release_unheld(
    p_worker text, p_secret text, p_held bigint[]
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_ids bigint [];
    v_tokens uuid [];
begin
    -- why: another runner's name (or a forged secret) releases nothing (issue 15).
    if not exists (
        select from turing.runners as r
        where r.worker = p_worker
            and r.secret_hash = turing._secret_hash(p_secret)
    ) then
        return 0;
    end if;
    -- why: reads every running ticket (ticket_open_running), not a batch by key: called only
    -- after a claim failed, never on the hot path.
    select array_agg(o.ticket_id), array_agg(o.lease_token)
    into v_ids, v_tokens
    from turing.ticket_open as o
    where o.status = 'running' and o.worker = p_worker
        and not o.ticket_id = any(coalesce(p_held, '{}'));
    if v_ids is null then
        return 0;
    end if;
    return turing._unclaim(
        v_ids, v_tokens,
        format('claimed by runner %s, whose claim broke off as it committed; it never ran them',
               p_worker)
    );
end;
$$;

comment on function turing.release_unheld(text, text, bigint[]) is
'Only with the secret register_runner issued to p_worker (otherwise 0 and nothing changes). '
'After a claim whose answer was lost (the connection broke as it committed), the runner names '
'the tickets it holds; every other running ticket of that worker goes back to pending with '
'nothing charged (it never ran them), instead of waiting for its lease to expire and being '
'charged by reap. Fenced by each ticket''s own token. Returns how many went back.';
