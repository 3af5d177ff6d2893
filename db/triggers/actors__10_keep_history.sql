-- actors__10_keep_history: an actor with open tickets cannot be deleted, and one with finished
-- tickets or chain steps only through remove_actor, which keeps its name for them in
-- removed_actors; so no ticket ever names an actor that is gone (what the foreign keys of
-- ticket_history, ticket_open and chain_steps did, minus their cost on every ticket created
-- and finished; see migrations 0009, 0010 and 0022).
create or replace function turing._actors_keep_history()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    -- why: the functions that create tickets hold the actor row FOR KEY SHARE until they
    -- commit, so this delete (which locks the row FOR UPDATE first) waited for them, and these
    -- checks, each with a fresh snapshot, see the tickets they made.
    if exists (select from turing.ticket_open as o where o.actor_id = old.actor_id) then
        raise exception 'actor "%" has open tickets and cannot be deleted', old.name
            using errcode = 'TR008',
            hint = 'Remove it with turing actor remove ' || old.name || ' --cancel-open, or '
            'disable it (turing actor disable).';
    end if;
    if not exists (select from turing.removed_actors as r where r.actor_id = old.actor_id)
        and (
            exists (select from turing.ticket_history as h where h.actor_id = old.actor_id)
            or exists (select from turing.chain_steps as c where c.actor_id = old.actor_id)
        ) then
        raise exception 'actor "%" has finished tickets and cannot be deleted', old.name
            using errcode = 'TR008',
            hint = 'Remove it with turing actor remove ' || old.name
            || ' (its history stays readable), or disable it (turing actor disable).';
    end if;
    return old;
end;
$$;

comment on function turing._actors_keep_history() is
'Trigger: refuses to delete an actor that has open tickets, and one that has chain steps or '
'rows in ticket_history unless remove_actor recorded it in removed_actors first (every ticket '
'and the audit log keep naming their actor); it stands in for the foreign keys that '
'migrations 0009 and 0010 dropped from the hot tables.';

drop trigger if exists actors__10_keep_history on turing.actors;
create trigger actors__10_keep_history
before delete on turing.actors
for each row execute function turing._actors_keep_history();
