-- claim_batch: the runner's one call to get work: claims up to p_limit pending tickets in one
-- statement and starts the first p_start_now of them (the runner's free slots); the others wait
-- in the runner, leased, until start_tickets. Each ticket names its actor's revision; the
-- definition comes once per revision the runner lacks; a started ticket its own timeout (fixed
-- at its start: an auto timeout moves with the measurements). Discovery is not done here (top_up).
create or replace function turing.claim_batch(
    p_model text,
    p_worker text,
    p_limit integer,
    p_known_revisions bigint[],
    p_start_now integer,
    p_cold boolean default false,
    p_stage text default null
)
returns table (
    ticket_id bigint,
    lease_token uuid,
    batch_id bigint,
    subject_id text,
    input jsonb,
    attempt integer,
    chain_id bigint,
    started boolean,
    timeout_s double precision,
    actor_revision bigint,
    actor jsonb
)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_now timestamptz;
    v_batch bigint := pg_catalog.nextval('turing.batch_id_seq');
    v_secret text := pg_catalog.gen_random_uuid()::text;
    v_claimed integer;
    v_plan_mode text := pg_catalog.current_setting('plan_cache_mode');
    v_rank integer := turing._stage_rank(p_stage);
    -- why: the stages this runner runs, looked up once instead of ranking each ticket's actor
    v_stages text [] := array(
        select s.stage from turing.stages as s where s.rank >= turing._stage_rank(p_stage)
    );
begin
    if p_stage is not null and v_rank is null then
        raise exception 'claim_batch: unknown stage "%"', p_stage
            using errcode = 'TR012',
            hint = 'Write one of develop, stabilize, prove, qa, production.';
    end if;
    if p_limit is null or p_limit < 1 or p_limit > 10000 then
        raise exception 'claim_batch: p_limit must be between 1 and 10000, got %', p_limit
            using errcode = 'TR012';
    end if;
    -- why: a claim is the one write that may be lost in a server crash without harm, so its
    -- transaction does not wait for the WAL flush. A lost claim leaves its tickets pending, as
    -- if it never happened: the runner's late result and heartbeats are refused by the lease
    -- fence and the work is claimed again. The next synchronous commit (any completion) makes
    -- it durable anyway, since the WAL is flushed in order.
    perform pg_catalog.set_config('synchronous_commit', 'off', true);
    v_now := clock_timestamp();

    -- why: a cached generic plan for the claim. In the default mode the planner kept choosing
    -- custom plans and planned this statement anew on every call (0.37 ms of the 0.77 ms it
    -- took at batch 1); the generic plan is the same scan of ticket_open_claimable. Scoped to
    -- this statement, so work_queries and on_complete functions keep the caller's setting.
    perform pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true);
    return query
    with picked as (
        select o.ticket_id, o.priority, o.run_after
        from turing.ticket_open as o
        where o.model = p_model
            and o.status = 'pending'
            and o.run_after <= v_now
            and exists (
                select from turing.actors as a
                where a.actor_id = o.actor_id and a.enabled
                    -- why: a raq ticket runs at any stage (its run names the version); other
                    -- work needs the current version at the runner's stage or later, or a
                    -- production version to run instead.
                    and (
                        o.raq_run_id is not null
                        or v_rank is null
                        or a.stage = any(v_stages)
                        or a.production_version is not null
                    )
            )
        -- why: the order of the partial index ticket_open_claimable, so the scan stops after
        -- p_limit rows.
        order by o.priority desc, o.run_after, o.ticket_id
        limit p_limit
        -- why: SKIP LOCKED lets concurrent runners claim disjoint rows without waiting on each
        -- other (row-level, never a global lock).
        for update skip locked
    ),
    ranked as (
        select
            p.ticket_id,
            row_number() over (order by p.priority desc, p.run_after, p.ticket_id) as rank
        from picked as p
    ),
    starting as (
        select array(select r.ticket_id from ranked as r where r.rank <= p_start_now) as ids
    ),
    claimed as (
        update turing.ticket_open as o
        set status = 'running',
            claimed_at = greatest(v_now, o.created_at),
            -- why: the attempt starts when its call starts (invariant 12); tickets claimed
            -- ahead of a free slot get started_at from start_tickets.
            started_at = case
                when o.ticket_id = any(s.ids) then greatest(v_now, o.created_at)
            end,
            -- why: fixed here for the attempt's whole run, so heartbeat and reap use the
            -- deadline the runner was given even if the auto value moves meanwhile.
            timeout = case
                when o.ticket_id = any(s.ids)
                    then case when p_cold then a.cold_timeout else a.warm_timeout end
            end,
            worker = p_worker,
            batch_id = v_batch,
            -- why: the version whose definition the runner gets with this claim (the revision
            -- below), so the attempt's answer can be traced to the prompt that made it: a raq
            -- run's version; the current one when it is at the runner's stage or later; else
            -- the last one promoted to production (it keeps running while the current climbs).
            actor_version = case
                when o.raq_run_id is not null then (
                    select r.version from turing.raq_runs as r
                    where r.raq_run_id = o.raq_run_id
                )
                when v_rank is null or a.stage = any(v_stages) then a.version
                else a.production_version
            end,
            -- why: one random secret per claim, and per ticket its md5 with the ticket id: as
            -- unguessable as a random uuid for anyone without the secret, and distinct per
            -- ticket. gen_random_uuid() per row read /dev/urandom once per row on builds
            -- without OpenSSL (the embedded server): ~10 us a ticket in syscalls.
            lease_token = pg_catalog.md5(v_secret || o.ticket_id::text)::uuid,
            lease_expires_at = greatest(v_now, o.created_at) + case
                when o.ticket_id = any(s.ids) then least(
                    a.lease, case when p_cold then a.cold_timeout else a.warm_timeout end
                )
                else a.unstarted_lease
            end,
            heartbeat_at = v_now
        from turing.actor_timeouts as a, starting as s
        -- why: = any(array(...)) makes the planner fetch the picked rows by key; a join with
        -- the picked CTE was planned as a hash join over a sequential scan of all open work
        -- (the whole pending buffer) on every claim.
        where o.ticket_id = any(array(select p.ticket_id from picked as p))
            and a.actor_id = o.actor_id
        returning
            o.ticket_id, o.lease_token, o.batch_id, o.subject_id, o.input, o.attempt,
            o.chain_id, o.started_at is not null as started,
            extract(epoch from o.timeout)::double precision as timeout_s, o.priority,
            o.run_after, o.actor_id, o.actor_version, o.raq_run_id,
            -- why: the key the runner caches the definition under: the actor's revision for
            -- its current definition; a raq run's own revision; minus the revision for the
            -- production version run instead of the current one (promote and demote change
            -- the revision, so at one revision this names one version).
            case
                when o.raq_run_id is not null then (
                    select r.revision from turing.raq_runs as r
                    where r.raq_run_id = o.raq_run_id
                )
                when o.actor_version = a.version then a.revision
                else -a.revision
            end as revision
    )
    select
        c.ticket_id, c.lease_token, c.batch_id, c.subject_id, c.input, c.attempt, c.chain_id,
        c.started, c.timeout_s, c.revision,
        -- why: decoding the definition on every row cost ~12 % of a batch-50 cycle in the
        -- runner; it is sent on one row per revision, and not at all for revisions the runner
        -- already holds.
        case
            when
                c.revision <> all(coalesce(p_known_revisions, '{}'))
                and row_number() over (partition by c.revision order by c.ticket_id) = 1
                then turing._actor_runtime(c.actor_id, c.actor_version, c.raq_run_id)
        end
    from claimed as c
    order by c.priority desc, c.run_after, c.ticket_id;

    get diagnostics v_claimed = row_count;
    perform pg_catalog.set_config('plan_cache_mode', v_plan_mode, true);
    -- why: checked only when nothing was claimed, so the common case pays no extra query.
    if v_claimed = 0
        and not exists (select from turing.actors as a where a.model = p_model)
        -- why: a raq run on another model (turing raq --model) is work for that model too
        and not exists (select from turing.ticket_open as o where o.model = p_model) then
        raise exception 'unknown model "%": no actor uses it', p_model
            using errcode = 'TR003',
            hint = 'Known models: ' || coalesce(
                (select string_agg(distinct a.model, ', ') from turing.actors as a), 'none'
            ) || '. Register an actor with this model, or start the runner with one of these.';
    end if;
    if v_claimed > 0 then
        insert into turing.batches (batch_id, worker, model, claimed_at, size)
        values (v_batch, p_worker, p_model, v_now, v_claimed);
    end if;
    update turing.runners as r
    set last_seen_at = v_now, current_model = p_model,
        status = case when r.status = 'lost' then 'running' else r.status end,
        current_batch_id = case when v_claimed > 0 then v_batch else r.current_batch_id end
    where r.worker = p_worker;
