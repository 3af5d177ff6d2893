-- check_pipeline: static checks of how actors are wired, what `turing check` prints.
create or replace function turing.check_pipeline(p_large_table_rows bigint default 10000)
returns table (severity text, check_name text, actor text, message text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_actor record;
    v_plan jsonb;
    v_node record;
    v_exists boolean;
begin
    -- outboxes that nothing reads (the one rule, v_unwired_outboxes)
    return query
    select 'error', 'unwired_outbox', u.actor,
        format('writes status %s but no enabled actor reads it; results pile up unseen. Add an '
               'actor with %s in its inbox, or list it in final_outbox.', u.status, u.status)
    from turing.v_unwired_outboxes as u
    order by u.actor, u.status;

    -- what the last discovery could not do (the one rule, v_discovery_problems)
    return query
    select p.severity, p.problem, p.actor, p.message
    from turing.v_discovery_problems as p
    order by p.actor, p.problem;

    -- inboxes no actor writes: fed from outside, or a dead end upstream
    return query
    select 'info', 'unfed_inbox', a.name,
        format('reads status %s that no actor writes: it must be fed from outside (ingestion, '
               'submit, the pgmq inbox)', i.status)
    from turing.actors as a
    cross join lateral unnest(a.inbox) as i (status)
    where a.enabled
        and not exists (select from turing.actors as w where w.enabled and i.status = any(w.outbox))
    order by a.name, i.status;

    -- an actor without a declared inbox or outbox cannot be checked
    return query
    select 'warning', 'undeclared_wiring', a.name,
        'declares no inbox or no outbox: `turing check` and `turing graph` cannot see where its '
        'work comes from or goes'
    from turing.actors as a
    where a.enabled and (cardinality(a.inbox) = 0 or cardinality(a.outbox) = 0)
    order by a.name;

    for v_actor in
        select a.actor_id, a.name, a.enabled, a.work_query from turing.actors as a order by a.name
    loop
        -- a disabled actor with work waiting
        if not v_actor.enabled then
            v_exists := exists (
                select from turing.ticket_open as o where o.actor_id = v_actor.actor_id
            );
            if not v_exists and v_actor.work_query is not null then
                begin
                    -- why: as the actor's run_as role, through its wrapper (invariant 14)
                    execute format(
                        'select exists (select from (select %s() as w offset 0) as r)',
                        turing._actor_sql(v_actor.actor_id, 'work')
                    ) into v_exists;
                    perform turing._actor_sql(v_actor.actor_id, 'work');
                exception when others then
                    v_exists := false;
                end;
            end if;
            if v_exists then
                severity := 'warning'; check_name := 'disabled_with_work'; actor := v_actor.name;
                message := 'is disabled but has work waiting (open tickets or subjects in its '
                    'inbox); enable it with `turing actor enable ' || v_actor.name || '`';
                return next;
            end if;
        end if;
        -- a work_query that scans a large table sequentially
        if v_actor.work_query is not null then
            begin
                execute format('select %s()', turing._actor_sql(v_actor.actor_id, 'plan'))
                into v_plan;
                perform turing._actor_sql(v_actor.actor_id, 'plan');
            exception when others then
                severity := 'error'; check_name := 'work_query_fails'; actor := v_actor.name;
                message := 'work_query does not plan any more: ' || sqlerrm;
                return next;
                continue;
            end;
            for v_node in
                select distinct n ->> 'Relation Name' as rel, n ->> 'Schema' as sch
                from jsonb_path_query(v_plan, 'strict $.**') as n
                where jsonb_typeof(n) = 'object' and n ->> 'Node Type' = 'Seq Scan'
            loop
                if coalesce((
                    select c.reltuples from pg_catalog.pg_class as c
                    where c.relname = v_node.rel
                        and c.relnamespace = coalesce(v_node.sch, 'public')::regnamespace
                ), 0) >= p_large_table_rows then
                    severity := 'warning'; check_name := 'seq_scan'; actor := v_actor.name;
                    message := format(
                        'work_query scans table %s sequentially (%s rows or more); add an index '
                        '(a partial index on the inbox status is ideal)',
                        v_node.rel, p_large_table_rows
                    );
                    return next;
                end if;
            end loop;
        end if;
    end loop;
end;
$$;

comment on function turing.check_pipeline(bigint) is
'Static checks of the pipeline wiring, for `turing check`: unwired outboxes (error), what the '
'last discovery could not do (v_discovery_problems: a failing work_query is an error, rejected '
'rows and finished subjects still returned are warnings), inboxes no actor writes (info: fed '
'from outside), actors without declared inbox/outbox, disabled actors '
'with work waiting, work_queries that no longer plan, and work_queries whose plan is a '
'sequential scan of a table with at least p_large_table_rows rows. Work_queries are run and '
'planned as each actor''s run_as role.';
