-- 0008: one home for the actor definition. The fields are the columns of turing.actors (type,
-- default, comment), read through the view turing.actor_fields; what differs by kind (the
-- fields a kind needs, its own defaults) is a row of turing.actor_kinds; register_actor(jsonb)
-- validates any definition against both. Adding a field is one `alter table ... add column`
-- with its default and comment; adding a kind is one row here (and its executor module).

create table turing.actor_kinds (
    kind text primary key,
    required text[] not null default '{}',
    defaults jsonb not null default '{}'
    constraint actor_kinds_defaults_object check (jsonb_typeof(defaults) = 'object'),
    description text not null
);

comment on table turing.actor_kinds is
'The kinds of actor: what each needs and its own defaults. register_actor() refuses a kind that '
'is not here; the runner picks the executor of the same name (runner/executors/). Adding a kind '
'is a row here plus its executor module.';
comment on column turing.actor_kinds.required is
'Fields an actor of this kind must set (non-empty).';
comment on column turing.actor_kinds.defaults is
'Defaults of this kind that override the column defaults of turing.actors, e.g. the resource '
'(model) a script actor runs on.';

insert into turing.actor_kinds (kind, required, defaults, description) values
(
    'llm', '{model,prompt_template,output_schema}', '{}',
    'One chat call to the model server per ticket: prompt_template rendered from the input, '
    'output_schema sent as the format and checked on every answer.'
),
(
    'script', '{script}', '{"model": "cpu"}',
    'A subprocess: the ticket as JSON on stdin, one JSON value on stdout.'
),
(
    'sql', '{sql_function}', '{"model": "cpu"}',
    'sql_function(subject_id, input) called inside the database, completed in the same '
    'transaction.'
),
(
    'human', '{}', '{"model": "human", "timeout": "1 day", "lease": "1 day"}',
    'A person answers at the terminal (turing human); the ticket waits on a long lease.'
);

-- why: the kind rules now live in actor_kinds (checked by register_actor, the one write path);
-- these constraints said the same thing a second time and would need a migration per new kind.
alter table turing.actors drop constraint actors_kind_known;
alter table turing.actors drop constraint actors_llm_has_prompt;
alter table turing.actors drop constraint actors_script_has_entry;
alter table turing.actors drop constraint actors_sql_has_function;
alter table turing.actors add constraint actors_kind_fkey
foreign key (kind) references turing.actor_kinds (kind);

create sequence turing.actor_revision_seq as bigint;
comment on sequence turing.actor_revision_seq is
'Actor revisions, unique across actors: a new one each time a definition changes.';

alter table turing.actors
add column revision bigint not null default nextval('turing.actor_revision_seq');
comment on column turing.actors.revision is
'Changes whenever register_actor or set_actor changes the definition (unique across actors). '
'claim_batch returns it with every ticket and sends a definition only for revisions the runner '
'does not hold yet.';

comment on column turing.actors.model is
'The resource a runner serves: the Ollama model for llm actors (e.g. qwen2.5:7b); '
'"cpu" by default for script and sql actors; "human" for human actors (turing.actor_kinds). '
'`turing-runner --model M` drains every enabled actor whose model is M.';

-- why: actor_fields shows every field with its comment; these three had none.
comment on column turing.actors.enabled is
'A disabled actor keeps its tickets, but none is claimed or discovered.';
comment on column turing.actors.backoff_max is
'Longest retry delay (before the +/-25 % jitter); see backoff_base.';
comment on column turing.actors.description is
'What the actor does, for people (turing actor show, turing graph).';

-- why: model_backlog(text[]) became model_backlog(text[], text); the re-applied function file
-- dropped the old one on every db up, which is a one-off change and belongs here.
drop function if exists turing.model_backlog(text[]);
-- why: startup_state gained the actor's kind (a runner refuses a model whose every actor is of a
-- kind no runner runs); a new result type needs the old function gone first.
drop function if exists turing.startup_state(text[]);

-- why: dead_letters (0007) was filled by resync_dead_letters() on every db up. Re-applied files
-- no longer rewrite data, so the one fill an upgrade from before 0007 needs happens here; for a
-- database that already had 0007 it rebuilds the same rows. Nothing can end or create a ticket
-- meanwhile (the locks), so no attempt is missed.
lock table turing.ticket_open, turing.ticket_history in share row exclusive mode;
delete from turing.dead_letters;
insert into turing.dead_letters (
    ticket_id, actor_id, subject_id, model, attempt, failure_kind, error, finished_at, chain_id
)
select
    h.ticket_id,
    h.actor_id,
    h.subject_id,
    h.model,
    h.attempt,
    h.failure_kind,
    h.error,
    h.finished_at,
    h.chain_id
from turing.ticket_history as h
where
    h.status = 'dead'
    and not exists (
        select from turing.ticket_open as o
        where o.actor_id = h.actor_id and o.subject_id = h.subject_id
    )
    and not exists (
        select from turing.ticket_history as l
        where
            l.actor_id = h.actor_id and l.subject_id = h.subject_id
            and l.ticket_id > h.ticket_id
    );
drop function if exists turing.resync_dead_letters();
