"""The fake Ollama server: HTTP routes, generation, fault injection, and the thread wrapper."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from . import openai_api, outputs
from .config import (
    BUSY_MESSAGE,
    DEFAULT_LOAD_FAIL_MESSAGE,
    DEFAULT_RUNNER_STOPPED_MESSAGE,
    LOAD_FAULT_ACTIONS,
    FakeConfig,
    FaultRule,
    ModelSpec,
    normalize_model_name,
)
from .protocol import (
    MID_STREAM_ACTIONS,
    GenContext,
    HTTPError,
    Output,
    Plan,
    apply_stop,
    json_body,
    local_iso,
    now_utc,
    parse_body,
    parse_generation,
    stage_of,
)
from .scheduler import GenRequest, LoadFailed, QueueFull, Runner, Scheduler
from .state import Stats
from .wire import SIMULATED_HEADER, BadRequest, Connection, Request

log = logging.getLogger("turing_pg.fake_ollama")
T = TypeVar("T")

TEXT = "text/plain; charset=utf-8"
FOREVER = timedelta(days=292 * 365)  # what MaxInt64 ns looks like in /api/ps


class FakeOllama:
    """An Ollama-compatible server on a loopback port, run by a background thread.

    Public methods are thread-safe: they hop onto the server's event loop.
    """

    def __init__(
        self, config: FakeConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config if config is not None else FakeConfig()
        self.host = host
        self.port = port
        self._registry = {m.name: m for m in self.config.models}
        self._stats = Stats(self.config.max_events)
        self._sched = Scheduler(self.config, self._stats)
        self._faults: list[FaultRule] = []
        self._fault_counts: dict[int, list[int]] = {}  # rule id -> [matched, fired]
        self._rule_ids = itertools.count(1)
        self._req_ids = itertools.count(1)
        self._fault_rng = random.Random(self.config.fault_seed)
        self._hang_event = asyncio.Event()
        self._hung = 0
        self._conn_tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopped = False
        self._started_wall = time.time()
        for rule in self.config.faults:
            self._add_fault(rule)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeOllama:
        if self._thread is not None:
            raise RuntimeError("FakeOllama already started")
        self._thread = threading.Thread(target=self._thread_main, name="fake-ollama", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("fake ollama did not start within 30 s")
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Close the listener, cancel every in-flight request (hangs included), join the thread."""
        loop, thread = self._loop, self._thread
        if self._stopped or loop is None or thread is None:
            return
        self._stopped = True
        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._ashutdown(), loop).result(timeout=30)
            except Exception:
                log.exception("fake ollama: unclean shutdown")
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)

    def __enter__(self) -> FakeOllama:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._astart())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _astart(self) -> None:
        self._sched.start()
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _ashutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._hang_event.set()
        tasks = list(self._conn_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        await self._sched.shutdown()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    def _call(self, fn: Callable[[], T]) -> T:
        """Run fn on the loop thread (state is only touched there); inline when not running."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.current_thread() is self._thread:
            return fn()

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(timeout=30)

    # --- public control API ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self._call(self._stats_snapshot)

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call(lambda: [e for e in self._stats.events if e["seq"] > since])

    def add_fault(self, rule: FaultRule) -> int:
        return self._call(lambda: self._add_fault(rule))

    def faults(self) -> list[dict[str, Any]]:
        return self._call(self._fault_list)

    def clear_faults(self) -> int:
        return self._call(self._clear_faults)

    def release_hangs(self) -> int:
        return self._call(self._release_hangs)

    def reset_counters(self, unload: bool = False) -> None:
        self._call(lambda: self._reset(unload))

    def set(self, **changes: Any) -> dict[str, Any]:
        """Live reconfiguration; num_parallel applies to runners loaded later (as in Ollama)."""
        return self._call(lambda: self._set(changes))

    def evict_now(self, model: str) -> bool:
        """Unload a resident model now (after its in-flight requests finish); reason "explicit"."""
        return self._call(lambda: self._evict(model))

    # --- control implementations (loop thread) -------------------------------------------------

    def _stats_snapshot(self) -> dict[str, Any]:
        snap = self._stats.snapshot(
            resident=sorted(self._sched.runners),
            pending=len(self._sched.pending),
            time_scale=self.config.time_scale,
        )
        snap["hung_now"] = self._hung
        return snap

    def _add_fault(self, rule: FaultRule) -> int:
        rule = dataclasses.replace(rule, id=next(self._rule_ids))
        self._faults.append(rule)
        self._fault_counts[rule.id] = [0, 0]
        return rule.id

    def _fault_list(self) -> list[dict[str, Any]]:
        out = []
        for rule in self._faults:
            matched, fired = self._fault_counts[rule.id or 0]
            out.append({**rule.to_dict(), "matched": matched, "fired": fired})
        return out

    def _clear_faults(self) -> int:
        n = len(self._faults)
        self._faults.clear()
        self._sched.armed_load_faults.clear()
        return n

    def _release_hangs(self) -> int:
        n = self._hung
        self._hang_event.set()
        self._hang_event = asyncio.Event()
        return n

    def _reset(self, unload: bool) -> None:
        if unload:
            self._sched.drop_all()
        self._stats.reset()

    def _set(self, changes: dict[str, Any]) -> dict[str, Any]:
        names = {f.name for f in dataclasses.fields(FakeConfig)} - {"models", "faults"}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"cannot set: {', '.join(unknown)}")
        old = {k: getattr(self.config, k) for k in changes}
        for key, value in changes.items():
            setattr(self.config, key, value)
        try:
            self.config.validate()
        except ValueError:
            for key, value in old.items():
                setattr(self.config, key, value)
            raise
        if "fault_seed" in changes:
            self._fault_rng = random.Random(self.config.fault_seed)
        if "max_events" in changes:
            self._stats.events = type(self._stats.events)(
                self._stats.events, maxlen=self.config.max_events
            )
        return {k: getattr(self.config, k) for k in sorted(names)}

    def _evict(self, model: str) -> bool:
        r = self._sched.runners.get(normalize_model_name(model))
        if r is None:
            return False
        self._sched.expire(r, "explicit")
        return True

    async def _hang(self) -> None:
        event = self._hang_event
        self._hung += 1
        try:
            await event.wait()
        finally:
            self._hung -= 1

    # --- connection handling -----------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        conn = Connection(reader, writer)
        try:
            while not conn.closed:
                try:
                    req = await conn.read_request()
                except BadRequest as exc:
                    await conn.send(exc.status, str(exc).encode(), TEXT, keep_alive=False)
                    break
                if req is None:
                    break
                if not await self._dispatch(conn, req):
                    break
        except OSError:
            pass
        except asyncio.CancelledError:
            # Only our own shutdown cancels this task. asyncio's start_server callback calls
            # task.exception(), which raises on a cancelled task, so end it normally instead.
            pass
        except Exception:
            log.exception("fake ollama connection error")
        finally:
            conn.close()
            if task is not None:
                self._conn_tasks.discard(task)

    async def _dispatch(self, conn: Connection, req: Request) -> bool:
        """Serve one request; returns False when the connection must be closed."""
        keep = req.wants_keep_alive
        path, method = req.path.rstrip("/") or "/", req.method
        if path in ("/api/chat", "/api/generate"):
            if method != "POST":
                return await self._text(conn, 405, "405 method not allowed", keep)
            return await self._watched(conn, self._generation(conn, req, path[5:])) and keep
        if path == "/v1/chat/completions":
            if method != "POST":
                return await self._text(conn, 405, "405 method not allowed", keep)
            work = self._generation(conn, req, "chat", api="openai")
            return await self._watched(conn, work) and keep
        routes: dict[tuple[str, str], Callable[[Request], Awaitable[tuple[int, Any]]]] = {
            ("GET", "/api/version"): self._version,
            ("GET", "/api/tags"): self._tags,
            ("GET", "/api/ps"): self._ps,
            ("POST", "/api/show"): self._show,
            ("GET", "/v1/models"): self._openai_models,
            ("GET", "/_fake/stats"): self._fake_stats,
            ("GET", "/_fake/events"): self._fake_events,
            ("GET", "/_fake/faults"): self._fake_faults_get,
            ("POST", "/_fake/faults"): self._fake_faults_post,
            ("DELETE", "/_fake/faults"): self._fake_faults_delete,
            ("POST", "/_fake/release_hangs"): self._fake_release,
            ("POST", "/_fake/reset"): self._fake_reset,
            ("POST", "/_fake/set"): self._fake_set,
            ("POST", "/_fake/evict"): self._fake_evict,
        }
        head = method == "HEAD"
        if path == "/" and method in ("GET", "HEAD"):
            await conn.send(200, b"Ollama is running", TEXT, keep_alive=keep, head_only=head)
            return keep
        handler = routes.get(("GET" if head else method, path))
        if handler is None:
            if any(p == path for _, p in routes) or path == "/":
                return await self._text(conn, 405, "405 method not allowed", keep)
            return await self._text(conn, 404, "404 page not found", keep)
        try:
            status, obj = await handler(req)
        except HTTPError as exc:
            status, obj = exc.status, {"error": exc.message}
        except ValueError as exc:
            status, obj = 400, {"error": str(exc)}
        await conn.send_json(status, obj, keep_alive=keep, head_only=head, extra=[SIMULATED_HEADER])
        return keep

    async def _text(self, conn: Connection, status: int, text: str, keep: bool) -> bool:
        await conn.send(status, text.encode(), TEXT, keep_alive=keep)
        return keep

    async def _watched(self, conn: Connection, work: Awaitable[bool]) -> bool:
        """Run a handler while watching the socket; a client disconnect cancels the handler."""
        handler = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(conn.watch_disconnect())
        try:
            done, _ = await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            handler.cancel()
            watcher.cancel()
            await asyncio.wait([handler, watcher], timeout=5)  # run their cleanup before exiting
            raise
        # asyncio.wait (not `await task` under suppress(CancelledError)): it lets the cancelled
        # sub-task finish without ever swallowing a cancellation aimed at *this* task (shutdown).
        # The watcher must be gone before the next read_request() touches the same reader.
        watcher.cancel()
        await asyncio.wait([watcher])
        if handler in done:
            return handler.result()
        handler.cancel()
        await asyncio.wait([handler])
        return False

    # --- simple endpoints ----------------------------------------------------------------------

    def _details(self, spec: ModelSpec) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": spec.family,
            "families": [spec.family],
            "parameter_size": spec.parameter_size,
            "quantization_level": spec.quantization_level,
        }

    async def _version(self, req: Request) -> tuple[int, Any]:
        return 200, {"version": self.config.version}

    async def _tags(self, req: Request) -> tuple[int, Any]:
        modified = local_iso(self._started_wall)
        models = [
            {
                "name": s.name,
                "model": s.name,
                "modified_at": modified,
                "size": s.size_bytes,
                "digest": s.digest,
                "details": self._details(s),
            }
            for s in self._registry.values()
        ]
        return 200, {"models": models}

    async def _ps(self, req: Request) -> tuple[int, Any]:
        now_mono, now_wall = time.monotonic(), time.time()
        rows = []
        for r in self._sched.runners.values():
            if r.state == "ready" and r.refcount <= 0 and r.expires_at is not None:
                expires = datetime.fromtimestamp(now_wall + r.expires_at - now_mono).astimezone()
            elif math.isinf(r.session_duration):
                expires = datetime.now().astimezone() + FOREVER
            else:  # loading or busy: the timer is stopped; report now + session duration
                delta = timedelta(seconds=self._sched.scaled(r.session_duration))
                expires = datetime.now().astimezone() + delta
            rows.append((expires, r))
        rows.sort(key=lambda row: row[0], reverse=True)
        models = [
            {
                "name": r.model,
                "model": r.model,
                "size": r.vram,
                "digest": r.spec.digest,
                "details": self._details(r.spec),
                "expires_at": expires.isoformat(),
                "size_vram": r.vram,
                "context_length": r.num_ctx,
            }
            for expires, r in rows
        ]
        return 200, {"models": models}

    async def _openai_models(self, req: Request) -> tuple[int, Any]:
        return 200, openai_api.models(self._registry, self._started_wall)

    async def _show(self, req: Request) -> tuple[int, Any]:
        body = json_body(req)
        name = body.get("model") or body.get("name")
        if not name:
            raise HTTPError(400, "model is required")
        spec = self._registry.get(normalize_model_name(str(name)))
        if spec is None:
            raise HTTPError(404, f"model '{name}' not found")
        params = f"num_ctx {self.config.default_num_ctx}"
        return 200, {
            "license": "simulated model (turing fake ollama)",
            "modelfile": f"# simulated by turing_pg.fake_ollama\nFROM {spec.name}\n",
            "parameters": params,
            "template": "{{ .Prompt }}",
            "details": self._details(spec),
            "model_info": {
                "general.architecture": spec.family,
                "general.parameter_count": spec.parameter_count,
                f"{spec.family}.context_length": spec.context_length,
            },
            "capabilities": list(spec.capabilities),
            "modified_at": local_iso(self._started_wall),
        }

    async def _fake_stats(self, req: Request) -> tuple[int, Any]:
        return 200, self._stats_snapshot()

    async def _fake_events(self, req: Request) -> tuple[int, Any]:
        since = int(req.query.get("since", ["0"])[0])
        return 200, [e for e in self._stats.events if e["seq"] > since]

    async def _fake_faults_get(self, req: Request) -> tuple[int, Any]:
        return 200, self._fault_list()

    async def _fake_faults_post(self, req: Request) -> tuple[int, Any]:
        data = json_body(req)
        data.pop("id", None)
        try:
            rule = FaultRule.from_dict(data)
        except (TypeError, re.error) as exc:
            raise HTTPError(400, str(exc)) from None
        return 200, {"id": self._add_fault(rule)}

    async def _fake_faults_delete(self, req: Request) -> tuple[int, Any]:
        return 200, {"cleared": self._clear_faults()}

    async def _fake_release(self, req: Request) -> tuple[int, Any]:
        return 200, {"released": self._release_hangs()}

    async def _fake_reset(self, req: Request) -> tuple[int, Any]:
        body = json_body(req, required=False)
        self._reset(bool(body.get("unload", False)))
        return 200, {"ok": True}

    async def _fake_set(self, req: Request) -> tuple[int, Any]:
        return 200, self._set(json_body(req))

    async def _fake_evict(self, req: Request) -> tuple[int, Any]:
        return 200, {"evicted": self._evict(str(json_body(req).get("model", "")))}

    # --- /api/chat and /api/generate -----------------------------------------------------------

    def _match_faults(self, ctx: GenContext) -> list[FaultRule]:
        fired: list[FaultRule] = []
        for rule in self._faults:
            if rule.model and rule.model != ctx.model:
                continue
            if rule.endpoint and rule.endpoint != ctx.endpoint:
                continue
            if rule.prompt_regex and not re.search(rule.prompt_regex, ctx.prompt_text):
                continue
            counts = self._fault_counts[rule.id or 0]
            counts[0] += 1
            if rule.times is not None and counts[1] >= rule.times:
                continue
            if rule.nth is not None and counts[0] != rule.nth:
                continue
            if rule.every_n is not None and counts[0] % rule.every_n:
                continue
            if rule.probability is not None and self._fault_rng.random() >= rule.probability:
                continue
            counts[1] += 1
            key = str(rule.id)
            self._stats.faults_fired[key] = self._stats.faults_fired.get(key, 0) + 1
            self._stats.event("fault", ctx.model, ctx.id, rule=rule.id, action=rule.action)
            if rule.action in LOAD_FAULT_ACTIONS:
                # Load faults hit the model's next load, whether or not this request triggers it.
                self._sched.armed_load_faults.setdefault(ctx.model, {})[rule.action] = rule
            else:
                fired.append(rule)
        return fired

    @staticmethod
    def _rule(ctx: GenContext, action: str, stage: str | None = None) -> FaultRule | None:
        for rule in ctx.rules:
            if rule.action != action:
                continue
            if stage is None or stage_of(rule) == stage:
                return rule
        return None

    async def _generation(
        self, conn: Connection, req: Request, endpoint: str, api: str = "ollama"
    ) -> bool:
        t_arrival = time.monotonic()
        try:
            if api == "openai":
                body = openai_api.to_ollama(json_body(req))
                ctx = parse_body(conn, body, endpoint, t_arrival, self.config, self._registry)
                ctx.api = api
                options = json_body(req).get("stream_options") or {}
                ctx.include_usage = bool(isinstance(options, dict)
                                         and options.get("include_usage"))
            else:
                ctx = parse_generation(conn, req, endpoint, t_arrival, self.config,
                                       self._registry)
        except HTTPError as exc:
            if api == "openai":
                message = exc.message
                if exc.status == 404:
                    message = f"The model `{json_body(req).get('model')}` does not exist."
                await openai_api.send_error(conn, exc.status, message)
            else:
                await conn.send_json(exc.status, {"error": exc.message},
                                     extra=[SIMULATED_HEADER])
            return True
        ctx.id = next(self._req_ids)
        self._stats.event("request_start", ctx.model, ctx.id, endpoint=endpoint, load=ctx.is_load)
        ctx.rules = self._match_faults(ctx)
        counters = self._stats.model(ctx.model)
        greq = GenRequest(
            id=ctx.id,
            endpoint=endpoint,
            model=ctx.model,
            spec=ctx.spec,
            keep_alive=ctx.keep_alive,
            runner_key=ctx.runner_key,
            num_ctx=ctx.num_ctx,
            t_arrival=t_arrival,
        )
        try:
            if self._rule(ctx, "reject_503"):
                self._stats.rejected_503 += 1
                self._stats.event("503", ctx.model, ctx.id, cause="fault")
                return await self._error(ctx, 503, BUSY_MESSAGE)
            rule = self._rule(ctx, "http_error", "before_load")
            if rule:
                return await self._error(
                    ctx, rule.status, rule.message or DEFAULT_LOAD_FAIL_MESSAGE
                )
            if self._rule(ctx, "hang", "queued"):
                await self._hang()
            if ctx.is_load and ctx.keep_alive == 0:
                # `ollama stop`: reply at once, the unload itself is asynchronous.
                self._sched.request_unload(ctx.model)
                return await self._done_only(ctx, "unload")
            try:
                runner = await self._sched.acquire(greq)
            except QueueFull:
                self._stats.rejected_503 += 1
                self._stats.event("503", ctx.model, ctx.id, cause="max_queue")
                return await self._error(ctx, 503, BUSY_MESSAGE)
            except LoadFailed as exc:
                return await self._error(ctx, 500, str(exc))
            ctx.t_loaded = time.monotonic()
            counters.queue_wait_seconds += ctx.t_loaded - t_arrival
            try:
                return await self._serve(ctx, greq, runner)
            finally:
                self._sched.release(greq, runner)
        except asyncio.CancelledError:
            counters = self._stats.model(ctx.model)  # a reset may have replaced the counters
            counters.canceled[greq.stage] += 1
            self._stats.count_request(ctx.model, endpoint, 499)
            self._stats.event("cancel", ctx.model, ctx.id, stage=greq.stage)
            raise
        except OSError:  # includes ConnectionResetError from writing to a gone client
            self._stats.model(ctx.model).canceled[greq.stage] += 1
            self._stats.count_request(ctx.model, endpoint, 499)
            self._stats.event("cancel", ctx.model, ctx.id, stage=greq.stage)
            conn.close()
            return False
        except Exception as exc:  # a bug in the fake must not look like a network fault
            log.exception("fake ollama: internal error")
            if conn.headers_sent:
                conn.close()
                return False
            return await self._error(ctx, 500, f"fake ollama internal error: {exc!r}")

    async def _serve(self, ctx: GenContext, greq: GenRequest, runner: Runner) -> bool:
        if ctx.is_load:
            return await self._done_only(ctx, "load")
        fmt = ctx.fmt
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            # Like Ollama: checked only after the model is scheduled, and it is a 500.
            quoted = json.dumps(json.dumps(fmt))
            return await self._error(
                ctx, 500, f'invalid format: {quoted}; expected "json" or a valid JSON Schema object'
            )
        if ctx.prompt_tokens > ctx.num_ctx:
            if self.config.context_overflow == "error400":
                return await self._error(
                    ctx,
                    400,
                    "the prompt is longer than the context length currently available to the "
                    "model; reduce the prompt or increase num_ctx",
                )
            ctx.prompt_tokens = ctx.num_ctx  # silently keeps the tail, as older servers do
        try:
            plan = self._plan(ctx)
        except outputs.SchemaError as exc:
            return await self._error(ctx, 500, str(exc))
        except (TypeError, ValueError, KeyError, RecursionError) as exc:
            # A schema our generator chokes on (bad keyword types, ...): Ollama's grammar
            # converter would reject it too, with the same 500.
            return await self._error(ctx, 500, str(outputs.SchemaError(repr(exc))))
        rule = self._rule(ctx, "http_error", "after_load")
        if rule:
            return await self._error(ctx, rule.status, rule.message or DEFAULT_LOAD_FAIL_MESSAGE)
        if self._rule(ctx, "hang", "loading"):
            await self._hang()
        greq.stage = "slot_wait"
        t_wait = time.monotonic()
        await self._sched.acquire_slot(runner)
        counters = self._stats.model(ctx.model)
        counters.slot_wait_seconds += time.monotonic() - t_wait
        self._stats.event("slot_acquire", ctx.model, ctx.id, active=runner.active)
        try:
            greq.stage = "generating"
            if self._rule(ctx, "hang", "before_headers"):
                await self._hang()
            return await self._generate(ctx, runner, plan)
        finally:
            self._sched.release_slot(runner)

    # --- output planning -----------------------------------------------------------------------

    def _plan(self, ctx: GenContext) -> Plan:
        options = ctx.options
        seed = options.get("seed")
        salt: Any = None
        if seed is None and self.config.nondeterministic_without_seed:
            salt = ctx.id
        fmt = ctx.fmt if ctx.fmt not in (None, "") else None
        rng = outputs.seeded_rng(ctx.model, ctx.endpoint, ctx.payload, seed, fmt, salt)
        schema = fmt if isinstance(fmt, dict) else None
        value: Any = None
        scripted = outputs.scripted_text(ctx.spec.scripted, ctx.prompt_text)
        if scripted is not None:
            text, prose = scripted, False
        elif schema is not None:
            value = outputs.generate_instance(schema, rng)
            text, prose = outputs.dump_json(value), False
        elif fmt == "json":
            value = outputs.json_mode_value(rng)
            text, prose = outputs.dump_json(value), False
        else:
            tokens = outputs.text_tokens(rng)
            text, prose = "".join(tokens), True
        tokens = tokens if prose else outputs.split_tokens(text)
        bad = self._rule(ctx, "bad_output")
        filler: str | None = None
        if bad is not None and bad.kind == "trailing_whitespace":
            filler = "\n "  # the classic format=json runaway: whitespace until num_predict
        elif bad is not None:
            tokens = outputs.split_tokens(
                outputs.bad_output_text(bad.kind or "", text, value, schema)
            )
        if self._rule(ctx, "runaway"):
            filler = filler or " and"
        thinking: list[str] = []
        if "thinking" in ctx.spec.capabilities and ctx.think is not False:
            thinking = outputs.text_tokens(
                outputs.seeded_rng("thinking", rng.random()), "[simulated] hmm,"
            )
        seq = [("thinking", t) for t in thinking] + [("content", t) for t in tokens]
        done_reason = "stop"
        stops = [s for s in options.get("stop") or [] if s]
        if stops:
            seq = apply_stop(seq, stops)
        num_predict = int(options.get("num_predict", -1))
        limit = num_predict if num_predict >= 0 else None
        if filler is not None:
            cap = limit if limit is not None else 10 * ctx.num_ctx
            seq += [("content", filler)] * max(0, cap - len(seq))
        if limit is not None and len(seq) > limit:
            seq = seq[:limit]
            done_reason = "length"
        elif filler is not None:
            done_reason = "length"
        return Plan(seq=seq, done_reason=done_reason)

    # --- generation ----------------------------------------------------------------------------

    def _mid_rules(self, ctx: GenContext, n_tokens: int) -> dict[int, list[FaultRule]]:
        """Faults keyed by the stream position (chunks already sent) where they strike."""
        at: dict[int, list[FaultRule]] = {}
        for rule in ctx.rules:
            action, stage = rule.action, stage_of(rule)
            mid = (
                action in MID_STREAM_ACTIONS
                or (action == "drop")
                or (action == "hang" and stage == "after_chunks")
            )
            if mid:
                pos = 0 if stage == "before_headers" else min(rule.after_chunks, n_tokens)
                at.setdefault(pos, []).append(rule)
        return at

    async def _generate(self, ctx: GenContext, runner: Runner, plan: Plan) -> bool:
        spec, seq = ctx.spec, plan.seq
        mid = self._mid_rules(ctx, len(seq))
        slow = self._rule(ctx, "slow_tokens")
        extra_s = (slow.ms / 1000.0) if slow else 0.0
        out = openai_api.OpenAIOutput(ctx) if ctx.api == "openai" else Output(ctx)
        counters = self._stats.model(ctx.model)
        t_prefill = time.monotonic()
        self._stats.busy_start(ctx.model, t_prefill)
        busy = True
        try:
            prefill = ctx.prompt_tokens / spec.prefill_tok_s
            if runner.fresh:  # first request after a load pays a full, uncached prefill
                prefill += spec.first_token_penalty_s
                runner.fresh = False
            await asyncio.sleep(self._sched.scaled(prefill))
            t_decode = due = time.monotonic()
            for i in range(len(seq) + 1):
                for rule in mid.get(i, []):
                    if rule.action == "stall":
                        await asyncio.sleep(self._sched.scaled(rule.seconds))
                        due = max(due, time.monotonic())
                    elif rule.action == "hang":
                        self._stats.busy_end(ctx.model, time.monotonic())
                        busy = False
                        await self._hang()
                        self._stats.busy_start(ctx.model, time.monotonic())
                        busy = True
                        due = time.monotonic()
                    else:
                        return await self._mid_fault(ctx, runner, out, rule)
                if i == len(seq):
                    break
                if runner.crashed:  # another request crashed this runner under us
                    self._stats.count_request(ctx.model, ctx.endpoint, 500)
                    return await out.fail(DEFAULT_RUNNER_STOPPED_MESSAGE, 500)
                active = max(1, runner.active)
                per_token = (1 + spec.parallel_slowdown * (active - 1)) / spec.decode_tok_s
                due += self._sched.scaled(per_token + extra_s)
                delay = due - time.monotonic()
                # Streams pace every token; buffered replies sleep in >= 2 ms steps (cheap).
                if delay > 0 and (ctx.stream or delay > 0.002):
                    await asyncio.sleep(delay)
                if ctx.stream:
                    await out.token(*seq[i])
                if i == 0:
                    self._stats.event("first_token", ctx.model, ctx.id)
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            t_end = time.monotonic()
        finally:
            if busy:
                self._stats.busy_end(ctx.model, time.monotonic())
            counters.slot_seconds += time.monotonic() - t_prefill
        counters = self._stats.model(ctx.model)
        counters.prompt_tokens += ctx.prompt_tokens
        counters.output_tokens += len(seq)
        counters.completed += 1
        metrics = {
            "total_duration": int((time.monotonic() - ctx.t_arrival) * 1e9),
            "load_duration": int((ctx.t_loaded - ctx.t_arrival) * 1e9),
            "prompt_eval_count": ctx.prompt_tokens,
            "prompt_eval_duration": int((t_decode - t_prefill) * 1e9),
            "eval_count": len(seq),
            "eval_duration": int((t_end - t_decode) * 1e9),
        }
        self._stats.event("done", ctx.model, ctx.id, done_reason=plan.done_reason, tokens=len(seq))
        self._stats.count_request(ctx.model, ctx.endpoint, 200)
        return await out.final(seq, plan.done_reason, metrics)

    async def _mid_fault(
        self, ctx: GenContext, runner: Runner, out: Output, rule: FaultRule
    ) -> bool:
        if rule.action == "drop":
            self._stats.count_request(ctx.model, ctx.endpoint, "dropped")
            ctx.conn.close()
            return False
        if rule.action == "malformed_ndjson":
            self._stats.count_request(ctx.model, ctx.endpoint, 200)
            return await out.malformed()
        if rule.action == "crash_runner":
            self._sched.crash(runner)
        # stream_error / crash_runner: an error line in an open stream, else a plain 500.
        self._stats.count_request(ctx.model, ctx.endpoint, 200 if ctx.conn.headers_sent else 500)
        return await out.fail(rule.message or DEFAULT_RUNNER_STOPPED_MESSAGE, 500)

    # --- replies -------------------------------------------------------------------------------

    async def _error(self, ctx: GenContext, status: int, message: str) -> bool:
        self._stats.count_request(ctx.model, ctx.endpoint, status)
        self._stats.event("error", ctx.model, ctx.id, status=status, message=message)
        if ctx.api == "openai":
            await openai_api.send_error(ctx.conn, status, message)
            return True
        await ctx.conn.send_json(status, {"error": message}, extra=[SIMULATED_HEADER])
        return True

    async def _done_only(self, ctx: GenContext, reason: str) -> bool:
        """Load/unload replies: one JSON object even for stream=true, no metric fields."""
        obj: dict[str, Any] = {"model": ctx.label, "created_at": now_utc()}
        if ctx.endpoint == "chat":
            obj["message"] = {"role": "assistant", "content": ""}
        else:
            obj["response"] = ""
        obj.update(done=True, done_reason=reason)
        self._stats.count_request(ctx.model, ctx.endpoint, 200)
        self._stats.event("done", ctx.model, ctx.id, done_reason=reason)
        await ctx.conn.send_json(200, obj, extra=[SIMULATED_HEADER])
        return True
