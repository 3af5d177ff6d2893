-- spawn: from an on_complete function, hand a subject to another actor in the same chain.
create or replace function turing.spawn(
    p_parent_ticket_id bigint,
    p_actor text,
    p_subject_id text,
    p_input jsonb default '{}',
    p_priority integer default null
)
returns bigint
language sql
security definer
set search_path = ''
as $$
    select turing._create_ticket(p_actor, p_subject_id, p_input, p_priority, 'spawn', p_parent_ticket_id);
$$;

comment on function turing.spawn(bigint, text, text, jsonb, integer) is
'Create a child ticket in the parent''s chain (chain_depth + 1). Refuses, with an error that '
'rolls the caller back: depth > 20 (TR004), a (chain, actor, subject) the chain already '
'visited (TR005), an open ticket for actor + subject (TR006). Returns the ticket id.';
