-- actors__10_keep_history: an actor with finished tickets cannot be deleted, so the history
-- never names an actor that is gone (what ticket_history's foreign key did, minus its cost on
-- every completion; see migration 0009).
create or replace function turing._actors_keep_history()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if exists (select from turing.ticket_history as h where h.actor_id = old.actor_id) then
        raise exception 'actor "%" has finished tickets and cannot be deleted', old.name
            using errcode = 'TR008',
            hint = 'Disable it instead (turing actor disable); its history stays readable.';
    end if;
    return old;
end;
$$;

comment on function turing._actors_keep_history() is
'Trigger: refuses to delete an actor that has rows in ticket_history (the audit log keeps '
'naming its actor).';

drop trigger if exists actors__10_keep_history on turing.actors;
create trigger actors__10_keep_history
before delete on turing.actors
for each row execute function turing._actors_keep_history();
