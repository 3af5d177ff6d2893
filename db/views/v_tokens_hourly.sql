-- v_tokens_hourly: what the models did per hour, from the call records: calls, prompt and
-- answer tokens, and generation speed, the current hour and the 24 before.
create view turing.v_tokens_hourly as
select
    c.model,
    date_trunc('hour', c.at) as hour,
    count(*) as calls,
    sum(c.prompt_eval_count) as prompt_tokens,
    sum(c.eval_count) as output_tokens,
    round(sum(c.eval_duration) / 1e9, 3) as eval_seconds,
    -- why: only calls whose server measured generation (Ollama's eval_duration) count towards
    -- the speed; an OpenAI-compatible server reports tokens without it.
    round(
        (sum(c.eval_count) filter (where c.eval_duration > 0))
        / nullif(sum(c.eval_duration) filter (where c.eval_duration > 0) / 1e9, 0),
        1
    ) as tokens_per_s,
    round(sum(c.load_duration) / 1e9, 3) as load_seconds
from turing.actors as a
-- why: per actor through calls_actor_at, so a read costs the last 25 hours only
inner join turing.calls as c
    on
        a.actor_id = c.actor_id
        and c.at >= date_trunc('hour', statement_timestamp()) - interval '24 hours'
group by c.model, date_trunc('hour', c.at);

comment on view turing.v_tokens_hourly is
'Per model and hour (the current hour and the 24 before), from turing.calls: calls, '
'prompt_tokens, output_tokens, eval_seconds (generation time the server measured), '
'tokens_per_s (output tokens per second of generation, over the calls that report '
'eval_duration; NULL for servers that do not) and load_seconds (model loads).';
