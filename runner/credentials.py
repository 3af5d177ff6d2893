"""Credentials never leave the process: no password is printed, logged or stored.

Two layers. What Turing shows on purpose (a DSN in `--json`, the Ollama host in a log line, a
runner's `info`) is masked where it is made: `mask_dsn`, `mask_url`. Whatever could carry a
credential by accident (an error message, a script's stderr, a log field) passes through
`redact`, which replaces every password this process was given (`hide`) by `***`: the net under
the first layer, so a path nobody thought of still prints no password.

`turing db dsn` is the one exception: printing the DSN is what it is asked for.
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import unquote, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

MASK = "***"
# why: redacting a very short password would blank that letter sequence in every line it
# touches (a password "a" would turn every "a" into ***); such a password still never appears
# where Turing masks at the source, only the net skips it.
MIN_REDACTED_LENGTH = 4

# why: a DSN libpq cannot parse still has to give up its password to the net.
_URI_PASSWORD = re.compile(r"://[^:/?#@\s]*:([^@/?#\s]+)@")
_KEYWORD_PASSWORD = re.compile(r"""\bpassword\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s']+))""")


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ***."""
    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        return "<unparsable dsn>"
    if params.get("password"):
        params["password"] = MASK
    return make_conninfo(**params)


def mask_url(url: str) -> str:
    """A URL with the password of its user info replaced by *** (http://u:***@host), the host
    and port kept as written."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))


def passwords_in(text: str) -> set[str]:
    """The passwords a DSN (keyword or URI form) or a URL carries: as given, URL-decoded and
    JSON-escaped (the forms a text may quote it in)."""
    found: set[str] = set()
    try:
        password = conninfo_to_dict(text).get("password")
        if password:
            found.add(str(password))
    except Exception:
        pass  # why: an unparsable DSN is searched with the patterns below instead
    try:
        password = urlsplit(text).password
        if password:
            found.add(password)
    except ValueError:
        pass
    for m in _URI_PASSWORD.finditer(text):
        found.add(m.group(1))
    for m in _KEYWORD_PASSWORD.finditer(text):
        found.add(m.group(1) if m.group(1) is not None else m.group(2))
    found |= {unquote(p) for p in found}
    # why: a log line or a stored jsonb holds the JSON-escaped form of a password with " or \\
    return found | {json.dumps(p)[1:-1] for p in found}


class Redactor:
    """The passwords this process was given, and a function that removes them from a text."""

    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def hide(self, *sources: str | None) -> None:
        """Remember the passwords of these DSNs / URLs (None and password-less ones add none)."""
        found = {p for s in sources if s for p in passwords_in(s)
                 if len(p) >= MIN_REDACTED_LENGTH}
        with self._lock:
            # why: longest first, so a password that contains another is replaced whole
            self._secrets = tuple(sorted(set(self._secrets) | found, key=len, reverse=True))

    def hide_values(self, *values: str | None) -> None:
        """Remember secrets that are not inside a DSN or URL (an API key)."""
        found = {v for v in values if v and len(v) >= MIN_REDACTED_LENGTH}
        with self._lock:
            self._secrets = tuple(sorted(set(self._secrets) | found, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def forget(self) -> None:
        """Forget every password (for tests that run several configurations in one process)."""
        with self._lock:
            self._secrets = ()


# why: one per process, like the log handler: a runner or a CLI command is given its
# credentials once, and every path that prints or stores text reads them from here.
redact = Redactor()
hide = redact.hide
hide_values = redact.hide_values
