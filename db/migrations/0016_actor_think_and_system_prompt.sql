-- 0016: two fields of an llm actor's call. system_prompt: the system message sent before the
-- rendered prompt. think: whether a thinking model thinks before it answers; off by default,
-- because a structured answer gains little from it and a thinking model spends num_predict on
-- its thoughts and is cut off before the JSON.

alter table turing.actors add column system_prompt text;
comment on column turing.actors.system_prompt is
'llm: the system message sent before the prompt, rendered from the ticket input like '
'prompt_template ({name} placeholders); none when NULL.';

-- why: a domain over text, so YAML's and JSON's booleans (think: false) are read as their
-- text, as a level is, and one value set holds wherever an actor is written.
create domain turing.actor_think as text
constraint actor_think_level check (value in ('false', 'true', 'low', 'medium', 'high'));
comment on domain turing.actor_think is
'Whether a thinking model thinks before answering: false, true, or a level low, medium, high.';

alter table turing.actors add column think turing.actor_think not null default 'false';
comment on column turing.actors.think is
'llm: whether a thinking model thinks before answering: false (the default: structured answers '
'need no thoughts, and thoughts count against num_predict), true, or a level low, medium, '
'high (models that take one). Sent as Ollama''s think; an OpenAI-compatible server gets a level '
'as reasoning_effort.';
