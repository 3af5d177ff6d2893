-- finish_raq: store the figures of a raq run whose tickets are all finished, and whether it
-- passes its threshold.
create or replace function turing.finish_raq(p_raq_run_id bigint, p_fields jsonb)
returns table (
    raq_run_id bigint, agreement double precision, failure_rate double precision,
    p50_ms double precision, p95_ms double precision, passed boolean
)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
    perform from turing.raq_runs as r where r.raq_run_id = p_raq_run_id for update;
    if not found then
        raise exception 'unknown raq run %', p_raq_run_id using errcode = 'TR010';
    end if;
    if exists (select from turing.raq_attempts(p_raq_run_id) as a where a.open) then
        raise exception 'raq run % still has open tickets', p_raq_run_id
            using errcode = 'TR015', hint = 'Wait for the runners to finish them.';
    end if;
    delete from turing.raq_fields as f where f.raq_run_id = p_raq_run_id;
    insert into turing.raq_fields (raq_run_id, field, compared_as, agreement)
    select p_raq_run_id, e ->> 'field', e ->> 'compared_as', (e ->> 'agreement')::float8
    from jsonb_array_elements(coalesce(p_fields, '[]')) as e;
    update turing.raq_runs as r
    set finished_at = clock_timestamp(),
        failure_rate = f.failure_rate,
        p50_ms = f.p50,
        p95_ms = f.p95,
        -- why: the strictest field decides; a run with no field to compare (every attempt
        -- failed) agrees on nothing.
        agreement = coalesce(
            (select min(x.agreement) from turing.raq_fields as x
            where x.raq_run_id = p_raq_run_id),
            case when f.failure_rate < 1 then 1 else 0 end
        )
    from (
        select
            avg((a.status <> 'completed')::integer)::float8 as failure_rate,
            percentile_cont(0.5) within group (order by a.latency_ms)
                filter (where a.status = 'completed') as p50,
            percentile_cont(0.95) within group (order by a.latency_ms)
                filter (where a.status = 'completed') as p95
        from turing.raq_attempts(p_raq_run_id) as a
    ) as f
    where r.raq_run_id = p_raq_run_id;
    -- why: an answer that failed cannot agree: the share answered must clear the bar too.
    update turing.raq_runs as r
    set passed = r.agreement >= r.threshold and 1 - r.failure_rate >= r.threshold
    where r.raq_run_id = p_raq_run_id;
    return query
    select r.raq_run_id, r.agreement, r.failure_rate, r.p50_ms, r.p95_ms, r.passed
    from turing.raq_runs as r where r.raq_run_id = p_raq_run_id;
end;
$$;

comment on function turing.finish_raq(bigint, jsonb) is
'Store the figures of raq run p_raq_run_id once its tickets are finished: p_fields (a JSON '
'array of {field, compared_as, agreement}, computed by `turing raq`) into raq_fields; '
'agreement = the lowest field agreement; failure_rate = the share of (input, run) whose last '
'attempt did not complete; p50/p95 latency of the completed ones; passed = agreement >= '
'threshold and 1 - failure_rate >= threshold. Raises TR015 while tickets are open.';
