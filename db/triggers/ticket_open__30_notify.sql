-- ticket_open__30_notify: wake idle runners when claimable work appears. A hint only: runners
-- also poll, so a lost notification delays work by one poll interval, never loses it.
create or replace function turing._ticket_open_notify()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    v_model text;
begin
    for v_model in select distinct r.model from new_rows as r where r.status = 'pending' loop
        perform pg_catalog.pg_notify('turing_work', v_model);
    end loop;
    return null;
end;
$$;

comment on function turing._ticket_open_notify() is
'Statement trigger: NOTIFY turing_work with the model name once per model that got pending '
'tickets (new work, a retry, or a released claim). Runners LISTEN on turing_work.';

drop trigger if exists ticket_open__30_notify_ins on turing.ticket_open;
create trigger ticket_open__30_notify_ins
after insert on turing.ticket_open
referencing new table as new_rows
for each statement execute function turing._ticket_open_notify();

drop trigger if exists ticket_open__30_notify_upd on turing.ticket_open;
create trigger ticket_open__30_notify_upd
after update on turing.ticket_open
referencing new table as new_rows
for each statement execute function turing._ticket_open_notify();
