-- 0022: actors can be removed (turing.remove_actor). The actor's row leaves turing.actors, so
-- every live table and view (claims, discovery, the dashboard, alerts, check, graph) forgets
-- it without a filter in each; what it did stays in ticket_history, whose rows keep their
-- actor_id, and the name they show comes from turing.removed_actors. An actor_id is never
-- reused (identity), so the same name registered again is a new actor with a fresh history.

create table turing.removed_actors (
    actor_id integer primary key,
    name text not null,
    kind text not null,
    model text not null,
    definition jsonb not null,
    registered_at timestamptz not null,
    removed_at timestamptz not null default clock_timestamp(),
    removed_by text not null default session_user,
    cancelled integer not null default 0
);

-- why: `turing tickets --actor NAME` and the tickets view look a removed actor up by name.
create index removed_actors_name on turing.removed_actors (name);

comment on table turing.removed_actors is
'Actors removed with remove_actor(): the name, kind, model and last definition their history '
'keeps showing (turing.tickets reads names from turing.actors and from here). One row per '
'removal; the same name may be removed several times, each a different actor_id.';
comment on column turing.removed_actors.definition is
'The actor''s row as it was when removed (to_jsonb of turing.actors).';
comment on column turing.removed_actors.cancelled is
'Open tickets remove_actor cancelled (with p_cancel_open) before removing the actor.';

-- why: these tables are derived from the history (counts, hourly roll-up, daily metrics), and
-- the history outlives its actor. ticket_counts must keep counting the removed actor's rows
-- (prune_history deletes them later, and the counts trigger folds that in by actor_id), so its
-- key cannot point at turing.actors any more; the roll-up and the metrics read the history and
-- would fail on a removed actor's rows. The views join turing.actors, so they show live actors
-- only. Dropping the keys also spares their check on every counted statement.
alter table turing.ticket_counts drop constraint ticket_counts_actor_id_fkey;
alter table turing.throughput_hourly drop constraint throughput_hourly_actor_id_fkey;
alter table turing.metrics_daily drop constraint metrics_daily_actor_id_fkey;

-- why: the discovery state is the live actor's; it goes with the row.
alter table turing.actor_discovery drop constraint actor_discovery_actor_id_fkey;
alter table turing.actor_discovery add constraint actor_discovery_actor_id_fkey
foreign key (actor_id) references turing.actors (actor_id) on delete cascade;
