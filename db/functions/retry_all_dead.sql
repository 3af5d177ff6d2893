-- retry_all_dead: retry every unhandled dead letter of one actor (retry_dead for each).
create or replace function turing.retry_all_dead(p_actor text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_ticket bigint;
    v_count integer := 0;
begin
    perform turing._actor_id(p_actor);
    for v_ticket in
        select d.ticket_id from turing.v_dead_letters as d where d.actor = p_actor
        order by d.ticket_id
    loop
        perform turing.retry_dead(v_ticket);
        v_count := v_count + 1;
    end loop;
    return v_count;
end;
$$;

comment on function turing.retry_all_dead(text) is
'Retry every unhandled dead letter of one actor, each as retry_dead does (a new pending ticket, '
'a new chain); returns how many. TR002 for an unknown actor.';
