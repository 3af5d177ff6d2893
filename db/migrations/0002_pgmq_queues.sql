-- 0002_pgmq_queues: the pgmq queues at the boundary with other systems.
-- PGMQ itself is installed by `turing db up` (SQL-only, from the pgmq package) before this runs.

-- why: events carry every finished ticket, runner start/stop and alerts to any pgmq consumer;
-- the inbox lets any pgmq client, in any language, ask for work.
select pgmq.create('turing_events');
select pgmq.create('turing_inbox');
