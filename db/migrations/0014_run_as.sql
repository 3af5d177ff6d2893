-- 0014: user SQL runs as the actor's run-as role, and Turing's objects belong to turing_owner.
-- Until now every function was owned by whoever ran `db up` (often a superuser) and ran
-- work_queries, on_complete and sql functions with that owner's privileges. turing_owner is a
-- plain role (no login, no superuser, no CREATEROLE) that owns the schema; db/privileges.sql
-- hands it every object on each `db up`. An actor's SQL runs in wrappers in turing_actor that
-- belong to its run_as role (see register_actor), never as turing_owner.

do $roles$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'turing_owner') then
        create role turing_owner nologin nosuperuser nocreatedb nocreaterole noinherit;
        -- why: only here: from PostgreSQL 16 on, commenting needs ADMIN on the role, which its
        -- creator has and a later installer (who was granted membership only) has not.
        comment on role turing_owner is
        'Owns Turing''s schema, tables and functions (SECURITY DEFINER functions run as it). '
        'No login, no superuser; actors'' SQL never runs as it.';
    end if;
end;
$roles$;

-- why: the installer must be able to act as the owner to hand objects to it (ALTER ... OWNER
-- needs membership); a superuser already can.
do $member$
begin
    if not (select r.rolsuper from pg_catalog.pg_roles as r where r.rolname = current_user)
        and not pg_catalog.pg_has_role(current_user, 'turing_owner', 'member') then
        execute format('grant turing_owner to %I', current_user);
    end if;
end;
$member$;

create schema turing_actor;
comment on schema turing_actor is
'Per-actor wrappers (a<actor_id>_work, _plan, _on_complete, _sql): SECURITY DEFINER functions '
'owned by the actor''s run_as role, created by register_actor in the registrant''s session, '
'so an actor''s SQL runs with that role''s privileges. Turing checks before and after each '
'call that a wrapper still belongs to run_as and is still SECURITY DEFINER.';
revoke all on schema turing_actor from public;

alter table turing.actors add column run_as regrole;
comment on column turing.actors.run_as is
'The role the actor''s work_query, on_complete and sql_function run as: the registering role, '
'or a role the registrant is a member of (set role must work). Never a superuser or a member '
'of turing_owner. Grant it what the actor''s own tables need, nothing of Turing''s.';

-- why: no settings row for default_run_as: unset (the registering role) is the default, and
-- an operator who wants one role for every pipeline inserts it.
