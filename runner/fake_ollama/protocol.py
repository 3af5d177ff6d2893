"""The Ollama wire format: request parsing/validation, the request context, the reply writer.

Split from server.py so the server module is about routing, scheduling and faults, while this
one knows what real Ollama puts on the wire (field names, omitted fields, error texts).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import outputs
from .config import (
    RUNNER_OPTION_KEYS,
    DurationError,
    FakeConfig,
    FaultRule,
    ModelSpec,
    normalize_model_name,
    parse_keep_alive,
)
from .wire import SIMULATED_HEADER, Connection, Request

NDJSON = "application/x-ndjson"

# Go's FromMap: JSON numbers are float64, ints accept them (truncated), bools are separate.
OPTION_TYPES: dict[str, str] = {
    **dict.fromkeys(
        ("num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "mirostat", "num_ctx",
         "num_batch", "num_gpu", "main_gpu", "num_thread"),
        "integer",
    ),
    **dict.fromkeys(
        ("top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty",
         "frequency_penalty", "mirostat_tau", "mirostat_eta", "tfs_z"),
        "float32",
    ),
    **dict.fromkeys(
        ("use_mmap", "use_mlock", "numa", "low_vram", "vocab_only", "penalize_newline", "f16_kv"),
        "boolean",
    ),
    "stop": "strings",
}  # fmt: skip

# Faults that act at a position in the token stream ("after N chunks").
MID_STREAM_ACTIONS = frozenset({"stream_error", "malformed_ndjson", "stall", "crash_runner"})


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class GenContext:
    """Everything about one generation request that the handler stages share."""

    conn: Connection
    endpoint: str
    body: dict[str, Any]
    label: str  # model name exactly as the client sent it (echoed back like Ollama)
    model: str
    spec: ModelSpec
    stream: bool
    keep_alive: float | None
    options: dict[str, Any]
    fmt: Any
    prompt_text: str
    prompt_tokens: int
    payload: Any  # what identifies the prompt for the output hash
    is_load: bool
    think: Any
    raw: bool
    num_ctx: int
    runner_key: tuple[Any, ...]
    t_arrival: float
    rules: list[FaultRule] = field(default_factory=list)
    id: int = 0
    t_loaded: float = 0.0
    # which API the request came through: "ollama" (/api/…) or "openai" (/v1/…); it decides
    # the shape of the reply and of its errors
    api: str = "ollama"
    include_usage: bool = False  # openai, streamed: stream_options.include_usage


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat()


def go_json_error(exc: json.JSONDecodeError) -> str:
    """Roughly what Go's encoding/json says, so clients matching on the text see the same."""
    doc = exc.doc
    if exc.pos >= len(doc.rstrip()):
        return "unexpected EOF"
    return f"invalid character {doc[exc.pos]!r} looking for beginning of value"


def check_options(options: dict[str, Any]) -> None:
    for key, value in options.items():
        kind = OPTION_TYPES.get(key)
        if kind is None:
            continue  # unknown options are ignored (with a server-side warning) in Ollama
        ok = {
            "integer": isinstance(value, (int, float)) and not isinstance(value, bool),
            "float32": isinstance(value, (int, float)) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        }[kind]
        if not ok:
            suffix = "of an array of strings" if kind == "strings" else f"of type {kind}"
            raise HTTPError(500, f'option "{key}" must be {suffix}')


@dataclass
class Plan:
    seq: list[tuple[str, str]]  # ("thinking" | "content", token text)
    done_reason: str


def stage_of(rule: FaultRule) -> str | None:
    if rule.stage is not None:
        return rule.stage
    if rule.action == "hang":
        return "after_chunks" if rule.after_chunks > 0 else "before_headers"
    if rule.action == "http_error":
        return "before_load"
    if rule.action == "drop":
        return "after_chunks" if rule.after_chunks > 0 else "before_headers"
    return None


def apply_stop(seq: list[tuple[str, str]], stops: list[str]) -> list[tuple[str, str]]:
    """Cut the content at the first stop string (the stop text itself is not emitted)."""
    content = "".join(t for kind, t in seq if kind == "content")
    cut = min((i for i in (content.find(s) for s in stops) if i >= 0), default=-1)
    if cut < 0:
        return seq
    out: list[tuple[str, str]] = []
    used = 0
    for kind, tok in seq:
        if kind != "content":
            out.append((kind, tok))
            continue
        if used >= cut:
            break
        piece = tok[: cut - used]
        used += len(piece)
        if piece:
            out.append((kind, piece))
    return out


