"""Minimal HTTP/1.1 server side: request parsing, keep-alive, Content-Length and chunked bodies.

Hand-rolled on asyncio streams (instead of http.server) so the fake can (a) hold thousands of
hung connections cheaply, (b) notice a client disconnect while a request is queued or
generating, and (c) close a socket in the middle of a chunked body to simulate crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
SIMULATED_HEADER = ("X-Turing-Simulated", "1")


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path or "/"
        self.query = parse_qs(parts.query)

    @property
    def wants_keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


class Connection:
    """One client socket; owns a read buffer so the disconnect watcher never loses bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._buf = bytearray()
        self.closed = False
        self.peer_gone = asyncio.Event()
        self.headers_sent = False
        self._chunked = False

    async def _fill(self) -> bool:
        try:
            data = await self.reader.read(65536)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            return False
        self._buf += data
        return True

    async def _read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not await self._fill():
                raise BadRequest(400, "unexpected EOF in request body")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def _read_line(self) -> bytes:
        while b"\r\n" not in self._buf:
            if len(self._buf) > MAX_HEAD_BYTES or not await self._fill():
                raise BadRequest(400, "malformed chunked body")
        idx = self._buf.index(b"\r\n")
        line = bytes(self._buf[:idx])
        del self._buf[: idx + 2]
        return line

    async def read_request(self) -> Request | None:
        """Next request on the connection, or None when the client closed it cleanly."""
        self.headers_sent = False
        while True:
            while self._buf.startswith(b"\r\n"):  # RFC 9112 allows stray CRLF between requests
                del self._buf[:2]
            if b"\r\n\r\n" in self._buf:
                break
            if len(self._buf) > MAX_HEAD_BYTES:
                raise BadRequest(431, "request header fields too large")
            if not await self._fill():
                if self._buf:
                    raise BadRequest(400, "incomplete request head")
                return None
        end = self._buf.index(b"\r\n\r\n")
        head = bytes(self._buf[:end]).decode("latin-1")
        del self._buf[: end + 4]
        lines = head.split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise BadRequest(400, "malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest(505, "HTTP version not supported")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadRequest(400, "malformed header line")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        body = b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked_body()
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise BadRequest(400, "invalid content-length") from None
            if length < 0 or length > MAX_BODY_BYTES:
                raise BadRequest(413, "request body too large")
            body = await self._read_exact(length)
        return Request(
            method=method.upper(), target=target, version=version, headers=headers, body=body
        )

    async def _read_chunked_body(self) -> bytes:
        out = bytearray()
        while True:
            size_line = (await self._read_line()).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest(400, "malformed chunk size") from None
            if size == 0:
                while await self._read_line():  # trailers until the empty line
                    pass
                return bytes(out)
            out += await self._read_exact(size)
            await self._read_exact(2)
            if len(out) > MAX_BODY_BYTES:
                raise BadRequest(413, "request body too large")

    async def watch_disconnect(self) -> None:
        """Runs while a request is processed; returns when the peer closes the socket.

        Bytes that arrive meanwhile (a pipelined request) are kept for read_request().
        """
        while await self._fill():
            pass
        self.peer_gone.set()

    # --- responses ----------------------------------------------------------------------------

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {email.utils.formatdate(usegmt=True)}"]
        lines += [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("connection already closed")
        self.writer.write(data)
        await self.writer.drain()

    async def send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        keep_alive: bool = True,
        head_only: bool = False,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        headers += extra or []
        if not keep_alive:
            headers.append(("Connection", "close"))
        self.headers_sent = True
        await self._write(self._head(status, headers) + (b"" if head_only else body))

    async def send_json(self, status: int, obj: Any, **kw: Any) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode()
        await self.send(status, body, "application/json; charset=utf-8", **kw)

    async def start_chunked(
        self, status: int, content_type: str, extra: list[tuple[str, str]]
    ) -> None:
        headers = [("Content-Type", content_type), ("Transfer-Encoding", "chunked"), *extra]
        self.headers_sent = True
        self._chunked = True
        await self._write(self._head(status, headers))

    async def write_chunk(self, data: bytes) -> None:
        if data:  # a zero-length chunk would terminate the body early
            await self._write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    async def end_chunked(self) -> None:
        self._chunked = False
        await self._write(b"0\r\n\r\n")

    def close(self) -> None:
        """Close the socket now (FIN): mid-body this is 'incomplete chunked read' for httpx."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()
