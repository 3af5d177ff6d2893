-- 0021: chains follow status hand-offs. A completion whose on_complete feeds another actor's
-- inbox records that it handed its subject on (or, through turing.hand_off(), the subjects it
-- made); discover() then continues that ticket's chain (depth + 1, parent = that ticket)
-- instead of starting a new one, so turing.chain_story and the chain-depth limit follow a
-- pipeline from its first actor to its last.
create table turing.hand_offs (
    subject_id text not null,
    ticket_id bigint not null,
    actor_id integer not null,
    chain_id bigint not null,
    chain_depth integer not null,
    explicit boolean not null default false,
    handed_at timestamptz not null default clock_timestamp(),
    -- why: discover looks up the latest hand-off of a subject (a backward scan of this key)
    -- and hand_off() replaces the implicit row of its ticket by key.
    constraint hand_offs_pkey primary key (subject_id, ticket_id)
);
-- why: prune_history drops hand-offs older than the completed tickets they point to.
create index hand_offs_handed_at on turing.hand_offs (handed_at);

comment on table turing.hand_offs is
'Subjects handed on by completed tickets: the chain a ticket that discover() creates for the '
'subject continues. Written in the transaction that completes the ticket: by _finish for the '
'ticket''s own subject when its actor has an on_complete and some actor''s inbox reads one of '
'its outbox statuses (implicit), and by turing.hand_off() from an on_complete for the subjects '
'it names (explicit; the first such call drops the implicit row of that ticket). Pruned with '
'the completed tickets (retention ''completed''). No foreign keys, like the ticket tables.';
comment on column turing.hand_offs.subject_id is
'The subject the next actor will discover: the same id (implicit) or one the on_complete made '
'and named in hand_off() (explicit).';
comment on column turing.hand_offs.ticket_id is
'The completed ticket that handed it on: the parent_ticket_id of the discovered ticket.';
comment on column turing.hand_offs.actor_id is
'The actor of that ticket; discover follows hand-offs only from actors whose outbox shares a '
'status with the discovering actor''s inbox.';
comment on column turing.hand_offs.chain_depth is
'Depth of the handing ticket; the discovered ticket gets chain_depth + 1 (at most 20).';
comment on column turing.hand_offs.explicit is
'Named by turing.hand_off() (true) or recorded for the ticket''s own subject (false).';
