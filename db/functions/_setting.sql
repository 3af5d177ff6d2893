-- _setting: read one engine setting (turing.settings) with a fallback.
create or replace function turing._setting(p_key text, p_default text)
returns text
language sql
stable
set search_path = ''
as $$
    select coalesce((select s.value from turing.settings as s where s.key = p_key), p_default);
$$;

comment on function turing._setting(text, text) is
'Internal: the value of turing.settings.key, or p_default when unset.';
