-- 0005: back to btrees for the history lookups that 0004 moved to BRIN. A BRIN index only works
-- while the physical order follows the column; retention deletes old rows and autovacuum hands
-- their space to new ones, so block ranges soon span every date and every chain. Measured on a
-- 10 M-row history (bench/run.py, section 4): a chain lookup took 2.5 s and the dead letters 1 s
-- through BRIN. Two btree inserts per completion are the price of views that stay fast.

drop index if exists turing.ticket_history_finished_brin;
drop index if exists turing.ticket_history_chain_brin;
-- why: retention (prune_history) and the dead letters find rows of one status by age.
create index if not exists ticket_history_status_finished
on turing.ticket_history (status, finished_at);
-- why: a chain's attempts (turing tickets --chain, loop checks) in a few index reads.
create index if not exists ticket_history_chain on turing.ticket_history (chain_id);

-- why: the per-actor time window (dashboard, hourly throughput, failure spikes) counts rows by
-- status; with status in the index those counts are index-only scans of the window.
create index if not exists ticket_history_actor_finished_status
on turing.ticket_history (actor_id, finished_at) include (status);
drop index if exists turing.ticket_history_actor_finished;
