-- taxonomy_demo: the domain tables of the taxonomy demo pipeline (actors/taxonomy).
-- The data is the queue: every table carries a status, each actor's work_query reads one status
-- and its on_complete writes the next one. Rebuilt from scratch by loader.load_pipeline().

create schema taxonomy_demo;
comment on schema taxonomy_demo is
'The taxonomy demo: skills extracted from job postings are cleaned, merged, turned into entities, '
'classified by two LLMs (arbitrated where they disagree) and placed in a fixed taxonomy. '
'Rebuilt by `turing demo`; see actors/taxonomy/README.md.';

-- The fixed taxonomy. The classifier JSON schemas list the same leaves as an enum (a test keeps
-- the two in step).
create table taxonomy_demo.taxonomy_leaf (
    leaf text primary key,
    category text not null,
    subcategory text not null,
    constraint taxonomy_leaf_path check (leaf = category || ' > ' || subcategory),
    constraint taxonomy_leaf_unique unique (category, subcategory)
);
comment on table taxonomy_demo.taxonomy_leaf is
'The fixed two-level taxonomy (8 categories, 28 subcategories) skills are placed into.';
comment on column taxonomy_demo.taxonomy_leaf.leaf is
'"Category > Subcategory": the value the LLMs answer with (an enum of their output schema).';

insert into taxonomy_demo.taxonomy_leaf (leaf, category, subcategory)
select
    c.category || ' > ' || c.subcategory as leaf,
    c.category,
    c.subcategory
from (
    values
    ('Software Development', 'Programming Languages'),
    ('Software Development', 'Web Frontend'),
    ('Software Development', 'Backend & APIs'),
    ('Software Development', 'Mobile'),
    ('Software Development', 'Testing & Quality'),
    ('Data & AI', 'Databases'),
    ('Data & AI', 'Data Engineering'),
    ('Data & AI', 'Analytics & BI'),
    ('Data & AI', 'Machine Learning & AI'),
    ('Cloud & Infrastructure', 'Cloud Platforms'),
    ('Cloud & Infrastructure', 'DevOps & CI/CD'),
    ('Cloud & Infrastructure', 'Containers & Orchestration'),
    ('Cloud & Infrastructure', 'Security & Networking'),
    ('Business Software', 'Office & Productivity'),
    ('Business Software', 'ERP & CRM'),
    ('Business Software', 'Design & Creative'),
    ('Management', 'Project Management'),
    ('Management', 'Product Management'),
    ('Management', 'People Leadership'),
    ('Business Functions', 'Finance & Accounting'),
    ('Business Functions', 'Sales & Marketing'),
    ('Business Functions', 'Operations & Supply Chain'),
    ('Business Functions', 'HR & Recruiting'),
    ('Soft Skills', 'Communication'),
    ('Soft Skills', 'Collaboration'),
    ('Soft Skills', 'Problem Solving & Work Habits'),
    ('Languages & Certifications', 'Spoken Languages'),
    ('Languages & Certifications', 'Certifications & Licences')
) as c (category, subcategory);

-- Step 3 of the pipeline works on names; created before raw_skill, which refers to it.
create table taxonomy_demo.skill_name (
    name_id uuid primary key default gen_random_uuid(),
    seq bigint generated always as identity,
    name text not null,
    bigrams text[] not null,
    status text not null default 'distinct',
    merged_into uuid references taxonomy_demo.skill_name (name_id),
    merge_reason text,
    created_at timestamptz not null default clock_timestamp(),
    constraint skill_name_name_unique unique (name),
    constraint skill_name_status_known check (
        status in ('merge_check', 'distinct', 'merged', 'has_entity')
    ),
    constraint skill_name_merged_has_target check ((status = 'merged') = (merged_into is not null))
);
comment on table taxonomy_demo.skill_name is
'One row per distinct cleaned skill name (the deduplication of clean_skills). A name either '
'merges into an earlier similar name (the merge LLM decides) or stays distinct and becomes an '
'entity.';
comment on column taxonomy_demo.skill_name.name_id is
'The subject_id of the merge_duplicates and create_entities tickets (a uuid: unique across demo '
'runs, so the ticket history of an earlier run never hides a subject of this one).';
comment on column taxonomy_demo.skill_name.seq is
'Insertion order. Merge candidates are always earlier names, so merges never form a cycle.';
comment on column taxonomy_demo.skill_name.bigrams is
'Word bigrams of the name (taxonomy_demo.bigrams), for the similarity that picks merge candidates.';
comment on column taxonomy_demo.skill_name.status is
'merge_check: has similar earlier names, waits for merge_duplicates; distinct: waits for '
'create_entities; merged: resolved into merged_into (final); has_entity: root of an entity (final).';
comment on column taxonomy_demo.skill_name.merged_into is
'The root name this name was merged into; always a name that is not merged itself (merge_decided '
're-points children when their target merges on).';

