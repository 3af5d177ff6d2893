-- _validate_work_query: refuse anything but one read-only SELECT that returns subject_id,
-- with a message that says what is wrong and what to write instead.
create or replace function turing._validate_work_query(p_actor text, p_work_query text)
returns text
language plpgsql
-- why: stable, so that even a statement the checks below missed could not write (a stable
-- function's SQL runs read-only); it only plans the query.
stable
set search_path = ''
as $$
declare
    v_query text := btrim(p_work_query);
    v_state text;
    v_message text;
    v_head text;
    v_cursor refcursor;
begin
    -- a trailing semicolon is harmless; anything after one is a second statement
    v_query := regexp_replace(v_query, ';\s*$', '');
    if v_query = '' then
        raise exception 'work_query of actor "%" is empty', p_actor
            using errcode = 'TR001',
            hint = 'Write one SELECT that returns a subject_id column, e.g. '
            'select id as subject_id, title from jobs where status = ''new''.';
    end if;
    v_head := lower(substring(regexp_replace(v_query, '^(\s|--[^\n]*\n|/\*.*?\*/)*', '') from 1 for 6));
    if v_head not in ('select', 'with  ', 'with', 'values', '(selec') and v_head !~ '^with\s' then
        raise exception 'work_query of actor "%" must be a SELECT, got: %', p_actor, left(v_query, 60)
            using errcode = 'TR001',
            hint = 'A work_query only reads: it returns the subjects waiting for this actor. '
            'The actor writes its results in its on_complete function.';
    end if;
    if v_query ~* '\mfor\s+(update|share|no\s+key\s+update|key\s+share)\M' then
        raise exception 'work_query of actor "%" must not lock rows (FOR UPDATE/SHARE)', p_actor
            using errcode = 'TR001',
            hint = 'Turing locks tickets, not domain rows; remove the locking clause.';
    end if;
    -- why: opening a cursor on the query as a subquery plans it without running it and proves
    -- it is exactly one SELECT that returns subject_id: a data-modifying statement is refused
    -- inside a subquery, and a second statement smuggled after a `)` cannot be a cursor (EXPLAIN
    -- or EXECUTE would have run it). It runs as the caller: register_actor calls it as run_as.
    begin
        open v_cursor for execute format('select q.subject_id from (%s) as q limit 0', v_query);
        close v_cursor;
    exception
        when undefined_column then
            get stacked diagnostics v_message = message_text;
            if v_message ~ 'subject_id' then
                raise exception 'work_query of actor "%" returns no subject_id column', p_actor
                    using errcode = 'TR001',
                    hint = 'Alias the key of the domain row: select id as subject_id, ...';
            end if;
            raise exception 'work_query of actor "%" does not plan: %', p_actor, v_message
                using errcode = 'TR001';
        when ambiguous_column then
            raise exception 'work_query of actor "%" returns more than one subject_id column', p_actor
                using errcode = 'TR001';
        when others then
            get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
            if v_state in ('42601', '42P11') or v_message ~* 'data-modifying|syntax|multi-query' then
                raise exception 'work_query of actor "%" is not one read-only SELECT: %', p_actor, v_message
                    using errcode = 'TR001',
                    hint = 'Write a single SELECT (or WITH ... SELECT) without DML and without a '
                    'second statement.';
            end if;
            raise exception 'work_query of actor "%" does not plan: % (SQLSTATE %)',
                p_actor, v_message, v_state
                using errcode = 'TR001',
                hint = 'Run the query in psql to see the error; check table and column names.';
    end;
    return v_query;
end;
$$;

comment on function turing._validate_work_query(text, text) is
'Internal: returns the normalised work_query, or raises TR001 when it is not one read-only SELECT '
'returning subject_id (DML, two statements, FOR UPDATE, no subject_id, or a query that does not '
'plan). Plans it as the caller, never running it: register_actor calls it as the run_as role.';
