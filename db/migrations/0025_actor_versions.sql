-- 0025: actor versions. Every change to what an actor does to its input (its kind, model,
-- prompt, system prompt, output schema, options, think, script or SQL function, and the body of
-- that function) is a version of the actor: a hash and the definition, kept. Each attempt
-- records the version that ran it, so an answer can be traced to the prompt that produced it.

create table turing.actor_versions (
    -- why: no foreign key to actors: a removed actor's finished tickets stay in the history
    -- (remove_actor), and the versions that made their answers stay with them.
    actor_id integer not null,
    version integer not null constraint actor_versions_version_positive check (version >= 1),
    hash text not null,
    definition jsonb not null,
    sql_source text,
    created_at timestamptz not null default clock_timestamp(),
    created_by text not null default session_user,
    primary key (actor_id, version),
    -- why: a definition changed back to an earlier one is that earlier version again (the
    -- same behaviour), so the evidence gathered for it still applies.
    constraint actor_versions_one_per_hash unique (actor_id, hash)
);

comment on table turing.actor_versions is
'The versions of each actor: one row per distinct behaviour (the fields of turing.actor_fields '
'where versioned, plus the body of a sql actor''s function), numbered 1, 2, ... per actor. '
'Written by _version_actors (register_actor, set_actor, and maintain for function bodies '
'changed in place); never updated. `turing actor history NAME` lists them, actor diff compares '
'two.';
comment on column turing.actor_versions.hash is
'sha256 (hex) of the versioned fields as JSON and the SQL function''s source: equal hashes, '
'equal behaviour.';
comment on column turing.actor_versions.definition is
'The whole definition (turing.actor_definitions) when this version first appeared, so it can '
'be registered again.';
comment on column turing.actor_versions.sql_source is
'pg_get_functiondef of a sql actor''s sql_function when the version was made (null for other '
'kinds).';
comment on column turing.actor_versions.created_by is
'The login (session_user) whose change made this version.';

alter table turing.actors add column version integer;
comment on column turing.actors.version is
'The current version (turing.actor_versions), kept by _version_actors; null only between an '
'upgrade to 0025 and the first maintain or registration.';

alter table turing.ticket_open add column actor_version integer;
comment on column turing.ticket_open.actor_version is
'The actor version the attempt runs, set when it is claimed (null while pending).';
alter table turing.ticket_history add column actor_version integer;
comment on column turing.ticket_history.actor_version is
'The actor version that ran the attempt (turing.actor_versions); null for an attempt that was '
'never claimed (cancelled or reaped while pending) or finished before versions existed.';
