-- ticket_history__10_immutable: a finished attempt is the audit log and never changes
-- (invariant 2). Retention may delete rows (prune_history); nothing may update them.
create or replace function turing._ticket_history_immutable()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    raise exception 'finished tickets are immutable: ticket_history cannot be updated'
        using errcode = 'TR008',
        hint = 'To run a subject again, submit a new ticket (turing submit or turing.submit()).';
end;
$$;

comment on function turing._ticket_history_immutable() is
'Trigger: refuses every UPDATE of ticket_history; finished attempts are immutable.';

drop trigger if exists ticket_history__10_immutable on turing.ticket_history;
create trigger ticket_history__10_immutable
before update on turing.ticket_history
for each statement execute function turing._ticket_history_immutable();
