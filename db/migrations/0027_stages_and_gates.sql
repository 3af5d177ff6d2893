-- 0027: stages with gates (RAQ). Each actor version climbs develop -> stabilize -> prove -> qa ->
-- production; promotions are recorded per version with who, when and the evidence. Runners run
-- production versions unless started with --stage. The evidence: repeatability runs (raq_*)
-- and a person's QA reviews (qa_reviews). The free-text actors.raq_stage, read by nothing, is
-- replaced by the stage of the current version.

create table turing.stages (
    stage text primary key,
    rank integer not null unique,
    gate text not null
);

comment on table turing.stages is
'The stages an actor version climbs, in order (rank), and what promote() asks to leave each.';
comment on column turing.stages.gate is
'The evidence promote() checks before a version leaves this stage.';

insert into turing.stages (stage, rank, gate) values
('develop', 1, 'none: a person says it is ready to be measured'),
('stabilize', 2, 'a raq run of the version on its own model at or above raq_threshold'),
('prove', 3, 'none: a person says it is proven (harness, matrix)'),
(
    'qa', 4, 'qa_sample reviews of the version with a pass rate >= qa_threshold and a Wilson '
    || '95 % lower bound >= qa_lower_bound'
),
('production', 5, 'none: the last stage');

alter table turing.actors drop column raq_stage;

alter table turing.actors add column raq_threshold double precision not null default 0.9
constraint actors_raq_threshold_range check (raq_threshold between 0 and 1);
comment on column turing.actors.raq_threshold is
'The agreement a raq run (turing raq) must reach to leave stabilize: the lowest agreement of '
'any output field across the runs of the same inputs (0..1; default 0.9).';
comment on constraint actors_raq_threshold_range on turing.actors is
'raq_threshold must be between 0 and 1 (an agreement)';

alter table turing.actors add column qa_threshold double precision not null default 0.9
constraint actors_qa_threshold_range check (qa_threshold between 0 and 1);
comment on column turing.actors.qa_threshold is
'The pass rate (right / (right + wrong)) the QA reviews of a version must reach to leave qa '
'(0..1; default 0.9).';
comment on constraint actors_qa_threshold_range on turing.actors is
'qa_threshold must be between 0 and 1 (a pass rate)';

alter table turing.actors add column qa_lower_bound double precision not null default 0.65
constraint actors_qa_lower_bound_range check (qa_lower_bound between 0 and 1);
comment on column turing.actors.qa_lower_bound is
'The Wilson 95 % lower bound of the QA pass rate a version must reach to leave qa (0..1; '
'default 0.65: 18 right of 20 passes, 9 of 10 does not).';
comment on constraint actors_qa_lower_bound_range on turing.actors is
'qa_lower_bound must be between 0 and 1';

alter table turing.actors add column qa_sample integer not null default 20
constraint actors_qa_sample_positive check (qa_sample >= 1);
comment on column turing.actors.qa_sample is
'How many decided QA reviews (right or wrong; unsure does not count) a version needs to leave '
'qa (default 20).';
comment on constraint actors_qa_sample_positive on turing.actors is
'qa_sample must be x>=1';

-- why: kept by promote, demote and _version_actors beside the actor, so a claim reads the stage
-- in the row it already reads (no lookup in promotions per claim).
alter table turing.actors add column stage text not null default 'develop'
references turing.stages (stage);
comment on column turing.actors.stage is
'The stage of the current version (the last promotion of actors.version; develop when none), '
'kept by promote, demote and _version_actors.';
alter table turing.actors add column production_version integer;
comment on column turing.actors.production_version is
'The last version promoted to production and still there: what a production runner runs while '
'the current version climbs the gates (null: none yet).';

create table turing.promotions (
    promotion_id bigint generated always as identity primary key,
    actor_id integer not null,
    version integer not null,
    from_stage text references turing.stages (stage),
    to_stage text not null references turing.stages (stage),
    evidence jsonb not null default '{}',
    note text,
    promoted_at timestamptz not null default clock_timestamp(),
    promoted_by text not null default session_user,
    foreign key (actor_id, version) references turing.actor_versions (actor_id, version)
);
-- why: the stage of a version is its last row here.
create index promotions_version on turing.promotions (actor_id, version, promotion_id);

comment on table turing.promotions is
'Every change of stage of an actor version (promote, demote, and the grandfathering of 0027): '
'who, when, and the evidence the gate read. Never updated.';
comment on column turing.promotions.evidence is
'What the gate checked: the raq run (id, agreement, threshold) to leave stabilize, the QA '
'figures (right, wrong, pass rate, Wilson bounds) to leave qa; {"grandfathered": true} for '
'the versions 0027 found in use.';

