-- v_unwired_outboxes: the one wiring rule. An outbox status is unwired when its actor is
-- enabled, the status is not declared final, and no enabled actor reads it: results written
-- there pile up unseen (the "4,500 results never saved" pain). `turing check`, v_alerts and
-- v_pipeline_edges (so `turing graph`) all read this view.
create view turing.v_unwired_outboxes as
select
    w.actor_id,
    w.name as actor,
    o.status
from turing.actors as w
cross join lateral unnest(w.outbox) as o (status)
where
    w.enabled
    and not o.status = any(w.final_outbox)
    -- why: a disabled reader consumes nothing, so it does not wire the status.
    and not exists (
        select from turing.actors as r
        where r.enabled and o.status = any(r.inbox)
    );

comment on view turing.v_unwired_outboxes is
'Outbox statuses of enabled actors that no enabled actor has in its inbox and that are not '
'declared in final_outbox: results written there pile up unseen. The one wiring rule: '
'check_pipeline (error unwired_outbox), v_alerts (alert unwired_outbox) and v_pipeline_edges '
'(edge_kind unwired) read it.';
