-- actor_definitions: every actor's full definition as JSON, for `turing actor show` and export.
create or replace function turing.actor_definitions(p_actor text default null)
returns table (name text, definition jsonb)
language sql
stable
security definer
set search_path = ''
as $$
    select a.name, to_jsonb(a) - 'actor_id'
    from turing.actors as a
    where p_actor is null or a.name = p_actor
    order by a.name;
$$;

comment on function turing.actor_definitions(text) is
'The definition of one actor (or all) as JSON with the same keys register_actor and set_actor '
'take; `turing actor show NAME` prints it.';
