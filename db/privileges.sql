-- privileges: least privilege for the three roles, re-applied after every upgrade.
-- turing_runner: execute the runner API only (security definer functions); reads nothing.
-- turing_viewer: read the monitoring views and the read-only functions the CLI reads through.
-- turing_admin: register actors, submit work, operate; owns nothing it could break.

revoke all on all tables in schema turing from public;
revoke all on all sequences in schema turing from public;
revoke all on all functions in schema turing from public;
revoke all on schema turing from public;

grant usage on schema turing to turing_runner, turing_viewer, turing_admin;

grant execute on function
turing.claim_batch(text, text, integer),
turing.claim_batch(text, text, integer, bigint[], integer, boolean),
turing.start_tickets(text, bigint[], uuid[], boolean),
turing.report_model_load(text, text, double precision),
turing.return_tickets(text, bigint[], uuid[], text, boolean),
turing.release_unheld(text, bigint[]),
turing.top_up(text),
turing.discover_due(text, integer),
turing.report_backend(text, text, text, text, text, text),
turing.maintain(text, interval),
turing.complete_ticket(bigint, uuid, jsonb),
turing.complete_batch(bigint[], uuid[], jsonb[]),
turing.fail_ticket(bigint, uuid, text, text, boolean),
turing.fail_batch(bigint[], uuid[], text[], text[], boolean[]),
turing.heartbeat(text, bigint[], uuid[]),
turing.register_runner(text, text[], text, integer, integer, jsonb),
turing.release_worker(text, bigint[], boolean),
turing.reap(text),
turing.compact_counts(),
turing.startup_state(text[]),
turing.model_backlog(text[], text),
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
turing.v_unwired_outboxes, turing.v_discovery_problems, turing.actor_fields, turing.actor_kinds
to turing_viewer, turing_admin;

-- why: the read commands of the CLI (`turing tickets`, `actor list|show`, `graph`, `check`,
-- `events`, `db status`) read through these; each only reads, so the viewer may call them.
-- Writes stay with turing_admin: consume_events, compute_metrics, submit, set_actor, …
grant execute on function
turing.find_tickets(text, text, text, bigint, integer),
turing.actor_definitions(text),
turing.startup_state(text[]),
turing.check_pipeline(bigint),
turing.peek_events(bigint, integer)
to turing_viewer, turing_admin;

grant select on turing.schema_migrations to turing_viewer, turing_admin;
