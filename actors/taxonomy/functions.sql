-- taxonomy_demo functions: the on_complete functions of the demo actors (the only code that
-- writes domain rows, each in the transaction that completes its ticket), the sql actor's
-- decide_placement, and two helpers for similarity.
--
-- Every on_complete is f(p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb)
-- and is idempotent-safe: it acts only while its subject is still in the actor's inbox status
-- (checked under a row lock), so a second completion for the same subject changes nothing.

-- ---------------------------------------------------------------------------------------------
-- helpers

create or replace function taxonomy_demo.generic_words()
returns text[]
language sql
immutable
parallel safe
set search_path = ''
as $$
    select array[
        'management', 'testing', 'analysis', 'marketing', 'scripting', 'reporting', 'automation',
        'development', 'engineering', 'design', 'microsoft', 'adobe', 'apache', 'google',
        'certification', 'certified', 'skills', 'apis', 'api', 'and', 'of', 'the'
    ]::text[];
$$;
comment on function taxonomy_demo.generic_words() is
'Words too common among skill names to make two names look alike (see bigrams).';

create or replace function taxonomy_demo.bigrams(p_name text)
returns text[]
language sql
immutable
parallel safe
set search_path = ''
as $$
    with words as (
        select w.word
        from regexp_split_to_table(lower(p_name), '[^[:alnum:]+#]+') as w (word)
        where w.word <> ''
    ),
    -- why: generic words ("management", "testing", "microsoft") would make every
    -- "x management" a candidate of every other; they count only when nothing else is left.
    telling as (
        select w.word from words as w where not w.word = any(taxonomy_demo.generic_words())
        union all
        select w.word from words as w
        where not exists (
            select from words as x where not x.word = any(taxonomy_demo.generic_words())
        )
    )
    select coalesce(array_agg(distinct substr(' ' || t.word || ' ', g.i, 2)), '{}')
    from telling as t
    cross join lateral generate_series(1, length(t.word) + 1) as g (i);
$$;
comment on function taxonomy_demo.bigrams(text) is
'The set of character bigrams of each telling word of the name (generic_words() left out unless '
'the name has nothing else), padded with a space at both ends like pg_trgm does with trigrams: '
'bigrams keep short names such as "pyhton"/"python" overlapping.';

create or replace function taxonomy_demo.similarity(p_a text[], p_b text[])
returns real
language sql
immutable
parallel safe
set search_path = ''
as $$
    select case
        when cardinality(p_a) + cardinality(p_b) = 0 then 0::real
        else (
            select count(*) from (select unnest(p_a) intersect select unnest(p_b)) as i
        )::real / (
            select count(*) from (select unnest(p_a) union select unnest(p_b)) as u
        )
    end;
$$;
comment on function taxonomy_demo.similarity(text[], text[]) is
'Jaccard similarity of two bigram sets (0..1). No extension needed; fine for the demo''s few '
'hundred names (pg_trgm would be the choice for a large vocabulary).';

-- ---------------------------------------------------------------------------------------------
-- 1. clean_skills (script) -> raw_skill cleaned | rejected, skill_name merge_check | distinct

