-- 0003_alerts_inbox_final_outbox: alert state, rejected inbox messages, and the outbox statuses
-- that end a pipeline on purpose (so they are not reported as unwired).

alter table turing.actors add column final_outbox text[] not null default '{}';
comment on column turing.actors.final_outbox is
'Outbox statuses that end the pipeline on purpose (e.g. committed, rejected): no actor needs to '
'read them, so they are not reported as an unwired outbox.';

-- why: register_actor gained p_final_outbox; a changed signature is a new function, and the old
-- one goes so that calls are never ambiguous.
drop function if exists turing.register_actor(
    text, text, text, text, text, jsonb, text, text, text, text[], text[], integer, integer,
    interval, interval, integer, interval, interval, integer, boolean, text, jsonb, text
);

create table turing.alert_state (
    alert text not null,
    subject text not null,
    severity text not null,
    message text not null,
    raised_at timestamptz not null default clock_timestamp(),
    last_seen_at timestamptz not null default clock_timestamp(),
    cleared_at timestamptz,
    constraint alert_state_severity_known check (severity in ('info', 'warning', 'critical'))
);
comment on table turing.alert_state is
'Alerts as evaluate_alerts() last saw them: one row per raise (alert, subject); cleared_at is set '
'when the condition ends. Raises and clears also go to the events queue.';
create unique index alert_state_open on turing.alert_state (alert, subject) where cleared_at is null;
create index alert_state_raised on turing.alert_state (raised_at);

create table turing.inbox_rejections (
    msg_id bigint primary key,
    message jsonb,
    reason text not null,
    rejected_at timestamptz not null default clock_timestamp()
);
comment on table turing.inbox_rejections is
'Messages from the pgmq queue turing_inbox that could not become tickets, with the reason '
'(bad shape, unknown actor, duplicate open ticket, loop, chain too deep). The message itself '
'is also archived in pgmq.a_turing_inbox; nothing is lost.';
