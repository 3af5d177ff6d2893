-- 0012: ticket_counts slots are no longer backend pid % 16, which two backends could share (and
-- then deadlock on, their statements changing the same counter rows in different orders).
-- A transaction now takes a slot no open transaction holds (turing._counts_slot), and
-- turing.compact_counts() folds the slots into a base row per actor and status (slot -1). The
-- table is unchanged; rows written under the old scheme are summed and folded like any slot.
comment on table turing.ticket_counts is
'Trigger-kept ticket counts per actor and status. Each transaction adds its changes to a slot '
'that no other open transaction holds (turing._counts_slot), so writers never wait on or '
'deadlock over counter rows; compact_counts() (from tick) folds the slots into one base row '
'per actor and status. sum(n) over the rows of an actor and status equals count(*) of '
'turing.tickets for them at every committed moment. Read through turing.v_counts.';
comment on column turing.ticket_counts.slot is
'-1: the base row, written only by compact_counts(); 0 and up: a slot held by one open '
'transaction at a time (advisory lock 7246/slot), free again when it ends.';
