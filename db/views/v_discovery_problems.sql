-- v_discovery_problems: the one rule for what discovery could not do, per enabled actor. The
-- alerts (v_alerts), `turing check` (check_pipeline) and `turing status` all read this view.
create view turing.v_discovery_problems as
select
    a.actor_id,
    a.name as actor,
    p.problem,
    p.severity,
    p.message,
    d.last_run_at
from turing.actor_discovery as d
inner join turing.actors as a on d.actor_id = a.actor_id
-- why: a lateral list of the three rules, one row per problem found; a CTE cannot see d and a.
cross join
    lateral (  -- noqa: ST05
        -- a work_query that fails (or ran past its time budget): no subject of it is ticketed
        select
            'discover_failed' as problem,
            'error' as severity,
            format(
                'work_query failed at %s: %s; no new tickets until it works again',
                d.last_run_at, d.last_error
            ) as message
        where d.last_error is not null
        union all
        -- rows that cannot become tickets; the other subjects flow
        select
            'subjects_rejected' as problem,
            'warning' as severity,
            format(
                'work_query returns %s row(s) that cannot be tickets (%s), e.g. %s; the other '
                'subjects flow. Fix the query or the data.',
                d.last_rejected ->> 'count', d.last_rejected -> 'reasons',
                d.last_rejected -> 'examples'
            ) as message
        where d.last_rejected is not null
        union all
        -- finished subjects the work_query keeps returning: an outbox that is never written
        select
            'outbox_not_written' as problem,
            'warning' as severity,
            format(
                'work_query still returns %s subject(s) it already finished: its on_complete does '
                'not move them out of the inbox. They are not run again; fix on_complete, or run '
                'them again on purpose with `turing rerun %s --all`.',
                d.last_returned_done, a.name
            ) as message
        where d.last_returned_done > 0
    ) as p
where a.enabled;

comment on view turing.v_discovery_problems is
'What the last discovery of each enabled actor could not do: discover_failed (the work_query '
'raised or ran past the runner''s --discover-timeout; nothing of it is ticketed until it works), '
'subjects_rejected (rows that cannot be tickets: NULL, empty or over 1024-byte subject ids, '
'each left out alone), outbox_not_written (finished subjects the work_query keeps returning). '
'Read by v_alerts, check_pipeline() (`turing check`) and so `turing status`.';