create or replace function taxonomy_demo.skill_cleaned(
    p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_raw_id uuid := p_subject_id::uuid;
    v_name text := btrim(p_output ->> 'name');
    v_name_id uuid;
    v_bigrams text[];
begin
    perform from taxonomy_demo.raw_skill as r
    where r.raw_skill_id = v_raw_id and r.status = 'new'
    for update;
    if not found then
        return;  -- already cleaned (or not a raw skill of this run): nothing to do
    end if;

    if coalesce((p_output ->> 'rejected')::boolean, false) or coalesce(v_name, '') = '' then
        update taxonomy_demo.raw_skill
        set status = 'rejected', cleaned_name = v_name, updated_at = clock_timestamp(),
            reject_reason = coalesce(p_output ->> 'reason', 'empty after cleaning')
        where raw_skill_id = v_raw_id;
        return;
    end if;

    -- why: names are registered one transaction at a time, so two similar names completed by
    -- concurrent runners still see each other and become merge candidates (held to commit).
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('taxonomy_demo.skill_name', 0));

    select n.name_id into v_name_id from taxonomy_demo.skill_name as n where n.name = v_name;
    if v_name_id is null then
        v_bigrams := taxonomy_demo.bigrams(v_name);
        insert into taxonomy_demo.skill_name (name, bigrams, status)
        values (v_name, v_bigrams, 'distinct')
        returning name_id into v_name_id;

        -- candidates: up to 5 earlier, not merged-away names that look alike
        insert into taxonomy_demo.merge_candidate (name_id, rank, candidate_id, similarity)
        select v_name_id, row_number() over (order by c.sim desc, c.name), c.name_id, c.sim
        from (
            select n.name_id, n.name, taxonomy_demo.similarity(n.bigrams, v_bigrams) as sim
            from taxonomy_demo.skill_name as n
            where n.name_id <> v_name_id and n.status <> 'merged'
        ) as c
        where c.sim >= 0.35
        order by c.sim desc, c.name
        limit 5;
        if found then
            update taxonomy_demo.skill_name set status = 'merge_check' where name_id = v_name_id;
        end if;
    end if;

    update taxonomy_demo.raw_skill
    set status = 'cleaned', cleaned_name = v_name, name_id = v_name_id,
        updated_at = clock_timestamp()
    where raw_skill_id = v_raw_id;
end;
$$;
comment on function taxonomy_demo.skill_cleaned(bigint, text, jsonb, jsonb) is
'on_complete of clean_skills. Rejected output: raw_skill -> rejected. Otherwise links the raw '
'skill to its skill_name (created on first sight: deduplication), raw_skill -> cleaned; a new '
'name with similar earlier names gets merge candidates and status merge_check, else distinct.';

-- ---------------------------------------------------------------------------------------------
-- 2. merge_duplicates (llm) -> skill_name merged | distinct

