-- 0010: ticket_open.actor_id and chain_steps.actor_id lose their foreign keys, as
-- ticket_history's did in 0009. Each key was checked by a row trigger (a lookup and a row lock
-- on the actor) for every ticket created: about a third of a 100,000-subject submit_many. The
-- functions that create tickets (_create_ticket, _discover, submit_many) read the actor row
-- FOR KEY SHARE once per statement instead, which is what the key did per row: a concurrent
-- delete of that actor waits for them. What the keys also did, refuse to delete an actor that
-- has tickets, the trigger actors__10_keep_history does now, on the rare path
-- (db/triggers/actors__10_keep_history.sql).
alter table turing.ticket_open drop constraint ticket_open_actor_id_fkey;
alter table turing.chain_steps drop constraint chain_steps_actor_id_fkey;
