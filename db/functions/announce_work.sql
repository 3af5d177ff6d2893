-- announce_work: a trigger function for domain tables, so a runner wakes up as soon as rows
-- enter an actor's inbox instead of at its next poll.
create or replace function turing.announce_work()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_model text;
begin
    -- why: clearing `exhausted` lets the next claim re-run the work_query at once instead of
    -- waiting out discover_interval; the NOTIFY wakes the runners of the actors' models.
    update turing.actor_discovery as d set exhausted = false
    from turing.actors as a
    where a.actor_id = d.actor_id and a.name = any(tg_argv) and d.exhausted;
    for v_model in
        select distinct a.model from turing.actors as a where a.name = any(tg_argv) and a.enabled
    loop
        perform pg_catalog.pg_notify('turing_work', v_model);
    end loop;
    return null;
end;
$$;

comment on function turing.announce_work() is
'Trigger function for domain tables: `create trigger t after insert or update on my_table for '
'each statement execute function turing.announce_work(''actor_a'', ''actor_b'')`. Marks those '
'actors'' inboxes as worth re-querying now and NOTIFYs turing_work with their models, so idle '
'runners claim new domain rows within milliseconds. A hint only: runners also poll.';
