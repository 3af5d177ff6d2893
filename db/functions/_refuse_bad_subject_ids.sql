-- _refuse_bad_subject_ids: the one rule for subject ids of explicit work (submit, spawn, the
-- inbox, submit_many): present, not empty, at most 1024 bytes. Raises TR012 for the first bad one.
create or replace function turing._refuse_bad_subject_ids(p_actor text, p_subject_ids text[])
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
    v_item bigint;
    v_id text;
    -- why: "element n: " only when there are several, so submit() says what it always said.
    v_where text := '';
begin
    -- why: the (actor_id, subject_id) indexes take keys up to ~2.7 kB; a longer id would fail
    -- deep inside an insert. Discovery leaves the same rows out alone (_discover).
    select s.n, s.id into v_item, v_id
    from unnest(p_subject_ids) with ordinality as s (id, n)
    where s.id is null or s.id = '' or pg_catalog.octet_length(s.id) > 1024
    order by s.n
    limit 1;
    if v_item is null then
        return;
    end if;
    if pg_catalog.cardinality(p_subject_ids) > 1 then
        v_where := pg_catalog.format('element %s: ', v_item);
    end if;
    if v_id is null or v_id = '' then
        raise exception '%a ticket for actor "%" needs a subject_id, got %', v_where, p_actor,
            case when v_id is null then 'NULL' else 'an empty string' end
            using errcode = 'TR012',
            hint = 'Give the key of the domain row it is about, e.g. the job''s id 42.';
    end if;
    raise exception '%subject_id for actor "%" is % bytes long; at most 1024', v_where, p_actor,
        pg_catalog.octet_length(v_id)
        using errcode = 'TR012',
        hint = 'Use the key of the domain row (an id), not its content.';
end;
$$;

comment on function turing._refuse_bad_subject_ids(text, text[]) is
'Internal: raises TR012 for the first subject id of p_subject_ids that is NULL, empty or longer '
'than 1024 bytes (the (actor_id, subject_id) indexes cannot take much longer keys), naming its '
'element when there are several; returns quietly when all are good. The one rule for explicit '
'work: _create_ticket (submit, spawn, inbox) and submit_many call it.';
