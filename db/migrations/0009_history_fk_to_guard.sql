-- 0009: ticket_history.actor_id loses its foreign key. The key was checked by a row trigger
-- (a lookup and a row lock on the actor) for every finished ticket, on the completion path,
-- while the value is copied from ticket_open, whose own key already checked it. What the key
-- also did, refuse to delete an actor that has history, the trigger actors__10_keep_history
-- does now, on the rare path (db/triggers/actors__10_keep_history.sql).
alter table turing.ticket_history drop constraint ticket_history_actor_id_fkey;
