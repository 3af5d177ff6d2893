-- taxonomy_pipeline: the role the demo's actors run their SQL as (run_as in pipeline.yaml).
-- It gets what the pipeline's own tables need and nothing else: no superuser, nothing of
-- Turing's beyond what register_actor grants every run_as role (create its wrappers, spawn).
-- Loaded after schema.sql and functions.sql; the role is cluster-wide, so it is created once.

do $role$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'taxonomy_pipeline') then
        create role taxonomy_pipeline nologin;
    end if;
    -- why: the registrant must be a member of an actor's run_as role (a superuser is already)
    if not (select r.rolsuper from pg_catalog.pg_roles as r where r.rolname = current_user)
        and not pg_catalog.pg_has_role(current_user, 'taxonomy_pipeline', 'member') then
        execute format('grant taxonomy_pipeline to %I', current_user);
    end if;
end;
$role$;

grant usage on schema taxonomy_demo to taxonomy_pipeline;
grant select, insert, update on all tables in schema taxonomy_demo to taxonomy_pipeline;
grant usage on all sequences in schema taxonomy_demo to taxonomy_pipeline;
grant execute on all functions in schema taxonomy_demo to taxonomy_pipeline;
