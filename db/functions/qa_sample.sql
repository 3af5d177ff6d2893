-- qa_sample: a random sample of completed tickets of an actor's current version that nobody
-- has reviewed yet, with what a person needs to judge them (`turing qa`).
create or replace function turing.qa_sample(p_actor text, p_n integer)
returns table (
    ticket_id bigint, version integer, subject_id text, input jsonb, output jsonb,
    prompt_template text, system_prompt text
)
language plpgsql
stable
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_actor turing.actors;
begin
    select a.* into v_actor from turing.actors as a
    where a.actor_id = turing._actor_id(p_actor);
    if p_n is null or p_n < 1 or p_n > 10000 then
        raise exception 'qa_sample: the sample must be between 1 and 10000, got %', p_n
            using errcode = 'TR012';
    end if;
    return query
    select h.ticket_id, h.actor_version, h.subject_id, h.input, h.output,
        v.definition ->> 'prompt_template', v.definition ->> 'system_prompt'
    from turing.ticket_history as h
    inner join turing.actor_versions as v
        on v.actor_id = h.actor_id and v.version = h.actor_version
    where h.actor_id = v_actor.actor_id
        and h.actor_version = v_actor.version
        and h.status = 'completed'
        and not exists (select from turing.qa_reviews as r where r.ticket_id = h.ticket_id)
    order by random()
    limit p_n;
end;
$$;

comment on function turing.qa_sample(text, integer) is
'Up to p_n completed tickets of the current version of actor p_actor (raq tickets included: '
'they are answers of the version too) not reviewed yet, at random, with the input, the output '
'and the version''s prompt_template and system_prompt. Raises TR002 for an unknown actor.';
