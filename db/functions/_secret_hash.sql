-- _secret_hash: how a runner's secret is stored and compared (only this hash is kept).
create or replace function turing._secret_hash(p_secret text)
returns bytea
language sql
immutable
set search_path = ''
as $$
    select pg_catalog.sha256(pg_catalog.convert_to(p_secret, 'UTF8'))
$$;

comment on function turing._secret_hash(text) is
'Internal: the sha256 of a runner secret, the one form in which register_runner stores it and '
'heartbeat, release_worker and release_unheld check it.';
