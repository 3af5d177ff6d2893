-- _setting: read one engine setting (turing.settings) with a fallback.
create or replace function turing._setting(p_key text, p_default text)
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
    -- why: PL/pgSQL keeps this plan for the session; as a SQL function (which cannot be inlined
    -- with its pinned search_path) it was planned again on every call, and the claim and the
    -- completion paths call it on every batch.
    return coalesce((select s.value from turing.settings as s where s.key = p_key), p_default);
end;
$$;

comment on function turing._setting(text, text) is
'Internal: the value of turing.settings.key, or p_default when unset.';