create or replace function taxonomy_demo.merge_decided(
    p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_name_id uuid := p_subject_id::uuid;
    v_pick integer := (p_output ->> 'candidate')::integer;
    v_target uuid;
    v_next uuid;
    v_reason text := left(p_output ->> 'reason', 200);
begin
    -- why: lock the name before deciding: a later name choosing this one as its target locks it
    -- too, so the children re-pointed below cannot be missed.
    perform from taxonomy_demo.skill_name as n
    where n.name_id = v_name_id and n.status = 'merge_check'
    for update;
    if not found then
        return;
    end if;

    -- The model picks a candidate by its number; a number outside the list shown to it counts as
    -- "no match" rather than failing the ticket (a retry would get the same answer).
    if coalesce((p_output ->> 'same')::boolean, false)
        and v_pick between 1 and jsonb_array_length(p_input -> 'candidate_ids') then
        v_target := (p_input -> 'candidate_ids' ->> (v_pick - 1))::uuid;
        -- follow the target to its root, locking each step (targets are always earlier names,
        -- so this ends)
        loop
            select n.merged_into into v_next
            from taxonomy_demo.skill_name as n where n.name_id = v_target
            for update;
            exit when v_next is null;
            v_target := v_next;
        end loop;
    end if;

    if v_target is null then
        update taxonomy_demo.skill_name
        set status = 'distinct', merge_reason = 'no match: ' || coalesce(v_reason, '')
        where name_id = v_name_id;
    else
        update taxonomy_demo.skill_name
        set status = 'merged', merged_into = v_target, merge_reason = v_reason
        where name_id = v_name_id;
        -- names that chose this one while it was undecided follow it to its root
        update taxonomy_demo.skill_name set merged_into = v_target where merged_into = v_name_id;
    end if;
end;
$$;
comment on function taxonomy_demo.merge_decided(bigint, text, jsonb, jsonb) is
'on_complete of merge_duplicates. same = true with a listed candidate number: the name is merged '
'into that candidate''s root (and names merged into it follow); otherwise it stays distinct.';

-- ---------------------------------------------------------------------------------------------
-- 3. create_entities (script) -> skill_name has_entity, entity to_classify

create or replace function taxonomy_demo.entity_created(
    p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_name_id uuid := p_subject_id::uuid;
begin
    perform from taxonomy_demo.skill_name as n
    where n.name_id = v_name_id and n.status = 'distinct'
    for update;
    if not found then
        return;
    end if;
    insert into taxonomy_demo.entity (root_name_id, label, slug, status)
    values (
        v_name_id,
        coalesce(nullif(btrim(p_output ->> 'label'), ''), p_input ->> 'name'),
        coalesce(nullif(btrim(p_output ->> 'slug'), ''), p_subject_id),
        'to_classify'
    )
    on conflict (root_name_id) do nothing;
    update taxonomy_demo.skill_name set status = 'has_entity' where name_id = v_name_id;
end;
$$;
comment on function taxonomy_demo.entity_created(bigint, text, jsonb, jsonb) is
'on_complete of create_entities: creates the entity of a distinct name (label and slug from the '
'script), name -> has_entity, entity -> to_classify.';

-- ---------------------------------------------------------------------------------------------
-- 4. classify_qwen / classify_llama (llm, in parallel) -> entity classified once both answered

create or replace function taxonomy_demo.classified(
    p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_entity_id uuid := p_subject_id::uuid;
begin
    -- why: the two classifiers complete in different transactions (different runners). Locking
    -- the entity row serialises them, and READ COMMITTED gives each statement after the lock a
    -- fresh snapshot: the second to complete sees the first one's answer and moves the status.
    perform from taxonomy_demo.entity as e
    where e.entity_id = v_entity_id and e.status = 'to_classify'
    for update;
    if not found then
        return;
    end if;
    insert into taxonomy_demo.classification (entity_id, slot, leaf, confidence, ticket_id)
    values (
        v_entity_id, p_input ->> 'slot', p_output ->> 'category',
        (p_output ->> 'confidence')::real, p_ticket_id
    )
    on conflict (entity_id, slot) do nothing;
    update taxonomy_demo.entity as e set status = 'classified'
    where e.entity_id = v_entity_id
        and (select count(*) from taxonomy_demo.classification as c where c.entity_id = v_entity_id) = 2;
end;
$$;
comment on function taxonomy_demo.classified(bigint, text, jsonb, jsonb) is
'on_complete of both classifiers (p_input.slot says which: A or B). Saves the answer; when both '
'have answered the entity moves to classified (the arbitrator then takes the disagreements).';

-- ---------------------------------------------------------------------------------------------
-- 5. arbitrate (llm, only on disagreements) -> entity arbitrated

create or replace function taxonomy_demo.arbitrated(
    p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_entity_id uuid := p_subject_id::uuid;
    v_agrees text := p_output ->> 'agrees_with';
begin
    perform from taxonomy_demo.entity as e
    where e.entity_id = v_entity_id and e.status = 'classified'
    for update;
    if not found then
        return;
    end if;
    -- agrees_with decides: siding with A or B takes that proposal as it was; only "neither"
    -- uses the arbitrator's own category.
    insert into taxonomy_demo.arbitration (entity_id, agrees_with, leaf, confidence, reason, ticket_id)
    values (
        v_entity_id, v_agrees,
        case v_agrees
            when 'A' then p_input ->> 'proposal_a'
            when 'B' then p_input ->> 'proposal_b'
            else p_output ->> 'category'
        end,
        (p_output ->> 'confidence')::real, left(p_output ->> 'reason', 200), p_ticket_id
    )
    on conflict (entity_id) do nothing;
    update taxonomy_demo.entity set status = 'arbitrated' where entity_id = v_entity_id;
end;
$$;
comment on function taxonomy_demo.arbitrated(bigint, text, jsonb, jsonb) is
'on_complete of arbitrate: records the decision (the proposal it sides with, or its own category '
'for neither) and moves the entity to arbitrated.';

-- ---------------------------------------------------------------------------------------------
-- 6. commit_placement (sql): decide_placement computes, placement_committed writes

create or replace function taxonomy_demo.decide_placement(p_subject_id text, p_input jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_a_leaf text := p_input ->> 'a_leaf';
    v_b_leaf text := p_input ->> 'b_leaf';
    v_a_conf real := (p_input ->> 'a_confidence')::real;
    v_b_conf real := (p_input ->> 'b_confidence')::real;
    v_arbitration jsonb := nullif(p_input -> 'arbitration', 'null'::jsonb);
    v_leaf text;
    v_conf real;
    v_method text;
begin
    if v_a_leaf is null or v_b_leaf is null or v_a_conf is null or v_b_conf is null then
        raise exception 'decide_placement(%): input lacks a classifier answer: %', p_subject_id, p_input
            using errcode = 'invalid_parameter_value';
    end if;
    if v_arbitration is null then
        -- consensus on the category: the more confident classifier's subcategory, mean confidence
        v_method := 'consensus';
        v_leaf := case when v_a_conf >= v_b_conf then v_a_leaf else v_b_leaf end;
        v_conf := (v_a_conf + v_b_conf) / 2;
    else
        -- arbitration: the arbitrator's leaf; siding with neither proposal costs confidence
        v_method := 'arbitration';
        v_leaf := v_arbitration ->> 'leaf';
        v_conf := (v_arbitration ->> 'confidence')::real
            * case when v_arbitration ->> 'agrees_with' = 'neither' then 0.8 else 1.0 end;
    end if;
    return jsonb_build_object(
        'leaf', v_leaf,
        'confidence', round(v_conf::numeric, 3),
        'method', v_method,
        -- below 0.4 a person should look (review_placement, disabled by default)
        'needs_review', v_conf < 0.4
    );
end;
$$;
comment on function taxonomy_demo.decide_placement(text, jsonb) is
'sql_function of commit_placement: from both classifier answers (and the arbitration, if any) '
'computes {leaf, confidence, method, needs_review}. Pure: it writes nothing (the on_complete '
'placement_committed does), so nothing exists unless the ticket completes.';

create or replace function taxonomy_demo.placement_committed(
    p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_entity_id uuid := p_subject_id::uuid;
begin
    perform from taxonomy_demo.entity as e
    where e.entity_id = v_entity_id and e.status in ('classified', 'arbitrated')
    for update;
    if not found then
        return;
    end if;
    insert into taxonomy_demo.placement (entity_id, leaf, confidence, method, needs_review, ticket_id)
    values (
        v_entity_id, p_output ->> 'leaf', (p_output ->> 'confidence')::real,
        p_output ->> 'method', (p_output ->> 'needs_review')::boolean, p_ticket_id
    )
    on conflict (entity_id) do nothing;
    update taxonomy_demo.entity set status = 'placed' where entity_id = v_entity_id;
end;
$$;
comment on function taxonomy_demo.placement_committed(bigint, text, jsonb, jsonb) is
'on_complete of commit_placement: writes the placement decide_placement computed; entity -> placed.';

-- ---------------------------------------------------------------------------------------------
-- 7. review_placement (human, disabled by default) -> entity reviewed

create or replace function taxonomy_demo.placement_reviewed(
    p_ticket_id bigint, p_subject_id text, p_input jsonb, p_output jsonb
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_entity_id uuid := p_subject_id::uuid;
    v_approve boolean := coalesce((p_output ->> 'approve')::boolean, false);
begin
    perform from taxonomy_demo.entity as e
    where e.entity_id = v_entity_id and e.status = 'placed'
    for update;
    if not found then
        return;
    end if;
    update taxonomy_demo.placement as p
    set leaf = case when v_approve then p.leaf else coalesce(p_output ->> 'category', p.leaf) end,
        method = case when v_approve then p.method else 'review' end,
        needs_review = false,
        reviewed_at = clock_timestamp(),
        review_note = left(p_output ->> 'note', 500)
    where p.entity_id = v_entity_id;
    update taxonomy_demo.entity set status = 'reviewed' where entity_id = v_entity_id;
end;
$$;
comment on function taxonomy_demo.placement_reviewed(bigint, text, jsonb, jsonb) is
'on_complete of review_placement: a person approved the placement or chose another leaf; '
'entity -> reviewed.';
