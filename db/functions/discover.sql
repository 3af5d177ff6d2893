-- discover: run one actor's work_query now and return how many tickets it created.
create or replace function turing.discover(p_actor text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id integer := turing._actor_id(p_actor);
    v_message text;
    v_state text;
begin
    return turing._discover(v_id);
exception
    when sqlstate 'TR002' then
        raise;
    when others then
        get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
        raise exception 'work_query of actor "%" failed: % (SQLSTATE %)', p_actor, v_message, v_state
            using errcode = 'TR011',
            hint = 'Run the work_query in psql to reproduce; fix it with register_actor().';
end;
$$;

comment on function turing.discover(text) is
'Run the actor''s work_query now (ignoring the discover interval) and create pending tickets '
'for new subjects, up to buffer_size pending. Returns the number created (0 when another '
'discoverer holds the actor). A failing work_query raises TR011 naming the actor; nothing changes.';