class Output:
    """Writes one generation reply: NDJSON stream or one buffered JSON object."""

    def __init__(self, ctx: GenContext) -> None:
        self.ctx = ctx
        self.conn = ctx.conn

    def _base(self) -> dict[str, Any]:
        return {"model": self.ctx.label, "created_at": now_utc()}

    def _piece(self, content: str, thinking: str | None) -> dict[str, Any]:
        if self.ctx.endpoint == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            return {"message": message}
        piece: dict[str, Any] = {"response": content}
        if thinking:
            piece["thinking"] = thinking
        return piece

    async def _line(self, obj: dict[str, Any] | str) -> None:
        if not self.conn.headers_sent:
            await self.conn.start_chunked(200, NDJSON, [SIMULATED_HEADER])
        line = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        await self.conn.write_chunk(line.encode() + b"\n")  # never a blank line: see reference §5.5

    async def token(self, kind: str, text: str) -> None:
        if not text:
            return
        content, thinking = (text, None) if kind == "content" else ("", text)
        await self._line({**self._base(), **self._piece(content, thinking), "done": False})

    async def final(
        self, seq: list[tuple[str, str]], done_reason: str, metrics: dict[str, int]
    ) -> bool:
        if self.ctx.stream:
            content, thinking = "", None
        else:
            content = "".join(t for k, t in seq if k == "content")
            thinking = "".join(t for k, t in seq if k == "thinking") or None
        obj = {
            **self._base(),
            **self._piece(content, thinking),
            "done": True,
            "done_reason": done_reason,
        }
        if self.ctx.endpoint == "generate" and not self.ctx.raw:
            n = metrics["prompt_eval_count"] + metrics["eval_count"]
            base = int(outputs.seeded_rng(self.ctx.payload).random() * 100_000)
            obj["context"] = [(base + 7919 * i) % 151_936 for i in range(n)]
        obj.update(metrics)
        if self.ctx.stream:
            await self._line(obj)
            await self.conn.end_chunked()
        else:
            await self.conn.send_json(200, obj, extra=[SIMULATED_HEADER])
        return True

    async def fail(self, message: str, status: int) -> bool:
        """An error after the model started: an NDJSON error line if the stream is open."""
        if self.conn.headers_sent:
            await self._line({"error": message})
            await self.conn.end_chunked()
        else:
            await self.conn.send_json(status, {"error": message}, extra=[SIMULATED_HEADER])
        return True

    async def malformed(self) -> bool:
        garbage = (
            f'{outputs.SIM_PREFIX} malformed ndjson {{"model": "{self.ctx.label}", "done": fal'
        )
        if self.ctx.stream:
            await self._line(garbage)
            await self.conn.end_chunked()
        else:
            await self.conn.send(
                200, garbage.encode(), "application/json; charset=utf-8", extra=[SIMULATED_HEADER]
            )
        return True


def json_body(req: Request, required: bool = True) -> dict[str, Any]:
    if not req.body.strip():
        if required:
            raise HTTPError(400, "missing request body")
        return {}
    try:
        body = json.loads(req.body)
    except json.JSONDecodeError as exc:
        raise HTTPError(400, go_json_error(exc)) from None
    if not isinstance(body, dict):
        raise HTTPError(400, "json: cannot unmarshal non-object into Go value")
    return body


def parse_generation(
    conn: Connection,
    req: Request,
    endpoint: str,
    t_arrival: float,
    config: FakeConfig,
    registry: dict[str, ModelSpec],
) -> GenContext:
    """Validate a chat/generate body in the order Ollama does; errors carry its exact texts."""
    return parse_body(conn, json_body(req), endpoint, t_arrival, config, registry)


def parse_body(
    conn: Connection,
    body: dict[str, Any],
    endpoint: str,
    t_arrival: float,
    config: FakeConfig,
    registry: dict[str, ModelSpec],
) -> GenContext:
    """parse_generation of a body already decoded (the OpenAI API translates into one)."""
    chat = endpoint == "chat"
    try:
        keep_alive = parse_keep_alive(body.get("keep_alive"))
    except DurationError as exc:
        raise HTTPError(400, str(exc)) from None
    label = body.get("model")
    if not isinstance(label, str) or not label:
        raise HTTPError(400, "model is required")
    model = normalize_model_name(label)
    spec = registry.get(model)
    if spec is None:
        if chat and config.not_found_style == "old":
            raise HTTPError(404, f'model "{label}" not found, try pulling it first')
        raise HTTPError(404, f"model '{label}' not found")
    think = body.get("think")
    if think not in (None, False) and "thinking" not in spec.capabilities:
        raise HTTPError(400, f'"{label}" does not support thinking')
    if body.get("tools") and "tools" not in spec.capabilities:
        raise HTTPError(400, f"{label} does not support tools")
    top = body.get("top_logprobs")
    if top is not None and not (isinstance(top, int) and 0 <= top <= 20):
        raise HTTPError(400, "top_logprobs must be between 0 and 20")
    raw = bool(body.get("raw"))
    if raw and (body.get("template") or body.get("system") or body.get("context")):
        raise HTTPError(400, "raw mode does not support template, system, or context")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise HTTPError(400, "json: cannot unmarshal options into Go value of type map")
    check_options(options)
    stream = body.get("stream")
    stream = config.default_stream if stream is None else bool(stream)
    if chat:
        messages = body.get("messages") or []
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise HTTPError(
                400, "json: cannot unmarshal messages into Go value of type []api.Message"
            )
        texts = [str(m.get("content") or "") for m in messages]
        prompt_text = "\n".join(texts)
        prompt_tokens = math.ceil(sum(len(t) for t in texts) / 4) + 4 * len(messages)
        payload: Any = messages
        is_load = not messages
    else:
        prompt = body.get("prompt") or ""
        system, suffix = body.get("system") or "", body.get("suffix") or ""
        prompt_text = f"{system}\n{prompt}{suffix}" if system else f"{prompt}{suffix}"
        prompt_tokens = max(1, math.ceil(len(prompt_text) / 4))
        payload = {"system": system, "prompt": prompt, "suffix": suffix}
        is_load = not prompt
    num_ctx = int(options.get("num_ctx") or config.default_num_ctx)
    defaults = {"num_ctx": config.default_num_ctx}
    runner_key = tuple(options.get(k, defaults.get(k)) for k in RUNNER_OPTION_KEYS)
    return GenContext(
        conn=conn,
        endpoint=endpoint,
        body=body,
        label=label,
        model=model,
        spec=spec,
        stream=stream,
        keep_alive=keep_alive,
        options=options,
        fmt=body.get("format"),
        prompt_text=prompt_text,
        prompt_tokens=prompt_tokens,
        payload=payload,
        is_load=is_load,
        think=think,
        raw=raw,
        num_ctx=num_ctx,
        runner_key=runner_key,
        t_arrival=t_arrival,
    )
