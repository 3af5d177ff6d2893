-- privileges: least privilege for the three roles, re-applied after every upgrade.
-- turing_runner: execute the runner API only (security definer functions); reads nothing.
-- turing_viewer: read the monitoring views and the read-only functions the CLI reads through.
-- turing_admin: register actors, submit work, operate; owns nothing it could break.
-- turing_owner: owns every object (SECURITY DEFINER functions run as it); actors' SQL never does.

-- why: objects are created by whoever runs `db up` (a superuser, or the database's non-superuser
-- owner in production) and handed to turing_owner here, so no function runs with the
-- installer's privileges. ALTER TABLE carries a table's indexes, row type and owned sequences.
do $owner$
declare
    v_object record;
begin
    for v_object in
        select format('alter schema %I owner to turing_owner', n.nspname) as ddl
        from pg_catalog.pg_namespace as n
        where n.nspname in ('turing', 'turing_actor')
            and n.nspowner <> 'turing_owner'::regrole
        union all
        select format(
            'alter %s %s owner to turing_owner',
            case c.relkind when 'v' then 'view' when 'S' then 'sequence' else 'table' end,
            c.oid::regclass
        )
        from pg_catalog.pg_class as c
        where c.relnamespace = 'turing'::regnamespace
            and c.relkind in ('r', 'p', 'v', 'S')
            and c.relowner <> 'turing_owner'::regrole
            and not exists (
                select from pg_catalog.pg_depend as d
                where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')
            )
        union all
        select format('alter routine %s owner to turing_owner', p.oid::regprocedure)
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'turing'::regnamespace
            and p.proowner <> 'turing_owner'::regrole
        union all
        select format(
            'alter %s %s owner to turing_owner',
            case t.typtype when 'd' then 'domain' else 'type' end, t.oid::regtype
        )
        from pg_catalog.pg_type as t
        where t.typnamespace = 'turing'::regnamespace
            and t.typtype in ('d', 'e', 'c')
            and (t.typrelid = 0 or (
                select c.relkind from pg_catalog.pg_class as c where c.oid = t.typrelid
            ) = 'c')
            and t.typowner <> 'turing_owner'::regrole
    loop
        execute v_object.ddl;
    end loop;
end;
$owner$;

-- why: Turing's functions (as turing_owner) send and read events and the inbox through pgmq,
-- which `db up` installed as the installer.
grant usage on schema pgmq to turing_owner;
grant all on all tables in schema pgmq to turing_owner;
grant all on all sequences in schema pgmq to turing_owner;
grant execute on all functions in schema pgmq to turing_owner;

revoke all on all tables in schema turing from public;
revoke all on all sequences in schema turing from public;
revoke all on all functions in schema turing from public;
revoke all on schema turing from public;

grant usage on schema turing to turing_runner, turing_viewer, turing_admin;

grant execute on function
turing.claim_batch(text, text, integer),
turing.claim_batch(text, text, integer, bigint[], integer, boolean, text),
turing.held_back(text, text),
turing.start_tickets(text, bigint[], uuid[], boolean),
turing.report_model_load(text, text, double precision),
turing.return_tickets(text, bigint[], uuid[], text, boolean),
turing.skip_ticket(text, bigint, uuid, interval),
turing.release_unheld(text, text, bigint[]),
turing.top_up(text),
turing.discover_due(text, integer),
turing.report_backend(text, text, text, text, text, text),
turing.maintain(text, interval),
turing.complete_ticket(bigint, uuid, jsonb),
turing.complete_batch(bigint[], uuid[], jsonb[], jsonb),
turing.fail_ticket(bigint, uuid, text, text, boolean),
turing.fail_batch(bigint[], uuid[], text[], text[], boolean[], jsonb),
turing.heartbeat(text, text, bigint[], uuid[]),
turing.register_runner(text, text[], text, integer, integer, jsonb, text),
turing.release_worker(text, text, bigint[], boolean),
turing.reap(text),
turing.compact_counts(),
turing.startup_state(text[]),
turing.model_backlog(text[], text, text),
turing.run_sql_ticket(bigint, uuid)
to turing_runner, turing_admin;

grant select on
turing.tickets, turing.v_counts, turing.v_stuck, turing.v_timeout_recommendations,
turing.actor_timeouts
to turing_viewer, turing_admin;

-- why: submitting work (submit, submit_many, spawn from on_complete) is turing_admin's, granted
-- with every function here; a runner only works what was submitted.
grant execute on all functions in schema turing to turing_admin;
grant select on all tables in schema turing to turing_admin;

grant select on
turing.v_dashboard, turing.v_runners, turing.v_dead_letters, turing.v_failure_rates,
turing.v_throughput_hourly, turing.v_alerts, turing.v_pipeline_edges,
turing.v_unwired_outboxes, turing.v_discovery_problems, turing.actor_fields, turing.actor_kinds,
turing.v_tokens_hourly
to turing_viewer, turing_admin;

-- why: the read commands of the CLI (`turing tickets`, `tickets show`, `actor list|show|history|diff`,
-- `graph`, `check`, `events`, `db status`, `chain`, `metrics`) and `web`'s pages read through
-- these; each only reads, so the viewer may call them.
-- Writes stay with turing_admin: consume_events, compute_metrics, submit, set_actor, …
grant execute on function
turing.find_tickets(text, text, text, bigint, integer),
turing.actor_definitions(text),
turing.startup_state(text[]),
turing.check_pipeline(bigint),
turing.peek_events(bigint, integer),
turing.chain_story(bigint, integer),
turing.recent_reaps(integer, interval),
turing.actor_history(text),
turing.actor_diff(text, integer, integer),
turing.ticket_story(bigint),
turing.model_throughput(integer),
turing.runner_board(),
turing.ticket_page(bigint),
turing.actor_stages(text),
turing.qa_summary(text, integer),
turing.raq_attempts(bigint)
to turing_viewer, turing_admin;

grant select on turing.schema_migrations to turing_viewer, turing_admin;