end;
$$;

comment on function turing.claim_batch(text, text, integer, bigint[], integer, boolean, text) is
'Claim up to p_limit pending tickets of the enabled actors of model p_model for worker p_worker '
'(FOR UPDATE SKIP LOCKED: concurrent runners never share a ticket and never wait on each other) '
'and start the first p_start_now of them in claim order (started = true): the others wait in the '
'runner, leased, and start with start_tickets(), so their timeout and latency count from their '
'real start. A started ticket gets its timeout then (timeout_s; turing.actor_timeouts: the '
'cold one when p_cold says the runner must load the model first), fixed for the attempt and '
'stored on the ticket, and a hard deadline at started_at + timeout. Each ticket gets a lease '
'(lease_token, lease_expires_at = now + min(lease, timeout); unstarted_lease for one not '
'started). It does not discover: top_up() (a runner''s discovery thread, tick) keeps the '
'buffers filled, so a slow work_query never delays a claim. Each row carries its '
'actor_revision; actor (the definition the runner needs: name, kind, model, prompt_template, '
'output_schema, script, sql_function, options, system_prompt, think, timeout_s (null when '
'auto), lease_s) is set on '
'one row per revision that is not in p_known_revisions and null otherwise, so a runner decodes '
'each definition once and caches it. Raises TR003 for a model no actor uses. The calling '
'transaction commits with synchronous_commit = off: a claim lost in a server crash is harmless '
'(the tickets are still pending, the lease fence refuses the late result), and it saves one WAL '
'flush per claim. p_stage (null = every stage; turing-runner passes production unless '
'--stage): only actors whose current version is at that stage or later run their current '
'version; an actor with an earlier version in production runs that one (its recorded '
'definition, under the key -revision, and actor_version says which); others are not claimed. '
'A raq ticket runs its run''s version on its run''s model at any stage. Raises TR012 for an '
'unknown stage.';

