-- v_pipeline_edges: the pipeline as a graph of statuses between actors, for `turing graph`.
create view turing.v_pipeline_edges as
select
    w.name as from_actor,
    r.name as to_actor,
    o.status,
    'flow' as edge_kind
from turing.actors as w
cross join lateral unnest(w.outbox) as o (status)
inner join turing.actors as r on o.status = any(r.inbox)
union all
select
    null as from_actor,
    r.name as to_actor,
    i.status,
    'source' as edge_kind
from turing.actors as r
cross join lateral unnest(r.inbox) as i (status)
where not exists (select from turing.actors as w where i.status = any(w.outbox))
union all
select
    w.name as from_actor,
    null as to_actor,
    o.status,
    'final' as edge_kind
from turing.actors as w
cross join lateral unnest(w.final_outbox) as o (status)
where o.status = any(w.outbox)
union all
-- why: the rule of what is unwired lives in one view; the graph draws what it says.
select
    u.actor as from_actor,
    null as to_actor,
    u.status,
    'unwired' as edge_kind
from turing.v_unwired_outboxes as u;

comment on view turing.v_pipeline_edges is
'The pipeline as edges: flow (an actor''s outbox status is another actor''s inbox; drawn to '
'disabled actors too), source (an inbox status no actor writes: fed from outside), final (an '
'outbox status declared final) and unwired (turing.v_unwired_outboxes: nothing enabled reads '
'it). Used by `turing graph`.';
