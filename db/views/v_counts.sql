-- v_counts: ticket counts per actor and status in O(actors), from the trigger-kept slots.
create view turing.v_counts as
select
    a.name as actor,
    a.model,
    c.status,
    sum(c.n)::bigint as n
from turing.ticket_counts as c
inner join turing.actors as a on c.actor_id = a.actor_id
group by a.name, a.model, c.status
having sum(c.n) <> 0;

comment on view turing.v_counts is
'Tickets per actor and status (pending, running, completed, failed, timed_out, cancelled, '
'dead), summed from the trigger-kept ticket_counts; equals count(*) of turing.tickets without '
'scanning it.';