-- claim_batch (3 arguments): the release 0.1 form, every row with its whole actor definition.
-- Kept for one release so runners of 0.1 go on working during an upgrade. Deprecated.
create or replace function turing.claim_batch(p_model text, p_worker text, p_limit integer)
returns table (
    ticket_id bigint,
    lease_token uuid,
    lease_expires_at timestamptz,
    deadline timestamptz,
    batch_id bigint,
    actor text,
    kind text,
    model text,
    subject_id text,
    input jsonb,
    attempt integer,
    max_attempts integer,
    chain_id bigint,
    chain_depth integer,
    last_error text,
    prompt_template text,
    output_schema jsonb,
    script text,
    sql_function text,
    options jsonb,
    timeout_s double precision,
    lease_s double precision
)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_ids bigint [];
begin
    -- why: runners of 0.1 start every claimed ticket at once and do their own discovery
    -- through the claim.
    perform turing._top_up(p_model, p_limit);
    select array_agg(c.ticket_id) into v_ids
    from turing.claim_batch(p_model, p_worker, p_limit, '{}', p_limit) as c;
    -- why: a second statement, so its snapshot sees the claimed rows with their leases.
    return query
    select
        o.ticket_id, o.lease_token, o.lease_expires_at, o.started_at + o.timeout, o.batch_id,
        a.name, a.kind, a.model, o.subject_id, o.input, o.attempt, a.max_attempts, o.chain_id,
        o.chain_depth, o.last_error, a.prompt_template, a.output_schema, a.script,
        a.sql_function, a.options, extract(epoch from o.timeout)::double precision,
        extract(epoch from least(a.lease, o.timeout))::double precision
    from turing.ticket_open as o
    inner join turing.actors as a on a.actor_id = o.actor_id
    where o.ticket_id = any(v_ids)
    order by o.priority desc, o.ticket_id;
end;
$$;

comment on function turing.claim_batch(text, text, integer) is
'Deprecated (release 0.1 form, dropped in the next release): discovery through _top_up, then '
'claim_batch(p_model, p_worker, p_limit, ''{}'', p_limit) (every ticket started at once) with '
'the whole actor definition, the lease expiry and the deadline on every row.';
