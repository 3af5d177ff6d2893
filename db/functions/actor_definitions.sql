-- actor_definitions: every actor's definition as JSON, for `turing actor show` and export.
create or replace function turing.actor_definitions(p_actor text default null)
returns table (name text, definition jsonb)
language sql
stable
security definer
set search_path = ''
as $$
    select
        a.name,
        (
            select jsonb_object_agg(f.field, to_jsonb(a) -> f.field)
            from turing.actor_fields as f
        )
    from turing.actors as a
    where p_actor is null or a.name = p_actor
    order by a.name;
$$;

comment on function turing.actor_definitions(text) is
'The definition of one actor (or all) as JSON with exactly the fields of turing.actor_fields, '
'the keys register_actor and set_actor take; register_actor(definition) re-creates the actor. '
'`turing actor show NAME` prints it.';
