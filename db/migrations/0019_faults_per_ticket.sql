-- 0019: a ticket counts the infrastructure faults it met, so one whose own input keeps
-- crashing the model server cannot come back uncharged for ever (and hold its model's breaker
-- open): after settings.fault_charge_after faults on the same ticket, return_tickets charges an
-- attempt. return_tickets gains p_fault and reports each ticket's outcome; its 4-argument form
-- came with 0011 and was never released, so it is dropped here.
alter table turing.ticket_open add column faults smallint not null default 0;
comment on column turing.ticket_open.faults is
'Infrastructure faults this attempt met (the model server refused, crashed or was busy past its '
'retries) while the ticket went back uncharged; at settings.fault_charge_after the next one is '
'charged as a failed attempt instead (its input may be the cause). A retry starts at 0.';

insert into turing.settings (key, value, description) values (
    'fault_charge_after', '3',
    'Faults on the same ticket after which return_tickets charges an attempt instead of giving it '
    'back uncharged (a ticket whose input crashes the model server must not loop).'
)
on conflict (key) do nothing;

drop function if exists turing.return_tickets(text, bigint[], uuid[], text);
