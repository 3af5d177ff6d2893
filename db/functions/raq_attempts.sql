-- raq_attempts: the last attempt of each (input, run) of a raq run, for the agreement
-- `turing raq` computes, and whether any is still open.
create or replace function turing.raq_attempts(p_raq_run_id bigint)
returns table (
    item integer, rep integer, subject_id text, status text, output jsonb,
    latency_ms double precision, open boolean
)
language sql
stable
security definer
set search_path = ''
as $$
    select
        split_part(t.subject_id, ':', 4)::integer, split_part(t.subject_id, ':', 3)::integer,
        s.subject_id, t.status, t.output, t.latency_ms, t.open
    from (
        select distinct on (u.subject_id) u.*
        from (
            select o.subject_id, o.status, null::jsonb as output, null::double precision
                as latency_ms, true as open, o.attempt, o.actor_id
            from turing.ticket_open as o
            where o.raq_run_id = p_raq_run_id
            union all
            select h.subject_id, h.status, h.output,
                extract(epoch from h.finished_at - h.started_at) * 1000, false, h.attempt,
                h.actor_id
            from turing.ticket_history as h
            where h.raq_run_id = p_raq_run_id
        ) as u
        order by u.subject_id, u.open desc, u.attempt desc
    ) as t
    inner join turing.raq_runs as r on r.raq_run_id = p_raq_run_id
    inner join turing.raq_samples as s
        on s.actor_id = r.actor_id and s.item = split_part(t.subject_id, ':', 4)::integer
    order by 1, 2;
$$;

comment on function turing.raq_attempts(bigint) is
'The attempts of raq run p_raq_run_id: per input (item in the sample, its subject) and run '
'(rep), the latest attempt''s status, output and latency (started to finished); open = still '
'pending or running (a retry included).';
