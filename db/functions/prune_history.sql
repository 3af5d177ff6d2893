-- prune_history: apply the retention policy in small batches (short locks, no long
-- transaction holding back vacuum).
create or replace function turing.prune_history(p_batch integer default 5000)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_policy record;
    v_rows bigint;
    v_total bigint := 0::bigint;
    v_detail jsonb := '{}'::jsonb;
begin
    for v_policy in
        select r.status, r.keep from turing.retention as r
        where r.keep is not null and r.status <> 'maintenance_log'
        order by r.status
    loop
        -- why: delete at most p_batch expired rows of one status through the (status,
        -- finished_at) index; each call is a bounded, short statement and autovacuum reuses the
        -- space, so history neither bloats nor takes long locks. tick() calls it repeatedly.
        with gone as (
            delete from turing.ticket_history as h
            where h.ticket_id in (
                select x.ticket_id from turing.ticket_history as x
                where x.status = v_policy.status and x.finished_at < v_started - v_policy.keep
                limit p_batch
            )
            returning h.ticket_id, h.actor_id, h.subject_id, h.status, h.finished_at
        ),
        -- why: a call record is kept as long as the attempt it belongs to.
        calls as (
            delete from turing.calls as c
            where c.ticket_id in (select g.ticket_id from gone as g)
        ),
        -- why: a dead attempt that retention deletes is no longer a dead letter either.
        handled as (
            delete from turing.dead_letters as d
            where v_policy.status = 'dead' and d.ticket_id in (select g.ticket_id from gone as g)
        ),
        -- why: discovery skips finished subjects by their history; what retention deletes of
        -- it is kept as a done marker, so pruning never makes finished work run again.
        done as (
            insert into turing.subjects_done as s (
                actor_id, subject_id, ticket_id, status, finished_at
            )
            select distinct on (g.actor_id, g.subject_id)
                g.actor_id, g.subject_id, g.ticket_id, g.status, g.finished_at
            from gone as g
            where g.status in ('completed', 'cancelled')
                -- why: a removed actor discovers nothing again (its actor_id is never reused)
                and g.actor_id in (select a.actor_id from turing.actors as a)
            order by g.actor_id, g.subject_id, g.finished_at desc
            on conflict (actor_id, subject_id) do update set
                ticket_id = excluded.ticket_id, status = excluded.status,
                finished_at = excluded.finished_at
            where s.finished_at < excluded.finished_at
        )
        select count(*) into v_rows from gone;
        v_total := v_total + v_rows;
        v_detail := v_detail || jsonb_build_object(v_policy.status, v_rows);
    end loop;

    delete from turing.chain_steps as c
    where c.ctid in (
        select x.ctid from turing.chain_steps as x
        where x.created_at < v_started - coalesce(
            (select r.keep from turing.retention as r where r.status = 'completed'), interval '30 days'
        )
        limit p_batch
    );
    -- why: a hand-off is followed while the ticket it points to (the parent of what discover
    -- creates) is kept: as long as completed history.
    delete from turing.hand_offs as h
    where h.ctid in (
        select x.ctid from turing.hand_offs as x
        where x.handed_at < v_started - coalesce(
            (select r.keep from turing.retention as r where r.status = 'completed'), interval '30 days'
        )
        order by x.handed_at
        limit p_batch
    );
    -- why: a prompt is kept while a call uses it, and for the completed retention after its
    -- last use (so one unused for a moment, e.g. between a prune and the next call with the
    -- same system prompt, is not rewritten); _record_calls locks a prompt it reuses, and this
    -- delete rechecks last_used_at of a row it had to wait for.
    delete from turing.prompts as p
    where p.prompt_id in (
        select x.prompt_id from turing.prompts as x
        where x.last_used_at < v_started - coalesce(
            (select r.keep from turing.retention as r where r.status = 'completed'), interval '30 days'
        )
            and not exists (select from turing.calls as c where c.prompt_id = x.prompt_id)
            and not exists (select from turing.calls as c where c.system_prompt_id = x.prompt_id)
        limit p_batch
    )
        and p.last_used_at < v_started - coalesce(
            (select r.keep from turing.retention as r where r.status = 'completed'), interval '30 days'
        );
    delete from turing.maintenance_log as l
    where l.log_id in (
        select x.log_id from turing.maintenance_log as x
        where x.started_at < v_started - coalesce(
            (select r.keep from turing.retention as r where r.status = 'maintenance_log'),
            interval '14 days'
        )
        order by x.log_id
        limit p_batch
    );
    insert into turing.maintenance_log (operation, started_at, rows_affected, detail)
    values ('prune_history', v_started, v_total, v_detail);
    return v_total;
end;
$$;

comment on function turing.prune_history(integer) is
'Delete finished tickets older than their status''s keep in turing.retention, at most p_batch '
'rows per status per call (dead: kept until handled by default) with their call records '
'(turing.calls), plus old chain_steps, hand_offs, maintenance_log rows and the prompts no '
'call uses any more (unused for the completed retention). Completed and cancelled subjects '
'it deletes are kept in subjects_done, so discovery never runs finished work again because '
'its history was pruned. Returns tickets deleted; tick() calls it every run.';
