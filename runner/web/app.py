"""`turing web`'s ASGI app: server-rendered pages, a fragment of each for live updates, and a
few actions, each request run as the PostgreSQL login of its session.

Logging in takes a PostgreSQL user and password; the session keeps a small pool connected as
that user (in this process's memory only; the browser holds a random session id), so every
read and every action is checked by PostgreSQL against that login's roles. A superuser's login
is refused. Actions are POSTs that carry the session's CSRF token.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from turing_pg.credentials import redact
from turing_pg.db import Turing, TuringError
from turing_pg.web import queries, svg

COOKIE = "turing_session"
# why: an idle session's pool holds a connection; it is closed after this long unused.
IDLE_S = 8 * 3600
TEMPLATES = Jinja2Templates(directory=str(Path(str(files("turing_pg.web") / "templates"))))
TEMPLATES.env.filters["duration"] = svg.duration
LIVE_JS = (files("turing_pg.web") / "templates" / "live.js").read_text()
NAV = [("pipeline", "Pipeline"), ("runners", "Runners"), ("alerts", "Alerts"),
       ("charts", "Charts"), ("dead", "Dead letters"), ("tickets", "Tickets")]


@dataclass
class Session:
    user: str
    client: Turing
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    flash: list[tuple[str, str]] = field(default_factory=list)
    used_at: float = field(default_factory=time.monotonic)


class Sessions:
    """Logged-in sessions by their random id, in memory: a restart logs everyone out."""

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def add(self, session: Session) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._by_id[sid] = session
        return sid

    def get(self, sid: str | None) -> Session | None:
        with self._lock:
            self._expire()
            s = self._by_id.get(sid or "")
            if s is not None:
                s.used_at = time.monotonic()
            return s

    def drop(self, sid: str | None) -> None:
        with self._lock:
            s = self._by_id.pop(sid or "", None)
        if s is not None:
            s.client.close()

    def close(self) -> None:
        with self._lock:
            gone, self._by_id = list(self._by_id.values()), {}
        for s in gone:
            s.client.close()

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [k for k, s in self._by_id.items() if now - s.used_at > IDLE_S]:
            self._by_id.pop(sid).client.close()


def login_dsn(base_dsn: str, user: str, password: str) -> str:
    """The server and database of `base_dsn` with this login's user and password instead of
    whatever the DSN carried (never the operator's own credentials)."""
    params = conninfo_to_dict(base_dsn)
    for key in ("user", "password", "passfile"):
        params.pop(key, None)
    return make_conninfo(**params, user=user, password=password)


def create_app(base_dsn: str) -> Starlette:
    sessions = Sessions()

    def render(request: Request, name: str, context: dict[str, Any],
               session: Session | None, status: int = 200) -> Response:
        flash = session.flash[:] if session else []
        if session:
            session.flash.clear()
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "part"]
        here = request.url.path + (f"?{urlencode(query)}" if query else "")
        return TEMPLATES.TemplateResponse(request, name, {
            **context, "session": session, "nav": NAV, "flash": flash,
            "path": request.url.path, "back": here,
            "live_url": f"{request.url.path}?{urlencode([*query, ('part', 'live')])}"},
            status_code=status,
            headers={"Cache-Control": "no-store"})

    def page(template: str, read: Callable[..., dict[str, Any]],
             args: Callable[[Request], tuple[Any, ...]] = lambda r: ()
             ) -> Callable[[Request], Awaitable[Response]]:
        """A page: `read(client, *args(request))` gives its context; `?part=live` answers only
        the live fragment (what the page's script polls)."""

        async def endpoint(request: Request) -> Response:
            session = sessions.get(request.cookies.get(COOKIE))
            if session is None:
                return RedirectResponse(f"/login?next={request.url.path}", 303)
            part = request.query_params.get("part") == "live"
            try:
                params = args(request)
            except ValueError:
                return PlainTextResponse("the id must be a whole number, e.g. /ticket/42", 404)
            try:
                context = await run_in_threadpool(read, session.client, *params)
                context["error"] = None
            except TuringError as exc:
                context = {"error": _sentence(exc)}
            if part:
                return render(request, f"parts/{template}", context, session)
            return render(request, template, context, session)

        return endpoint

    def action(do: Callable[..., str], *fields: str) -> Callable[[Request], Awaitable[Response]]:
        """A POST that calls one function of queries with the form's fields, then returns to
        the page it came from with what happened (or the database's refusal) as a message."""

        async def endpoint(request: Request) -> Response:
            session = sessions.get(request.cookies.get(COOKIE))
            if session is None:
                return RedirectResponse("/login", 303)
            form = await request.form()
            if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
                return PlainTextResponse(
                    "refused: the form's token does not match this session; reload the page "
                    "and try again", 403)
            back = str(form.get("back") or "/pipeline")
            if not back.startswith("/") or back.startswith("//"):
                back = "/pipeline"
            try:
                values = [_field(name, str(form.get(name, ""))) for name in fields]
                message = await run_in_threadpool(do, session.client, *values)
                session.flash.append(("ok", message))
            except ValueError as exc:
                session.flash.append(("error", str(exc)))
            except TuringError as exc:
                session.flash.append(("error", _sentence(exc)))
            return RedirectResponse(back, 303)

        return endpoint

    async def login_form(request: Request) -> Response:
        return render(request, "login.html", {"error": None,
                                              "next": request.query_params.get("next", "")},
                      None)

    async def login(request: Request) -> Response:
        form = await request.form()
        user, password = str(form.get("user", "")).strip(), str(form.get("password", ""))
        target = str(form.get("next") or "/pipeline")
        if not target.startswith("/") or target.startswith("//"):
            target = "/pipeline"
        error = None
        if not user:
            error = "write the PostgreSQL user to log in as"
        else:
            try:
                client = await run_in_threadpool(_connect, login_dsn(base_dsn, user, password))
            except (TuringError, psycopg.Error) as exc:
                error = f"cannot log in as {user}: {_sentence(exc)}"
            else:
                name, superuser = await run_in_threadpool(client.login)
                if superuser:
                    await run_in_threadpool(client.close)
                    error = (f"refused: {name} is a superuser; log in as a member of "
                             f"turing_viewer (to read) or turing_admin (to act)")
        if error:
            return render(request, "login.html", {"error": error, "next": target}, None, 401)
        response = RedirectResponse(target, 303)
        sid = sessions.add(Session(name, client))
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", max_age=IDLE_S)
        return response

    async def logout(request: Request) -> Response:
        session = sessions.get(request.cookies.get(COOKIE))
        form = await request.form()
        if session and hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
            await run_in_threadpool(sessions.drop, request.cookies.get(COOKIE))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE)
        return response

    async def live_js(request: Request) -> Response:
        return Response(LIVE_JS, media_type="text/javascript",
                        headers={"Cache-Control": "max-age=300"})

    async def home(request: Request) -> Response:
        return RedirectResponse("/pipeline", 303)

    def _id(request: Request) -> tuple[int]:
        return (int(request.path_params["id"]),)

    def _filters(request: Request) -> tuple[str | None, str | None]:
        q = request.query_params
        return (q.get("actor") or None, q.get("status") or None)

    routes = [
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/live.js", live_js),
        *[Route(f"/{name}", page(f"{name}.html", read)) for name, read in queries.PAGES.items()],
        Route("/tickets", page("tickets.html", queries.tickets, _filters)),
        Route("/ticket/{id}", page("ticket.html", queries.ticket, _id)),
        Route("/chain/{id}", page("chain.html", queries.chain, _id)),
        Route("/action/retry", action(queries.retry, "ticket_id"), methods=["POST"]),
        Route("/action/retry-all", action(queries.retry_all, "actor"), methods=["POST"]),
        Route("/action/cancel", action(queries.cancel, "ticket_id"), methods=["POST"]),
        Route("/action/actor", action(queries.set_actor, "actor", "enabled"),
              methods=["POST"]),
        Route("/action/model", action(queries.set_model, "model", "enabled"),
              methods=["POST"]),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(sessions.close)

    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(SecurityHeaders)])


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        # why: nothing is loaded from anywhere but this server; no page may be framed.
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _connect(dsn: str) -> Turing:
    return Turing(dsn, min_size=1, max_size=3, wait_s=10)


def _field(name: str, value: str) -> Any:
    if name == "ticket_id":
        if not value.strip().isdigit():
            raise ValueError(f"ticket id {value!r} is not a whole number")
        return int(value)
    if name == "enabled":
        return value == "true"
    if not value:
        raise ValueError(f"the form has no {name}")
    return value


def _sentence(exc: Exception) -> str:
    """One sentence for the page: the domain error's message and hint, no password."""
    if isinstance(exc, TuringError):
        text = exc.message + (f" ({exc.hint})" if exc.hint else "")
    elif isinstance(exc, psycopg.Error):
        text = (exc.diag.message_primary if exc.diag else None) or str(exc)
    else:
        text = str(exc)
    return redact(text.strip())
