-- _discover: materialise pending tickets for the subjects an actor's work_query returns,
-- bounded by the actor's buffer, one discoverer per actor at a time. A row that cannot be a
-- ticket (no subject_id, one too long to index) is rejected alone and reported; subjects the
-- actor already finished are counted, not re-ticketed. A subject handed on by an upstream
-- actor's ticket continues that ticket's chain.
create or replace function turing._discover(p_actor_id integer)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_actor turing.actors%rowtype;
    v_pending bigint;
    v_room bigint;
    v_found integer := 0;
    v_rejected jsonb;
    v_bad_count integer;
    v_reasons jsonb;
    v_examples jsonb;
    v_done integer;
    v_started timestamptz := clock_timestamp();
    v_work text;
    v_upstream integer [];
    v_doomed bigint [];
    v_doomed_why text [];
begin
    select * into v_actor from turing.actors as a where a.actor_id = p_actor_id
    -- why: what the dropped foreign key did (migration 0010), once per call instead of per row:
    -- the actor cannot be deleted until the tickets made here are committed.
    for key share;
    if v_actor.work_query is null or not v_actor.enabled then
        return 0;
    end if;
    -- why: advisory lock (7243, actor_id) = "discovering this actor". A second runner that finds
    -- it taken skips instead of running the same work_query on the same subjects.
    if not pg_catalog.pg_try_advisory_xact_lock(7243, p_actor_id) then
        return 0;
    end if;
    -- why: the work_query runs as the actor's run_as role, through its wrapper (invariant 14)
    v_work := turing._actor_sql(p_actor_id, 'work');
    -- No lock against completions is needed: the work_query and the NOT EXISTS below read one
    -- snapshot, in which a subject being completed still has its open ticket (so it is skipped)
    -- or already has its completed row and domain write (so it is skipped too).
    select coalesce(sum(c.n), 0)::bigint into v_pending
    from turing.ticket_counts as c
    where c.actor_id = p_actor_id and c.status = 'pending';
    v_room := v_actor.buffer_size - v_pending;
    if v_room > 0 then
        -- the actors upstream of this one: their outbox shares a status with its inbox
        select coalesce(array_agg(w.actor_id), '{}') into v_upstream
        from turing.actors as w
        where w.outbox && v_actor.inbox;
        execute format(
            $q$
            with found as (
                select f.id, f.subject_id, f.input, p.chain_id, p.chain_depth, p.ticket_id as parent
                from (
                    select pg_catalog.nextval('turing.ticket_id_seq') as id, w.subject_id, w.input
                    from (
                        -- why: called in the select list, a set-returning SQL function streams
                        -- (one row per call), so `limit` stops the work_query early; in FROM it
                        -- would return every row of the inbox first.
                        select (r.w).subject_id as subject_id, (r.w).input as input
                        from (select %s() as w offset 0) as r
                    ) as w
                    -- why: a row that cannot be a ticket is left out here, alone, instead of
                    -- failing the insert for every subject of the actor; the pass below
                    -- reports it.
                    where w.subject_id <> ''
                        and pg_catalog.octet_length(w.subject_id) <= 1024
                        -- why (the NOT EXISTS): `offset 0` keeps each one a per-row probe of its
                        -- (actor_id, subject_id) index. Pulled up into an anti join, the planner
                        -- (which cannot see how selective a work_query is) chose a nested loop
                        -- that re-read all of the actor's history per candidate: 800 ms for 500
                        -- subjects on a 1 M-row domain table, 12 ms with the probe (bench/run.py).
                        and not exists (
                            select from turing.ticket_open as x
                            where x.actor_id = $1 and x.subject_id = w.subject_id
                            offset 0
                        )
                        -- why: never re-run a subject this actor completed, or one that is dead
                        -- or cancelled (in the history, or in subjects_done once retention
                        -- pruned its rows): an on_complete that forgets to move the status must
                        -- not loop.
                        and not exists (
                            select from turing.ticket_history as h
                            where h.actor_id = $1 and h.subject_id = w.subject_id
                                and h.status in ('completed', 'dead', 'cancelled')
                            offset 0
                        )
                        and not exists (
                            select from turing.subjects_done as s
                            where s.actor_id = $1 and s.subject_id = w.subject_id
                            offset 0
                        )
                    limit $4
                ) as f
                -- why: the subject's latest hand-off from an upstream actor is the chain the
                -- new ticket continues (README "Chains follow hand-offs"): one probe of
                -- hand_offs_pkey per new ticket, after the limit; none when nothing is
                -- upstream ($5 empty, a one-time filter).
                left join lateral (
                    select h.chain_id, h.chain_depth, h.ticket_id
                    from turing.hand_offs as h
                    where pg_catalog.cardinality($5) > 0
                        and h.subject_id = f.subject_id and h.actor_id = any($5)
                    order by h.ticket_id desc
                    limit 1
                ) as p on true
            ),
            made as (
                insert into turing.ticket_open as o (
                    ticket_id, actor_id, model, subject_id, input, priority, source, chain_id,
                    chain_depth, parent_ticket_id
                )
                select
                    f.id, $1, $2, f.subject_id, f.input, $3, 'discover',
                    coalesce(f.chain_id, f.id),
                    -- (least() ignores a NULL: a root is depth 0 by the case, not by it)
                    case when f.parent is null then 0 else least(f.chain_depth + 1, 20) end,
                    f.parent
                from found as f
                on conflict (actor_id, subject_id) do nothing
                returning o.ticket_id
            ),
            -- why: the loop guard of spawn() (chain_steps) sees the steps a chain took through
            -- hand-offs too; a root ticket needs no row (its chain is new).
            steps as (
                insert into turing.chain_steps (chain_id, actor_id, subject_id, ticket_id)
                select f.chain_id, $1, f.subject_id, f.id
                from made as m
                inner join found as f on f.id = m.ticket_id
                where f.parent is not null and f.chain_depth < 20
                on conflict do nothing
                returning chain_steps.ticket_id
            )
            select
                count(*)::integer,
                array_agg(f.id order by f.id) filter (where k.reason is not null),
                array_agg(k.reason order by f.id) filter (where k.reason is not null)
            from made as m
            inner join found as f on f.id = m.ticket_id
            cross join lateral (
                select case
                    when f.parent is null then null
                    when f.chain_depth >= 20 then pg_catalog.format(
                        'chain %%s is too deep: continuing it after the hand-off of ticket %%s '
                        'would be depth %%s (max 20); a chain that hands off more than 20 times '
                        'is almost always a loop, check its on_complete functions',
                        f.chain_id, f.parent, f.chain_depth + 1
                    )
                    when not exists (select from steps as s where s.ticket_id = f.id)
                        then pg_catalog.format(
                            'loop: chain %%s already ran this actor on subject %%s (after the '
                            'hand-off of ticket %%s)', f.chain_id, f.subject_id, f.parent
                        )
                end as reason
            ) as k
            $q$,
            v_work
        ) into v_found, v_doomed, v_doomed_why using
            p_actor_id, v_actor.model, v_actor.priority, v_room, v_upstream;
        -- why: a chain too deep or a loop is a definition error: dead at once with the reason,
        -- visible in the chain and the dead letters, never a silently new chain.
        if v_doomed is not null then
            perform from turing._finish(
                v_doomed, array_fill(null::uuid, array[cardinality(v_doomed)]),
                array_fill('dead'::text, array[cardinality(v_doomed)]), null, v_doomed_why,
                array_fill('failed'::text, array[cardinality(v_doomed)]), null, false, false
            );
        end if;
    end if;

    -- why: only when the query came back short (the whole inbox was read, and that happens at
    -- most once per discover_interval) is it read once more to say what was left out: rows that
    -- cannot be tickets, and finished subjects the work_query keeps returning.
    if v_room > 0 and v_found < v_room then
        execute format(
            $q$
            select
                coalesce(sum(k.n) filter (where k.reason is not null), 0),
                coalesce(jsonb_object_agg(k.reason, k.n) filter (where k.reason is not null), '{}'),
                jsonb_agg(k.example) filter (where k.reason is not null),
                coalesce(sum(k.n) filter (where k.reason is null), 0)
            from (
                select r.reason, count(*) as n, (array_agg(r.example))[1] as example
                from (
                    select
                        case
                            when w.subject_id is null then 'subject_id is NULL'
                            when w.subject_id = '' then 'subject_id is empty'
                            when pg_catalog.octet_length(w.subject_id) > 1024
                                then 'subject_id is longer than 1024 bytes'
                        end as reason,
                        left(coalesce(w.subject_id, 'NULL'), 80) as example,
                        w.subject_id
                    from (
                        select (r.w).subject_id as subject_id from (select %s() as w offset 0) as r
                    ) as w
                ) as r
                where r.reason is not null
                    or exists (
                        select from turing.ticket_history as h
                        where h.actor_id = $1 and h.subject_id = r.subject_id
                            and h.status in ('completed', 'cancelled')
                            and not exists (
                                select from turing.ticket_open as x
                                where x.actor_id = $1 and x.subject_id = r.subject_id
                            )
                        offset 0
                    )
                    or exists (
                        select from turing.subjects_done as s
                        where s.actor_id = $1 and s.subject_id = r.subject_id
                        offset 0
                    )
                group by r.reason
            ) as k
            $q$,
            v_work
        ) into v_bad_count, v_reasons, v_examples, v_done using p_actor_id;
        v_rejected := case when v_bad_count > 0 then jsonb_build_object(
            'count', v_bad_count, 'reasons', v_reasons, 'examples', v_examples
        ) end;
    end if;

    -- why: checked again after the run: a wrapper altered meanwhile raises, which rolls back
    -- what it did in the caller's subtransaction.
    perform turing._actor_sql(p_actor_id, 'work');
    insert into turing.actor_discovery as d (
        actor_id, last_run_at, last_found, last_duration_ms, last_error, paused_until, exhausted,
        last_rejected, last_returned_done
    ) values (
        p_actor_id, v_started, v_found,
        extract(epoch from clock_timestamp() - v_started) * 1000, null, null,
        v_room > 0 and v_found < v_room, v_rejected, v_done
    )
    on conflict (actor_id) do update set
        last_run_at = excluded.last_run_at, last_found = excluded.last_found,
        last_duration_ms = excluded.last_duration_ms, last_error = null, paused_until = null,
        exhausted = excluded.exhausted,
        -- why: a run that filled the buffer did not look at the rest; keep what was known.
        last_rejected = case
            when excluded.exhausted then excluded.last_rejected else d.last_rejected
        end,
        last_returned_done = case
            when excluded.exhausted then excluded.last_returned_done else d.last_returned_done
        end;
    return v_found;
end;
$$;

comment on function turing._discover(integer) is
'Internal: runs the actor''s work_query and inserts pending tickets for subjects that have no '
'open ticket and were not completed, dead or cancelled for this actor (history or '
'subjects_done), up to buffer_size pending. Rows whose subject_id is NULL, empty or longer than '
'1024 bytes are left out alone and, with the finished subjects the query still returns, '
'recorded in actor_discovery (last_rejected, last_returned_done) when a run reads the whole '
'inbox. Skips (returns 0) when another transaction is discovering the same actor. Errors of '
'the work_query propagate; callers decide whether to raise or record them. The work_query '
'runs as the actor''s run_as role, through its wrapper turing_actor.a<actor_id>_work. A '
'subject with a hand-off (turing.hand_offs) from an actor whose outbox shares a status with '
'this actor''s inbox continues the chain of the latest such ticket (chain_depth + 1, '
'parent_ticket_id = it, a chain_steps row); otherwise it starts a chain. A ticket that would '
'be deeper than 20, or revisit (chain, actor, subject), is created dead with the reason.';
