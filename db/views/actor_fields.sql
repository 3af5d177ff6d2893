-- actor_fields: the fields of an actor definition, read from turing.actors itself (type,
-- default and comment of each column), so the table is the one spec that register_actor,
-- set_actor, actor files, the runner and the docs all follow.
create view turing.actor_fields as
select
    a.attname::text as field,
    pg_catalog.format_type(a.atttypid, a.atttypmod) as type,
    pg_catalog.pg_get_expr(d.adbin, d.adrelid) as default_value,
    pg_catalog.col_description(a.attrelid, a.attnum) as description,
    -- why: name and kind identify an actor; set_actor changes the rest.
    a.attname not in ('name', 'kind') as settable,
    -- why: what the actor does to its input; a change to one of these is a new version
    -- (turing.actor_versions). Wiring (inbox, work_query, on_complete) and limits (timeouts,
    -- attempts, batch sizes) change where and how often it runs, not what it answers.
    a.attname in (
        'kind', 'model', 'prompt_template', 'system_prompt', 'output_schema', 'options', 'think',
        'script', 'sql_function'
    ) as versioned,
    a.attnum as position
from pg_catalog.pg_attribute as a
left join pg_catalog.pg_attrdef as d on a.attrelid = d.adrelid and a.attnum = d.adnum
where
    a.attrelid = 'turing.actors'::regclass
    and a.attnum > 0
    and not a.attisdropped
    -- why: kept by Turing, not part of a definition.
    and a.attname not in (
        'actor_id', 'revision', 'version', 'created_at', 'updated_at', 'stage',
        'production_version'
    );

comment on view turing.actor_fields is
'The fields of an actor definition (what register_actor takes as JSON and actor files as YAML): '
'the columns of turing.actors with their type, default and description; settable = set_actor '
'may change it; versioned = a change makes a new actor version (turing.actor_versions). Kinds '
'add their own defaults and required fields (turing.actor_kinds).';
