-- 0020: every LLM call is recorded in the transaction that ends its attempt: the rendered
-- prompt (each distinct text stored once, in turing.prompts), the raw answer, the output it
-- parsed to when that was not saved, model, options and the counts and durations the model
-- server returned. complete_batch and fail_batch gain p_calls; their old forms are dropped.
create table turing.prompts (
    prompt_id bigint generated always as identity primary key,
    sha256 bytea not null,
    text text not null,
    last_used_at timestamptz not null default clock_timestamp(),
    -- why: a prompt is looked up by its hash when a call is recorded (insert … on conflict).
    constraint prompts_sha256_key unique (sha256)
);
-- why: prune_history looks for prompts unused for the retention by this, not by a scan.
create index prompts_last_used_at on turing.prompts (last_used_at);

comment on table turing.prompts is
'Rendered prompts (and system prompts) of LLM calls, each distinct text once, named by its '
'SHA-256: a system prompt shared by a million calls is stored once. Written by _record_calls '
'in the transaction that ends the attempt; prune_history deletes a prompt no call uses any '
'more once it has been unused as long as completed history is kept.';
comment on column turing.prompts.sha256 is 'SHA-256 of the UTF-8 text: the key a call finds it by.';
comment on column turing.prompts.last_used_at is
'When a call last used this text. Recording a call updates it (the row lock that makes a '
'concurrent prune wait and then see the new use), and prune_history keeps a prompt until it '
'has been unused for the retention of completed tickets.';

create table turing.calls (
    ticket_id bigint primary key,
    actor_id integer not null,
    model text not null,
    options jsonb not null default '{}'::jsonb,
    system_prompt_id bigint,
    prompt_id bigint not null,
    answer text,
    output jsonb,
    load_duration bigint,
    prompt_eval_count integer,
    prompt_eval_duration bigint,
    eval_count integer,
    eval_duration bigint,
    total_duration bigint,
    at timestamptz not null default clock_timestamp()
);
-- why: prune_history finds the prompts no call uses any more through these two.
create index calls_prompt on turing.calls (prompt_id);
create index calls_system_prompt on turing.calls (system_prompt_id)
where system_prompt_id is not null;
-- why: v_dashboard (tokens/s per actor, last hour) and v_tokens_hourly read a time range per
-- actor, not the whole table.
create index calls_actor_at on turing.calls (actor_id, at);

comment on table turing.calls is
'One row per LLM attempt that sent a call (the last try of it when transport retries made '
'several): what was asked, what came back, and what the model server measured. Written in '
'the transaction that ends the attempt (complete_batch / fail_batch p_calls), so a late '
'answer of a reaped attempt is no more recorded than saved. Kept as long as the ticket''s '
'history row (prune_history). No foreign keys, like the ticket tables; ticket_story(id) '
'tells one attempt''s story from it.';
comment on column turing.calls.ticket_id is 'The attempt (turing.tickets.ticket_id).';
comment on column turing.calls.model is 'The model the call named.';
comment on column turing.calls.options is
'The options sent (Ollama''s names: num_predict, temperature, num_ctx, …), with think and '
'keep_alive.';
comment on column turing.calls.system_prompt_id is
'The rendered system prompt (turing.prompts), if the actor has one.';
comment on column turing.calls.prompt_id is 'The rendered prompt (turing.prompts).';
comment on column turing.calls.answer is
'The raw answer text as the server sent it; kept for failed attempts too (not JSON, against '
'the schema, cut off). NULL when no answer came (a timeout, an HTTP error).';
comment on column turing.calls.output is
'What the answer parsed to when it was not saved (JSON that violated the output_schema); the '
'output of a completed attempt is the ticket''s output and is not stored twice.';
comment on column turing.calls.load_duration is
'Nanoseconds the server spent loading the model for this call (Ollama''s load_duration).';
comment on column turing.calls.prompt_eval_count is
'Prompt tokens evaluated (Ollama''s prompt_eval_count; OpenAI usage.prompt_tokens).';
comment on column turing.calls.prompt_eval_duration is
'Nanoseconds of prompt evaluation (Ollama''s prompt_eval_duration).';
comment on column turing.calls.eval_count is
'Answer tokens generated (Ollama''s eval_count; OpenAI usage.completion_tokens).';
comment on column turing.calls.eval_duration is
'Nanoseconds of generation (Ollama''s eval_duration): tokens/s is eval_count / eval_duration. '
'NULL where the server does not report it (OpenAI-compatible servers).';
comment on column turing.calls.total_duration is
'Nanoseconds of the whole call as the server measured it (Ollama''s total_duration); for an '
'OpenAI-compatible server, as the runner measured it.';
comment on column turing.calls.at is 'When the attempt ended and the call was recorded.';

drop function if exists turing.complete_batch(bigint[], uuid[], jsonb[]);
drop function if exists turing.fail_batch(bigint[], uuid[], text[], text[], boolean[]);
