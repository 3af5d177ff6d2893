-- qa_summary: the QA figures of an actor version (the current one by default): what the qa
-- gate reads and `turing qa` prints.
create or replace function turing.qa_summary(p_actor text, p_version integer default null)
returns table (
    actor text,
    version integer,
    reviewed integer,
    right_n integer,
    wrong_n integer,
    unsure_n integer,
    pass_rate double precision,
    wilson_low double precision,
    wilson_high double precision,
    qa_sample integer,
    qa_threshold double precision,
    qa_lower_bound double precision,
    passed boolean
)
language plpgsql
stable
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_actor turing.actors;
    -- the normal quantile of a two-sided 95 % interval
    v_z constant double precision := 1.959963984540054::double precision;
begin
    select a.* into v_actor from turing.actors as a
    where a.actor_id = turing._actor_id(p_actor);
    return query
    with counts as (
        select
            count(*)::integer as reviewed,
            (count(*) filter (where r.verdict = 'right'))::integer as right_n,
            (count(*) filter (where r.verdict = 'wrong'))::integer as wrong_n,
            (count(*) filter (where r.verdict = 'unsure'))::integer as unsure_n
        from turing.qa_reviews as r
        where r.actor_id = v_actor.actor_id
            and r.version = coalesce(p_version, v_actor.version)
    ),
    rate as (
        select
            c.*,
            -- why: null when nothing was decided, so the bounds are null, not a division by 0
            nullif(c.right_n + c.wrong_n, 0)::double precision as n,
            case when c.right_n + c.wrong_n > 0
                then c.right_n::double precision / (c.right_n + c.wrong_n)
            end as p
        from counts as c
    ),
    -- why: the Wilson score interval stays inside 0..1 and is honest at small samples and at
    -- rates near 1, where the normal approximation claims certainty it does not have.
    bounds as (
        select
            r.*,
            (r.p + v_z ^ 2 / (2 * r.n)) / (1 + v_z ^ 2 / r.n) as centre,
            v_z * sqrt(r.p * (1 - r.p) / r.n + v_z ^ 2 / (4 * r.n ^ 2)) / (1 + v_z ^ 2 / r.n)
            as half
        from rate as r
    )
    select
        v_actor.name, coalesce(p_version, v_actor.version), b.reviewed, b.right_n, b.wrong_n,
        b.unsure_n, b.p, greatest(0, b.centre - b.half), least(1, b.centre + b.half),
        v_actor.qa_sample, v_actor.qa_threshold, v_actor.qa_lower_bound,
        coalesce(
            b.n >= v_actor.qa_sample and b.p >= v_actor.qa_threshold
            and b.centre - b.half >= v_actor.qa_lower_bound, false
        )
    from bounds as b;
end;
$$;

comment on function turing.qa_summary(text, integer) is
'The QA figures of a version of an actor (the current one when p_version is null): reviews, '
'right, wrong, unsure; pass_rate = right / (right + wrong) (unsure counts for neither); its '
'Wilson 95 % interval; and passed: at least qa_sample decided reviews, pass_rate >= '
'qa_threshold and wilson_low >= qa_lower_bound (what the qa gate asks). Raises TR002 for an '
'unknown actor.';
