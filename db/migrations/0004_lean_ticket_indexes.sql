-- 0004: fewer, cheaper indexes on the hot path. Every claim, heartbeat and completion paid for
-- indexes that only reap, retention and chain views read; measured on the claim+complete
-- benchmark, each btree on the hot table or the history costs a few percent of throughput.

-- why: reap(), release_worker() and the runner views look at running tickets only (a few per
-- runner), so one small partial index on ticket_id serves them all. Not indexing
-- lease_expires_at keeps heartbeats (which only move the lease) eligible for HOT updates.
drop index if exists turing.ticket_open_running_lease;
drop index if exists turing.ticket_open_worker;
create index ticket_open_running on turing.ticket_open (ticket_id) where status = 'running';

-- why: BRIN, not btree, for the two history lookups that follow insertion order (finished_at
-- grows with time, chain_id with ticket ids): retention finds the old block ranges, chain views
-- find a chain's blocks, and neither costs a btree insert on every completion.
drop index if exists turing.ticket_history_status_finished;
drop index if exists turing.ticket_history_chain;
create index ticket_history_finished_brin on turing.ticket_history using brin (finished_at);
create index ticket_history_chain_brin on turing.ticket_history using brin (chain_id);
