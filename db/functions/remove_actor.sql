-- remove_actor: take an actor out of the pipeline for good. Refuses while it has open work
-- unless told to cancel it; its finished tickets stay readable in turing.tickets under its name
-- (turing.removed_actors), and the name is free for a new actor at once.
create or replace function turing.remove_actor(p_name text, p_cancel_open boolean default false)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_actor turing.actors%rowtype;
    v_ids bigint [];
    v_tokens uuid [];
    v_cancelled integer := 0;
    v_wrapper regprocedure;
    v_unwired jsonb;
begin
    -- why: FOR UPDATE waits for the functions that are creating tickets for this actor (they
    -- hold its row FOR KEY SHARE until they commit) and keeps new ones out until this commits;
    -- they then find no actor.
    select a.* into v_actor from turing.actors as a
    where a.actor_id = turing._actor_id(p_name) for update;
    -- why: the open tickets are locked before their tokens are read, so no claim can start one
    -- in between (claims skip locked rows) and every one of them is cancelled below.
    select
        array_agg(o.ticket_id order by o.ticket_id),
        array_agg(o.lease_token order by o.ticket_id)
    into v_ids, v_tokens
    from (
        select x.ticket_id, x.lease_token from turing.ticket_open as x
        where x.actor_id = v_actor.actor_id
        for update
    ) as o;
    if v_ids is not null and not coalesce(p_cancel_open, false) then
        raise exception 'actor "%" has % open ticket(s) (pending or running) and was not removed',
            p_name, cardinality(v_ids)
            using errcode = 'TR008',
            hint = 'Let them finish, or cancel them with the removal: turing actor remove '
            || p_name || ' --cancel-open.';
    end if;
    if v_ids is not null then
        -- why: the one cancel path (cancel_ticket's): history rows, events and counts as for any
        -- cancel; a running attempt's late result is refused by its lease fence.
        select count(*)::integer into v_cancelled
        from turing._retire(
            v_ids, v_tokens,
            array_fill(('cancelled: actor ' || p_name || ' removed')::text,
                array[cardinality(v_ids)]),
            array_fill('cancelled'::text, array[cardinality(v_ids)]),
            array_fill(false, array[cardinality(v_ids)]),
            false
        );
    end if;

    -- why: the names its history shows, and the definition it had (register_actor takes it back)
    insert into turing.removed_actors (
        actor_id, name, kind, model, definition, registered_at, cancelled
    )
    select
        v_actor.actor_id, v_actor.name, v_actor.kind, v_actor.model, d.definition,
        v_actor.created_at, v_cancelled
    from turing.actor_definitions(p_name) as d;

    -- the live state derived from it (dead letters, run times and discovery go by cascade)
    delete from turing.throughput_hourly as t where t.actor_id = v_actor.actor_id;
    delete from turing.metrics_daily as m where m.actor_id = v_actor.actor_id;
    delete from turing.subjects_done as s where s.actor_id = v_actor.actor_id;
    -- why: its SQL wrappers belong to its run_as role; the schema's owner may drop them.
    for v_wrapper in
        select p.oid::regprocedure from pg_catalog.pg_proc as p
        where p.pronamespace = 'turing_actor'::regnamespace
            and p.proname like 'a' || v_actor.actor_id || '\_%'
    loop
        execute format('drop function %s', v_wrapper);
    end loop;
    delete from turing.actors as a where a.actor_id = v_actor.actor_id;

    -- what the removal leaves unread: statuses upstream actors write that nobody reads now
    select coalesce(jsonb_agg(jsonb_build_object('actor', u.actor, 'status', u.status)
        order by u.actor, u.status), '[]')
    into v_unwired
    from turing.v_unwired_outboxes as u
    where u.status = any(v_actor.inbox);

    return jsonb_build_object(
        'actor', v_actor.name,
        'actor_id', v_actor.actor_id,
        'cancelled', v_cancelled,
        'history', (
            select coalesce(sum(c.n), 0)::bigint from turing.ticket_counts as c
            where c.actor_id = v_actor.actor_id
        ),
        'unwired', v_unwired
    );
end;
$$;

comment on function turing.remove_actor(text, boolean) is
'Remove an actor (`turing actor remove NAME`). Refuses with TR008 while it has open tickets '
'(pending or running), naming how many, unless p_cancel_open: then they are cancelled first '
'through the cancel path (history rows, events; a running attempt''s result is discarded by its '
'fence). The actor leaves turing.actors, and with it every live view, claim, discovery, alert, '
'check and graph; its wrappers in turing_actor are dropped, its dead letters, run times, '
'roll-ups, metrics and done markers deleted. Its finished tickets stay in ticket_history under '
'its actor_id and keep showing its name in turing.tickets (turing.removed_actors keeps the name '
'and the last definition); retention prunes them as any history. The name is free at once: '
'registering it again makes a new actor (new actor_id, fresh history and discovery). Returns '
'{"actor", "actor_id", "cancelled", "history": finished tickets kept, "unwired": outbox '
'statuses of other actors that nobody reads now}. TR002 for an unknown actor.';
