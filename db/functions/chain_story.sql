-- chain_story: everything one chain did, as one JSON document: every attempt in order with its
-- status, timing, error, parent and what it spawned or handed on, and the chain's progress.
-- `turing chain` prints it; the web dashboard reads the same document.
create or replace function turing.chain_story(p_id bigint, p_limit integer default 1000)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_chain bigint;
    v_story jsonb;
begin
    -- why: a chain is named by its root ticket, so "the chain of ticket p_id" is also "chain
    -- p_id" when p_id is a root: one rule takes either id.
    select t.chain_id into v_chain
    from (
        select o.chain_id from turing.ticket_open as o where o.ticket_id = p_id
        union all
        select h.chain_id from turing.ticket_history as h where h.ticket_id = p_id
    ) as t
    limit 1;
    -- a chain whose root retention already pruned is still known by its id
    if v_chain is null
        and (
            exists (select from turing.ticket_history as h where h.chain_id = p_id)
            or exists (select from turing.ticket_open as o where o.chain_id = p_id)
        ) then
        v_chain := p_id;
    end if;
    if v_chain is null then
        raise exception 'no ticket or chain has id %', p_id
            using errcode = 'TR010',
            hint = 'Give a ticket id or a chain id, as `turing tickets` lists them.';
    end if;

    -- why: turing.tickets reads the chain through ticket_history_chain and the (small) open
    -- table, so a chain costs its own attempts, not the history's size.
    with steps as (
        select
            t.ticket_id, t.actor, t.model, t.subject_id, t.status, t.attempt, t.source,
            t.chain_depth, t.parent_ticket_id, t.created_at, t.started_at, t.finished_at,
            t.worker, t.error
        from turing.tickets as t
        where t.chain_id = v_chain
    ),
    -- a retry keeps its parent: what a ticket made is what it spawned or handed on, not the
    -- later attempts of those
    children as (
        select s.parent_ticket_id as ticket_id, jsonb_agg(s.ticket_id order by s.ticket_id) as ids
        from steps as s
        where s.parent_ticket_id is not null and s.source <> 'retry'
        group by s.parent_ticket_id
    ),
    shown as (
        select s.*
        from steps as s
        order by s.created_at, s.ticket_id
        limit p_limit
    )
    select jsonb_build_object(
        'chain_id', v_chain,
        'asked_id', p_id,
        'progress', (
            select jsonb_build_object(
                'attempts', count(*),
                'done', count(*) filter (where s.status = 'completed'),
                'open', count(*) filter (where s.status in ('pending', 'running')),
                'dead', count(*) filter (where s.status = 'dead'),
                'retried', count(*) filter (where s.status in ('failed', 'timed_out')),
                'cancelled', count(*) filter (where s.status = 'cancelled'),
                'depth', max(s.chain_depth),
                'started_at', min(s.created_at),
                'finished_at', case
                    when count(*) filter (where s.status in ('pending', 'running')) = 0
                        then max(s.finished_at)
                end
            )
            from steps as s
        ),
        'truncated', (select count(*) from steps) > p_limit,
        'attempts', coalesce((
            select jsonb_agg(
                jsonb_build_object(
                    'ticket_id', s.ticket_id, 'actor', s.actor, 'model', s.model,
                    'subject_id', s.subject_id, 'attempt', s.attempt, 'status', s.status,
                    'source', s.source, 'depth', s.chain_depth,
                    'parent_ticket_id', s.parent_ticket_id,
                    'created_at', s.created_at, 'started_at', s.started_at,
                    'finished_at', s.finished_at,
                    'duration_ms', round(
                        (extract(epoch from s.finished_at - s.started_at) * 1000)::numeric, 1
                    ),
                    'worker', s.worker,
                    -- why: an open ticket's error column is the previous attempt's error,
                    -- shown on that attempt already
                    'error', case when s.status not in ('pending', 'running') then s.error end,
                    'children', coalesce(c.ids, '[]'::jsonb)
                )
                order by s.created_at, s.ticket_id
            )
            from shown as s
            left join children as c on c.ticket_id = s.ticket_id
        ), '[]'::jsonb)
    ) into v_story;
    return v_story;
end;
$$;

comment on function turing.chain_story(bigint, integer) is
'One chain as JSON: chain_id; progress (attempts, done = completed, open = pending + running, '
'dead, retried = failed or timed_out attempts a retry followed, cancelled, depth, started_at, '
'finished_at once nothing is open); attempts, in the order they were created (at most p_limit; '
'truncated says when more exist), each with ticket_id, actor, model, subject_id, attempt, '
'status, source, depth, parent_ticket_id, created/started/finished_at, duration_ms, worker, '
'error and children (the tickets it spawned or handed on). p_id is a chain id or the id of '
'any ticket in the chain (a chain is named by its root ticket). Raises TR010 when no ticket or '
'chain has that id. Read-only; turing_viewer may call it (`turing chain`, the dashboard).';
