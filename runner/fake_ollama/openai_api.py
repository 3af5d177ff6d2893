"""The OpenAI-compatible API of the fake server (`/v1/chat/completions`, `/v1/models`), as
vLLM, llama.cpp's server, LM Studio and Ollama itself serve it.

A request is translated into the Ollama chat body it means (response_format json_schema ->
format, max_tokens -> num_predict, …) and then goes through the same validation, scheduling,
faults and generation as /api/chat; only the reply is written the OpenAI way: one
chat.completion object, or server-sent events of chat.completion.chunk ending in
`data: [DONE]`, with usage counts, and errors as {"error": {"message", "type", "code"}}."""

from __future__ import annotations

import json
import time
from typing import Any

from .protocol import HTTPError, Output
from .wire import SIMULATED_HEADER, Connection

SSE = "text/event-stream"
# OpenAI's request fields that are an Ollama option under another name or the same one.
OPTIONS = {"max_tokens": "num_predict", "max_completion_tokens": "num_predict",
           "temperature": "temperature", "top_p": "top_p", "seed": "seed",
           "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
           "top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty"}
ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 503: "ServiceUnavailableError"}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "InternalServerError"),
                      "param": None, "code": status}}


async def send_error(conn: Connection, status: int, message: str) -> None:
    await conn.send_json(status, error_body(status, message), extra=[SIMULATED_HEADER])


def _format(response_format: Any) -> Any:
    """The Ollama `format` a response_format asks for."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise HTTPError(400, "response_format must be an object")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise HTTPError(400, "response_format.json_schema.schema must be a JSON Schema "
                                 "object")
        return schema
    raise HTTPError(400, f"response_format.type {kind!r} is not one of text, json_object, "
                         "json_schema")


def _text(content: Any) -> str:
    """A message's content: a string, or a list of parts of which the text ones count."""
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def to_ollama(body: dict[str, Any]) -> dict[str, Any]:
    """The /api/chat body an OpenAI chat completion request means."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise HTTPError(400, "model is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages \
            or not all(isinstance(m, dict) for m in messages):
        raise HTTPError(400, "messages must be a non-empty list of message objects")
    options = {OPTIONS[k]: v for k, v in body.items() if k in OPTIONS and v is not None}
    stop = body.get("stop")
    if stop is not None:
        options["stop"] = [stop] if isinstance(stop, str) else stop
    out: dict[str, Any] = {
        "model": model,
        "messages": [{"role": str(m.get("role") or "user"), "content": _text(m.get("content"))}
                     for m in messages],
        "stream": bool(body.get("stream", False)),
        "options": options,
        "format": _format(body.get("response_format")),
    }
    if body.get("reasoning_effort") is not None:
        out["think"] = body["reasoning_effort"]
    return out


def models(registry: dict[str, Any], created: float) -> dict[str, Any]:
    return {"object": "list", "data": [
        {"id": name, "object": "model", "created": int(created), "owned_by": "fake-ollama"}
        for name in sorted(registry)]}


class OpenAIOutput(Output):
    """Writes one generation reply the OpenAI way."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.id = f"chatcmpl-sim-{ctx.id}"
        self.created = int(time.time())
        self.started = False

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.ctx.label,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    async def _event(self, obj: dict[str, Any] | str) -> None:
        if not self.conn.headers_sent:
            await self.conn.start_chunked(200, SSE, [SIMULATED_HEADER])
        data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        await self.conn.write_chunk(f"data: {data}\n\n".encode())

    async def token(self, kind: str, text: str) -> None:
        if not text:
            return
        if not self.started:
            self.started = True
            await self._event(self._chunk({"role": "assistant", "content": ""}, None))
        # why: vLLM's name for a thinking model's thoughts, kept out of the content
        field = "content" if kind == "content" else "reasoning_content"
        await self._event(self._chunk({field: text}, None))

    async def final(
        self, seq: list[tuple[str, str]], done_reason: str, metrics: dict[str, int]
    ) -> bool:
        usage = {"prompt_tokens": metrics["prompt_eval_count"],
                 "completion_tokens": metrics["eval_count"],
                 "total_tokens": metrics["prompt_eval_count"] + metrics["eval_count"]}
        if not self.ctx.stream:
            message: dict[str, Any] = {
                "role": "assistant", "content": "".join(t for k, t in seq if k == "content")}
            thinking = "".join(t for k, t in seq if k == "thinking")
            if thinking:
                message["reasoning_content"] = thinking
            await self.conn.send_json(200, {
                "id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.ctx.label,
                "choices": [{"index": 0, "message": message, "finish_reason": done_reason}],
                "usage": usage}, extra=[SIMULATED_HEADER])
            return True
        await self._event(self._chunk({}, done_reason))
        if self.ctx.include_usage:
            await self._event({**self._chunk({}, None), "choices": [], "usage": usage})
        await self._event("[DONE]")
        await self.conn.end_chunked()
        return True

    async def fail(self, message: str, status: int) -> bool:
        if self.conn.headers_sent:
            await self._event(error_body(status, message))
            await self.conn.end_chunked()
        else:
            await send_error(self.conn, status, message)
        return True

    async def malformed(self) -> bool:
        garbage = f'{{"id": "{self.id}", "object": "chat.completion.chunk", "choi'
        if self.ctx.stream:
            await self._event(garbage)
            await self.conn.end_chunked()
        else:
            await self.conn.send(200, garbage.encode(), "application/json; charset=utf-8",
                                 extra=[SIMULATED_HEADER])
        return True
