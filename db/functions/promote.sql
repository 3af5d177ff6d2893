-- promote: move an actor's current version up the stages, when the gates it passes have their
-- evidence; records who, when and the evidence, or refuses with what is missing.
create or replace function turing.promote(
    p_actor text,
    p_to_stage text default null,
    p_note text default null
)
returns table (actor text, version integer, from_stage text, to_stage text, evidence jsonb)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_actor turing.actors;
    v_to text := p_to_stage;
    v_evidence jsonb := '{}'::jsonb;
    v_run turing.raq_runs;
    v_qa record;
begin
    -- why: FOR UPDATE serialises promotions of one actor with set_actor (a new version).
    select a.* into v_actor from turing.actors as a
    where a.actor_id = turing._actor_id(p_actor) for update;
    if v_to is null then
        select s.stage into v_to from turing.stages as s
        where s.rank = turing._stage_rank(v_actor.stage) + 1;
        if v_to is null then
            raise exception 'actor "%" version % is already in production', p_actor,
                v_actor.version using errcode = 'TR015',
                hint = 'Production is the last stage.';
        end if;
    elsif turing._stage_rank(v_to) is null then
        raise exception 'unknown stage "%"', v_to using errcode = 'TR012',
            hint = 'Write one of develop, stabilize, prove, qa, production.';
    end if;
    if turing._stage_rank(v_to) <= turing._stage_rank(v_actor.stage) then
        raise exception 'actor "%" version % is at % already; promote moves it up',
            p_actor, v_actor.version, v_actor.stage using errcode = 'TR015',
            hint = 'Use turing actor demote ' || p_actor || ' --to ' || v_to
            || ' to move it down.';
    end if;

    -- the gate of stabilize: a passing raq run of this version on the actor's own model
    if turing._stage_rank(v_actor.stage) <= 2 and turing._stage_rank(v_to) > 2 then
        select * into v_run from turing.raq_runs as r
        where r.actor_id = v_actor.actor_id and r.version = v_actor.version
            and r.model = v_actor.model and r.finished_at is not null
        order by r.passed desc, r.raq_run_id desc
        limit 1;
        if v_run.raq_run_id is null then
            raise exception 'actor "%" version % cannot leave stabilize: no raq run of this '
                'version on % yet', p_actor, v_actor.version, v_actor.model
                using errcode = 'TR015',
                hint = 'Run turing raq ' || p_actor || ' --n 20 --runs 3 with a runner up.';
        elsif not v_run.passed then
            raise exception 'actor "%" version % cannot leave stabilize: its last raq run (%) '
                'reached agreement % with failure rate %, below the threshold %', p_actor,
                v_actor.version, v_run.raq_run_id, round(v_run.agreement::numeric, 3),
                round(v_run.failure_rate::numeric, 3), v_actor.raq_threshold
                using errcode = 'TR015',
                hint = 'Make the actor more repeatable (a new version), or lower raq_threshold.';
        end if;
        v_evidence := v_evidence || jsonb_build_object('raq', jsonb_build_object(
            'raq_run_id', v_run.raq_run_id, 'agreement', v_run.agreement,
            'threshold', v_run.threshold, 'n', v_run.n, 'runs', v_run.runs,
            'failure_rate', v_run.failure_rate
        ));
    end if;

    -- the gate of qa: a passing sample of a person's reviews of this version
    if turing._stage_rank(v_actor.stage) <= 4 and turing._stage_rank(v_to) > 4 then
        select * into v_qa from turing.qa_summary(p_actor);
        if v_qa.right_n + v_qa.wrong_n < v_qa.qa_sample then
            raise exception 'actor "%" version % cannot leave qa: % decided QA reviews of this '
                'version, % needed', p_actor, v_actor.version, v_qa.right_n + v_qa.wrong_n,
                v_qa.qa_sample using errcode = 'TR015',
                hint = 'Review a sample: turing qa ' || p_actor || ' --sample '
                || v_qa.qa_sample || '.';
        elsif not v_qa.passed then
            raise exception 'actor "%" version % cannot leave qa: pass rate % (needs >= %), '
                'Wilson 95 %% lower bound % (needs >= %) over % decided reviews', p_actor,
                v_actor.version, round(v_qa.pass_rate::numeric, 3), v_qa.qa_threshold,
                round(v_qa.wilson_low::numeric, 3), v_qa.qa_lower_bound,
                v_qa.right_n + v_qa.wrong_n using errcode = 'TR015',
                hint = 'Review more answers (turing qa ' || p_actor || '), or improve the '
                'actor (a new version) and review again.';
        end if;
        v_evidence := v_evidence || jsonb_build_object('qa', to_jsonb(v_qa));
    end if;

    insert into turing.promotions (actor_id, version, from_stage, to_stage, evidence, note)
    values (v_actor.actor_id, v_actor.version, v_actor.stage, v_to, v_evidence, p_note);
    -- why: a new revision, so runners take the definition their stage now runs (claim_batch
    -- keys a definition by revision).
    update turing.actors as a
    set stage = v_to,
        production_version = turing._production_version(a.actor_id),
        revision = nextval('turing.actor_revision_seq')
    where a.actor_id = v_actor.actor_id;
    return query select p_actor, v_actor.version, v_actor.stage, v_to, v_evidence;
end;
$$;

comment on function turing.promote(text, text, text) is
'Move the current version of actor p_actor to p_to_stage (default: the next stage), checking '
'the gates it passes for this version''s evidence: leaving stabilize needs a finished raq run '
'on the actor''s model with agreement >= raq_threshold; leaving qa needs qa_summary passed '
'(qa_sample decided reviews, pass rate >= qa_threshold, Wilson lower bound >= '
'qa_lower_bound). Records the promotion (who, when, evidence, p_note) in turing.promotions. '
'Raises TR015 with what is missing when a gate is not met or the stage is not higher, TR012 '
'for an unknown stage, TR002 for an unknown actor.';
