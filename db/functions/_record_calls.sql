-- _record_calls: keep the call records of attempts that just ended (complete_batch,
-- fail_batch), in their transaction: each distinct prompt text once in turing.prompts, one row
-- per attempt in turing.calls.
create or replace function turing._record_calls(p_calls jsonb, p_ticket_ids bigint[])
returns void
language plpgsql
set search_path = ''
as $$
begin
    if p_calls is null or jsonb_typeof(p_calls) <> 'array' or jsonb_array_length(p_calls) = 0
        or cardinality(p_ticket_ids) is not distinct from 0 then
        return;
    end if;
    -- why: only attempts this transaction ended (fenced by their tokens) get a record: the
    -- late answer of a reaped attempt is discarded, its call with it (invariant 4).
    with c as (
        select r.*, o.actor_id
        from jsonb_to_recordset(p_calls) as r (
            ticket_id bigint, model text, options jsonb, system text, prompt text,
            answer text, output jsonb, load_duration bigint, prompt_eval_count integer,
            prompt_eval_duration bigint, eval_count integer, eval_duration bigint,
            total_duration bigint
        )
        inner join turing.ticket_history as o on o.ticket_id = r.ticket_id
        where r.ticket_id = any(p_ticket_ids) and r.prompt is not null
    ),
    texts as (
        select distinct on (pg_catalog.sha256(pg_catalog.convert_to(t.text, 'UTF8')))
            pg_catalog.sha256(pg_catalog.convert_to(t.text, 'UTF8')) as sha256, t.text
        from c
        cross join lateral (values (c.system), (c.prompt)) as t (text)
        where t.text is not null
    ),
    -- why: do update, not do nothing: it locks the prompt row, so a prune_history deleting it
    -- as unused waits for this transaction and then sees the new last_used_at (it deletes
    -- only prompts unused for the whole retention) instead of deleting a prompt in use.
    p as (
        insert into turing.prompts as p (sha256, text)
        select x.sha256, x.text from texts as x
        on conflict (sha256) do update set last_used_at = excluded.last_used_at
        returning p.prompt_id, p.sha256
    )
    insert into turing.calls (
        ticket_id, actor_id, model, options, system_prompt_id, prompt_id, answer, output,
        load_duration, prompt_eval_count, prompt_eval_duration, eval_count, eval_duration,
        total_duration
    )
    select
        c.ticket_id, c.actor_id, c.model, coalesce(c.options, '{}'::jsonb), s.prompt_id,
        u.prompt_id, c.answer, c.output, c.load_duration, c.prompt_eval_count,
        c.prompt_eval_duration, c.eval_count, c.eval_duration, c.total_duration
    from c
    inner join p as u on u.sha256 = pg_catalog.sha256(pg_catalog.convert_to(c.prompt, 'UTF8'))
    left join p as s on s.sha256 = pg_catalog.sha256(pg_catalog.convert_to(c.system, 'UTF8'))
    on conflict (ticket_id) do nothing;
end;
$$;

comment on function turing._record_calls(jsonb, bigint[]) is
'Internal: record the calls of attempts that this transaction ended. p_calls is a JSON array '
'of {ticket_id, model, options, system, prompt, answer, output, load_duration, '
'prompt_eval_count, prompt_eval_duration, eval_count, eval_duration, total_duration}; entries '
'whose ticket is not in p_ticket_ids (the attempts accepted) or without a prompt are ignored. '
'Each distinct prompt text is stored once in turing.prompts (by SHA-256).';
