-- rerun: run an actor again on purpose on subjects it already finished: discovery never does
-- (an on_complete that forgets to move its subject must not loop the GPU), so a person asks.
create or replace function turing.rerun(p_actor text, p_subject_id text default null)
returns table (subject_id text, ticket_id bigint)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_actor turing.actors%rowtype;
    v_subject text;
    v_input jsonb;
    v_found boolean := false;
begin
    v_actor := turing._actor_for_tickets(p_actor);
    if v_actor.work_query is null then
        raise exception 'actor "%" has no work_query, so there is nothing to run again from',
            p_actor
            using errcode = 'TR012', hint = 'Use `turing submit ACTOR SUBJECT --input ...`.';
    end if;
    -- why: the input comes from the work_query as discovery would build it, so the rerun sees
    -- the same columns; a subject it no longer returns has left the inbox.
    for v_subject, v_input in execute format(
        $q$
        select w.subject_id, w.input
        from (
            select (r.w).subject_id as subject_id, (r.w).input as input
            from (select %s() as w offset 0) as r
        ) as w
        where ($2::text is null or w.subject_id = $2)
            and not exists (
                select from turing.ticket_open as x
                where x.actor_id = $1 and x.subject_id = w.subject_id
            )
            and (
                $2::text is not null
                or exists (
                    select from turing.ticket_history as h
                    where h.actor_id = $1 and h.subject_id = w.subject_id
                        and h.status in ('completed', 'cancelled')
                )
                or exists (
                    select from turing.subjects_done as s
                    where s.actor_id = $1 and s.subject_id = w.subject_id
                )
            )
        $q$,
        -- why: the work_query runs as the actor's run_as role (invariant 14); the wrapper is
        -- checked again before returning, so one altered meanwhile rolls the rerun back.
        turing._actor_sql(v_actor.actor_id, 'work')
    ) using v_actor.actor_id, p_subject_id
    loop
        v_found := true;
        delete from turing.subjects_done as s
        where s.actor_id = v_actor.actor_id and s.subject_id = v_subject;
        subject_id := v_subject;
        ticket_id := turing._create_ticket(p_actor, v_subject, v_input, null, 'rerun', null);
        return next;
    end loop;
    perform turing._actor_sql(v_actor.actor_id, 'work');
    if p_subject_id is not null and not v_found then
        if exists (
            select from turing.ticket_open as x
            where x.actor_id = v_actor.actor_id and x.subject_id = p_subject_id
        ) then
            raise exception 'actor "%" already has an open ticket for subject %', p_actor,
                p_subject_id
                using errcode = 'TR006', hint = 'It is running or waiting already.';
        end if;
        raise exception 'subject % is not in the inbox of actor "%" (its work_query does not return it)',
            p_subject_id, p_actor
            using errcode = 'TR010',
            hint = 'Put the domain row back in the inbox status first, or use `turing submit`.';
    end if;
end;
$$;

comment on function turing.rerun(text, text) is
'Run an actor again on purpose: for p_subject_id, or (NULL) every subject its work_query returns '
'that it already finished (completed or cancelled, also after retention pruned the history). '
'Each becomes a pending ticket (source rerun) with the input the work_query gives now. Raises '
'TR010 when the work_query does not return the subject (reset the domain status first), TR006 '
'when it has an open ticket. Returns the subjects and their new tickets. The work_query runs '
'as the actor''s run_as role.';