-- why: the work_queries of merge_duplicates and create_entities read only these statuses; the
-- partial indexes hold only the waiting rows, so discover stays an index scan as names pile up.
create index skill_name_merge_check on taxonomy_demo.skill_name (name_id) where status = 'merge_check';
create index skill_name_distinct on taxonomy_demo.skill_name (name_id) where status = 'distinct';
-- why: re-pointing the children of a name that merges on, and the entity membership view.
create index skill_name_merged_into on taxonomy_demo.skill_name (merged_into) where merged_into is not null;

create table taxonomy_demo.raw_skill (
    raw_skill_id uuid primary key default gen_random_uuid(),
    seq integer not null,
    posting_ref text not null,
    raw_text text not null,
    status text not null default 'new',
    cleaned_name text,
    name_id uuid references taxonomy_demo.skill_name (name_id),
    reject_reason text,
    updated_at timestamptz not null default clock_timestamp(),
    constraint raw_skill_seq_unique unique (seq),
    constraint raw_skill_status_known check (status in ('new', 'cleaned', 'rejected')),
    constraint raw_skill_cleaned_has_name check ((status = 'cleaned') = (name_id is not null))
);
comment on table taxonomy_demo.raw_skill is
'Skill strings as extracted from job postings, messy on purpose (seed_skills.csv). The inbox of '
'the script gate clean_skills.';
comment on column taxonomy_demo.raw_skill.raw_skill_id is 'The subject_id of clean_skills tickets.';
comment on column taxonomy_demo.raw_skill.seq is 'Line of the seed file (the demo limit keeps the first n).';
comment on column taxonomy_demo.raw_skill.posting_ref is 'The job posting the skill was extracted from.';
comment on column taxonomy_demo.raw_skill.status is
'new: waits for clean_skills; cleaned: linked to its skill_name (final for this row); rejected: '
'not a skill (final).';
comment on column taxonomy_demo.raw_skill.name_id is
'The cleaned, deduplicated name (several raw skills share one).';

-- why: the work_query of clean_skills reads only status = 'new'.
create index raw_skill_new on taxonomy_demo.raw_skill (raw_skill_id) where status = 'new';
create index raw_skill_name on taxonomy_demo.raw_skill (name_id);

create table taxonomy_demo.merge_candidate (
    name_id uuid not null references taxonomy_demo.skill_name (name_id),
    rank integer not null,
    candidate_id uuid not null references taxonomy_demo.skill_name (name_id),
    similarity real not null,
    constraint merge_candidate_pkey primary key (name_id, rank),
    constraint merge_candidate_rank_range check (rank between 1 and 5)
);
comment on table taxonomy_demo.merge_candidate is
'Up to 5 earlier names similar to a new name (bigram similarity >= 0.35), chosen when the name '
'was first seen; the merge LLM is asked whether the name is the same skill as one of them.';
comment on column taxonomy_demo.merge_candidate.rank is
'The number the candidate has in the merge prompt (1 = most similar).';

create table taxonomy_demo.entity (
    entity_id uuid primary key default gen_random_uuid(),
    root_name_id uuid not null references taxonomy_demo.skill_name (name_id),
    label text not null,
    slug text not null,
    status text not null default 'to_classify',
    created_at timestamptz not null default clock_timestamp(),
    constraint entity_root_unique unique (root_name_id),
    constraint entity_status_known check (
        status in ('to_classify', 'classified', 'arbitrated', 'placed', 'reviewed')
    )
);
comment on table taxonomy_demo.entity is
'A skill as the taxonomy knows it: one per root skill_name, with every name merged into that '
'root (and their raw skills) as aliases.';
comment on column taxonomy_demo.entity.entity_id is
'The subject_id of the classifier, arbitrator, commit and review tickets.';
comment on column taxonomy_demo.entity.status is
'to_classify: waits for both classifiers; classified: both answered (the arbitrator takes the '
'disagreements, the commit the agreements); arbitrated: waits for the commit; placed: final '
'(low-confidence ones wait for the optional human review); reviewed: a person decided (final).';

