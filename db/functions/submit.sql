-- submit: ask an actor to work on a subject now, starting a new chain.
create or replace function turing.submit(
    p_actor text,
    p_subject_id text,
    p_input jsonb default '{}',
    p_priority integer default null,
    p_run_after timestamptz default null
)
returns bigint
language sql
security definer
set search_path = ''
as $$
    select turing._create_ticket(p_actor, p_subject_id, p_input, p_priority, 'submit', null, p_run_after);
$$;

comment on function turing.submit(text, text, jsonb, integer, timestamptz) is
'Create a pending ticket for actor + subject outside its work_query, as the root of a new chain '
'(chain_id = the new ticket id). Returns the ticket id. Errors: TR002 unknown actor, TR006 an '
'open ticket already exists for that actor and subject.';