-- why: actors registered before stages existed keep running: their current version is
-- production. An actor without a version yet (an upgrade from before 0025) is grandfathered
-- by _version_actors when it gives it its first version.
create table turing.stage_grandfathered (actor_id integer primary key);
comment on table turing.stage_grandfathered is
'Actors that existed before 0027 and had no version yet: _version_actors promotes their first '
'version to production (grandfathered) and removes them from here.';

insert into turing.promotions (actor_id, version, from_stage, to_stage, evidence, note)
select
    a.actor_id,
    a.version,
    'develop' as from_stage,
    'production' as to_stage,
    '{"grandfathered": true}'::jsonb as evidence,
    'grandfathered: in use before stages existed (migration 0027)' as note
from turing.actors as a
where a.version is not null;
update turing.actors set stage = 'production', production_version = version
where version is not null;
insert into turing.stage_grandfathered (actor_id)
select a.actor_id from turing.actors as a where a.version is null;

-- Repeatability (turing raq): the recorded sample, the runs and their figures.
create table turing.raq_samples (
    actor_id integer not null,
    item integer not null,
    subject_id text not null,
    input jsonb not null,
    taken_at timestamptz not null default clock_timestamp(),
    primary key (actor_id, item)
);
comment on table turing.raq_samples is
'The recorded inputs of each actor''s raq runs (subject and input, from its open and recent '
'tickets), so a rerun measures the same inputs: a run of n uses items 1..n, taken once.';

create table turing.raq_runs (
    raq_run_id bigint generated always as identity primary key,
    actor_id integer not null,
    version integer not null,
    model text not null,
    n integer not null constraint raq_runs_n_positive check (n >= 1),
    runs integer not null constraint raq_runs_runs_range check (runs between 2 and 20),
    -- why: the key the claim sends this run's definition under (the version's definition on
    -- this model), from the revisions' sequence so it never equals an actor's revision.
    revision bigint not null default nextval('turing.actor_revision_seq'),
    threshold double precision not null,
    started_at timestamptz not null default clock_timestamp(),
    started_by text not null default session_user,
    finished_at timestamptz,
    agreement double precision,
    failure_rate double precision,
    p50_ms double precision,
    p95_ms double precision,
    passed boolean,
    foreign key (actor_id, version) references turing.actor_versions (actor_id, version)
);
comment on table turing.raq_runs is
'Repeatability runs: the same n recorded inputs run `runs` times each through the ticket '
'machinery (tickets with raq_run_id, without on_complete) by version `version` on `model`; '
'agreement = the lowest per-field agreement (raq_fields), passed = agreement >= threshold '
'(the actor''s raq_threshold at the start) with every run answered.';

create table turing.raq_fields (
    raq_run_id bigint not null references turing.raq_runs (raq_run_id),
    field text not null,
    compared_as text not null,
    agreement double precision not null,
    primary key (raq_run_id, field)
);
comment on table turing.raq_fields is
'Agreement per output field of a raq run: exact for enums, booleans and integers, a normalised '
'text similarity for text, a 1 % relative tolerance for other numbers (compared_as says '
'which); the mean over inputs of the share of runs that agree with the most common answer.';

alter table turing.ticket_open add column raq_run_id bigint;
comment on column turing.ticket_open.raq_run_id is
'The raq run this ticket measures (turing.raq_runs): it runs that run''s version on its model, '
'at any stage, and never runs on_complete. Null for ordinary work.';
alter table turing.ticket_history add column raq_run_id bigint;
comment on column turing.ticket_history.raq_run_id is
'The raq run the attempt measured (null for ordinary work).';
-- why: raq_result reads a run's attempts; the partial index holds only raq rows.
create index ticket_history_raq on turing.ticket_history (raq_run_id)
where raq_run_id is not null;

alter table turing.ticket_open drop constraint ticket_open_source_known;
alter table turing.ticket_open add constraint ticket_open_source_known check (
    source in ('discover', 'submit', 'spawn', 'retry', 'inbox', 'rerun', 'raq')
);

-- QA (turing qa): a person's verdicts on completed tickets.
create table turing.qa_reviews (
    ticket_id bigint primary key,
    actor_id integer not null,
    version integer not null,
    verdict text not null constraint qa_reviews_verdict check (
        verdict in ('right', 'wrong', 'unsure')
    ),
    note text,
    reviewed_at timestamptz not null default clock_timestamp(),
    reviewed_by text not null default session_user
);
create index qa_reviews_version on turing.qa_reviews (actor_id, version);
comment on table turing.qa_reviews is
'A person''s verdict on one completed ticket (turing qa): right, wrong or unsure, with a note. '
'The qa gate reads the reviews of the current version.';

-- why: claim_batch takes the runner's stage now (a new signature); the release 0.1 form
-- (3 arguments) calls the new one.
drop function if exists turing.claim_batch(text, text, integer, bigint[], integer, boolean);
-- why: model_backlog takes the runner's stage too, so a GPU runner never switches to a model
-- whose only work it may not run.
drop function if exists turing.model_backlog(text[], text);