-- why: one partial index per inbox status read by a work_query (classifiers, arbitrator and
-- commit, review).
create index entity_to_classify on taxonomy_demo.entity (entity_id) where status = 'to_classify';
create index entity_classified on taxonomy_demo.entity (entity_id) where status = 'classified';
create index entity_arbitrated on taxonomy_demo.entity (entity_id) where status = 'arbitrated';
create index entity_placed on taxonomy_demo.entity (entity_id) where status = 'placed';

create table taxonomy_demo.classification (
    entity_id uuid not null references taxonomy_demo.entity (entity_id),
    slot text not null,
    leaf text not null references taxonomy_demo.taxonomy_leaf (leaf),
    confidence real not null,
    ticket_id bigint not null,
    created_at timestamptz not null default clock_timestamp(),
    constraint classification_pkey primary key (entity_id, slot),
    constraint classification_slot_known check (slot in ('A', 'B')),
    constraint classification_confidence_range check (confidence between 0 and 1)
);
comment on table taxonomy_demo.classification is
'The answers of the two independent classifiers: slot A (classify_qwen, qwen2.5:7b) and slot B '
'(classify_llama, llama3.1:8b). The ticket_id leads to the attempt in turing.tickets.';
comment on column taxonomy_demo.classification.slot is
'A or B: which classifier answered (a constant column of each classifier''s work_query).';

create table taxonomy_demo.arbitration (
    entity_id uuid primary key references taxonomy_demo.entity (entity_id),
    agrees_with text not null,
    leaf text not null references taxonomy_demo.taxonomy_leaf (leaf),
    confidence real not null,
    reason text,
    ticket_id bigint not null,
    created_at timestamptz not null default clock_timestamp(),
    constraint arbitration_agrees_known check (agrees_with in ('A', 'B', 'neither')),
    constraint arbitration_confidence_range check (confidence between 0 and 1)
);
comment on table taxonomy_demo.arbitration is
'The arbitrator''s decision (mistral:7b), only for entities whose classifiers disagreed on the '
'top-level category.';
comment on column taxonomy_demo.arbitration.leaf is
'The leaf the arbitrator decided on: the proposal it agrees with, or its own when neither.';

create table taxonomy_demo.placement (
    entity_id uuid primary key references taxonomy_demo.entity (entity_id),
    leaf text not null references taxonomy_demo.taxonomy_leaf (leaf),
    confidence real not null,
    method text not null,
    needs_review boolean not null,
    ticket_id bigint not null,
    placed_at timestamptz not null default clock_timestamp(),
    reviewed_at timestamptz,
    review_note text,
    constraint placement_method_known check (method in ('consensus', 'arbitration', 'review')),
    constraint placement_confidence_range check (confidence between 0 and 1)
);
comment on table taxonomy_demo.placement is
'Where each entity sits in the taxonomy: written by commit_placement (decide_placement computes '
'it), amended by review_placement when a person reviews it.';
comment on column taxonomy_demo.placement.method is
'consensus: both classifiers named the same category; arbitration: the arbitrator decided; '
'review: a person changed it.';
comment on column taxonomy_demo.placement.needs_review is
'Confidence below 0.4: the optional human actor review_placement picks these up when enabled.';

-- why: the membership of an entity (its names and raw skills) is what the classifier prompts, the
-- tree and the tests read; one view says it once.
create view taxonomy_demo.entity_member as
select
    e.entity_id,
    n.name_id,
    n.name,
    r.raw_skill_id,
    r.raw_text,
    r.posting_ref
from taxonomy_demo.entity as e
inner join taxonomy_demo.skill_name as n
    on e.root_name_id = n.name_id or e.root_name_id = n.merged_into
left join taxonomy_demo.raw_skill as r on n.name_id = r.name_id;
comment on view taxonomy_demo.entity_member is
'Every name and raw skill of each entity: its root name and the names merged into it.';

create view taxonomy_demo.skill_journey as
select
    r.raw_skill_id,
    r.seq,
    r.raw_text,
    r.status as raw_status,
    n.name,
    coalesce(n.merged_into, n.name_id) as root_name_id,
    e.entity_id,
    e.label,
    e.status as entity_status,
    p.leaf,
    p.method,
    p.needs_review,
    r.status = 'rejected' or e.status in ('placed', 'reviewed') as finished
from taxonomy_demo.raw_skill as r
left join taxonomy_demo.skill_name as n on r.name_id = n.name_id
left join taxonomy_demo.entity as e on coalesce(n.merged_into, n.name_id) = e.root_name_id
left join taxonomy_demo.placement as p on e.entity_id = p.entity_id;
comment on view taxonomy_demo.skill_journey is
'Where each raw skill got to: its name, the entity of its root name, the placement. finished = '
'rejected, or its entity is placed (or reviewed).';
