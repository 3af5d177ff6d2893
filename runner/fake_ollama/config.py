"""Configuration dataclasses of the fake Ollama server (reference §5.3 and §5.9).

Defaults mirror a real Ollama server; tests shrink them with ``time_scale`` and small
``load_s`` values instead of changing the semantics.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

GIB = 1024**3

# Options that are baked into the llama.cpp process at load time: changing any of them between
# requests makes real Ollama reload the model (server/sched.go needsReload).
RUNNER_OPTION_KEYS: tuple[str, ...] = (
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "use_mmap",
    "num_thread",
)

UNLOAD_REASONS: tuple[str, ...] = ("expired", "evicted", "explicit", "reload", "crash")

FAULT_ACTIONS: frozenset[str] = frozenset(
    {
        "hang",
        "http_error",
        "stream_error",
        "drop",
        "malformed_ndjson",
        "bad_output",
        "slow_load",
        "load_fail",
        "load_stall",
        "slow_tokens",
        "stall",
        "runaway",
        "crash_runner",
        "reject_503",
    }
)
# These act on the next load of the matched model rather than on the request itself.
LOAD_FAULT_ACTIONS: frozenset[str] = frozenset({"slow_load", "load_fail", "load_stall"})

BAD_OUTPUT_KINDS: frozenset[str] = frozenset(
    {
        "truncated_json",
        "not_json",
        "fenced_json",
        "trailing_whitespace",
        "empty",
        "empty_object",
        "schema_violation",
    }
)

_FAULT_STAGES: dict[str, frozenset[str]] = {
    "hang": frozenset({"queued", "loading", "before_headers", "after_chunks"}),
    "http_error": frozenset({"before_load", "after_load"}),
    "drop": frozenset({"before_headers", "after_chunks"}),
}

DEFAULT_LOAD_FAIL_MESSAGE = "llama runner process has terminated: exit status 2"
DEFAULT_RUNNER_STOPPED_MESSAGE = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an "
    "internal error, check ollama server logs for details"
)
LOAD_TIMEOUT_MESSAGE = "timed out waiting for llama runner to start - progress 0.00 - "
BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"


def normalize_model_name(name: str) -> str:
    """``llama3`` and ``llama3:latest`` name the same model, as in Ollama."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


@dataclass
class ModelSpec:
    """One configured model: what /api/tags shows and how fast the simulated GPU runs it."""

    name: str
    digest: str = ""  # empty => sha256 of the name, so every model has a stable 64-hex digest
    size_bytes: int = 4_683_087_332
    vram_bytes: int | None = None  # None => size_bytes (weights fully on GPU)
    kv_bytes_per_token: int = 57_344  # x num_ctx x num_parallel is added to the VRAM estimate
    family: str = "qwen2"
    parameter_size: str = "7.6B"
    quantization_level: str = "Q4_K_M"
    context_length: int = 32768
    capabilities: list[str] = field(default_factory=lambda: ["completion", "tools"])
    load_s: float = 3.0  # warm load (weights in page cache)
    # First load since the server started; None => same as load_s so setting load_s alone
    # never hides a surprise 12 s cold start in a test.
    cold_load_s: float | None = None
    first_token_penalty_s: float = 0.0  # extra prefill on the first request after a load
    prefill_tok_s: float = 3000.0
    decode_tok_s: float = 80.0
    parallel_slowdown: float = 0.15  # per-token latency x (1 + k * (active_slots - 1))
    scripted: list[tuple[str, str]] = field(default_factory=list)  # (prompt regex, fixed text)

    def __post_init__(self) -> None:
        self.name = normalize_model_name(self.name)
        if not self.digest:
            self.digest = hashlib.sha256(self.name.encode()).hexdigest()
        # JSON configs give [regex, text] lists; keep tuples so the dataclass stays hashable-ish.
        self.scripted = [(str(p), str(t)) for p, t in self.scripted]
        for pattern, _ in self.scripted:
            re.compile(pattern)

    @property
    def weights_vram(self) -> int:
        return self.size_bytes if self.vram_bytes is None else self.vram_bytes

    @property
    def parameter_count(self) -> int:
        m = re.fullmatch(r"([\d.]+)\s*([KMBT]?)", self.parameter_size.strip().upper())
        if not m:
            return 0
        scale = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}[m.group(2)]
        return int(float(m.group(1)) * scale)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | str) -> ModelSpec:
        if isinstance(data, str):
            return cls(name=data)
        return cls(**_checked_fields(cls, data))


def default_models() -> list[ModelSpec]:
    """Two common 7-8B models so the CLI works without a config file."""
    return [
        ModelSpec(name="qwen2.5:7b"),
        ModelSpec(
            name="llama3.1:8b",
            size_bytes=4_920_753_328,
            family="llama",
            parameter_size="8.0B",
            quantization_level="Q4_K_M",
            context_length=131072,
            kv_bytes_per_token=131_072,
        ),
    ]


@dataclass
class FaultRule:
    """A fault to inject into matching /api/chat and /api/generate requests (§5.9).

    Matching: every filter that is set must match (``model``, ``endpoint`` = "chat" or
    "generate", ``prompt_regex`` searched in the rendered prompt). Counting is per rule over the
    requests that pass the filters: ``nth`` fires only on the n-th one (1-based), ``every_n`` on
    every n-th, ``probability`` with a seeded RNG, and ``times`` caps the total firings.

    Action parameters: ``stage`` (hang: queued / loading / before_headers / after_chunks;
    http_error: before_load / after_load; drop: before_headers / after_chunks),
    ``after_chunks`` (stream position for stream_error / drop / malformed_ndjson / stall /
    crash_runner / hang), ``status`` + ``message`` (http_error; message also overrides the text
    of stream_error / load_fail / crash_runner), ``kind`` (bad_output), ``seconds`` (slow_load
    duration and stall pause, simulated seconds), ``ms`` (slow_tokens extra per-token delay).
    """

    action: str
    model: str | None = None
    endpoint: str | None = None
    prompt_regex: str | None = None
    nth: int | None = None
    every_n: int | None = None
    probability: float | None = None
    times: int | None = None
    stage: str | None = None
    after_chunks: int = 0
    status: int = 500
    message: str | None = None
    kind: str | None = None
    seconds: float = 0.0
    ms: float = 0.0
    id: int | None = None  # assigned by the server when the rule is added

    def __post_init__(self) -> None:
        if self.action not in FAULT_ACTIONS:
            raise ValueError(
                f"unknown fault action {self.action!r}; one of {sorted(FAULT_ACTIONS)}"
            )
        if self.model:
            self.model = normalize_model_name(self.model)
        if self.endpoint:
            self.endpoint = self.endpoint.removeprefix("/api/").strip("/")
            if self.endpoint not in ("chat", "generate"):
                raise ValueError("fault endpoint must be 'chat' or 'generate'")
        if self.prompt_regex:
            re.compile(self.prompt_regex)
        if self.action == "bad_output" and self.kind not in BAD_OUTPUT_KINDS:
            raise ValueError(f"bad_output needs kind in {sorted(BAD_OUTPUT_KINDS)}")
        allowed = _FAULT_STAGES.get(self.action)
        if self.stage is not None and (allowed is None or self.stage not in allowed):
            raise ValueError(f"stage {self.stage!r} is not valid for action {self.action!r}")
        for name in ("nth", "every_n", "times"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "times" else 1):
                raise ValueError(f"{name} must be positive")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        return cls(**_checked_fields(cls, data))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FakeConfig:
    """Server-wide knobs; names follow the OLLAMA_* environment variables they emulate."""

    version: str = "0.12.6"
    time_scale: float = 1.0  # multiplies every simulated delay (loads, tokens, keep_alive timers)
    vram_bytes: int = 80 * GIB
    fit_fraction: float = 0.8  # a new model must fit in 80% of free VRAM when others are loaded
    max_loaded_models: int = 3  # OLLAMA_MAX_LOADED_MODELS; 0 => 3 (one simulated GPU)
    num_parallel: int = 1  # OLLAMA_NUM_PARALLEL; fixed per runner at load time
    max_queue: int = 512  # OLLAMA_MAX_QUEUE: bounds the scheduler queue only, not slot waiters
    default_keep_alive_s: float = 300.0  # OLLAMA_KEEP_ALIVE (simulated seconds)
    load_timeout_s: float = 300.0  # OLLAMA_LOAD_TIMEOUT
    default_num_ctx: int = 4096  # OLLAMA_CONTEXT_LENGTH
    unload_s: float = 1.0  # VRAM-recovery wait per unload
    fast_path_for_loaded: bool = True  # v0.11.5+: resident models bypass the pending queue
    reload_on_runner_option_change: bool = True
    context_overflow: str = "truncate"  # or "error400" (newest servers)
    not_found_style: str = "new"  # chat 404 text: "new" (>= v0.12) or "old"
    default_stream: bool = True  # what an absent "stream" field means
    nondeterministic_without_seed: bool = False  # mix a counter in when options.seed is absent
    fault_seed: int = 0  # seeds FaultRule.probability
    max_events: int = 100_000  # event log is a ring buffer so long benchmarks stay bounded
    models: list[ModelSpec] = field(default_factory=default_models)
    faults: list[FaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.models = [
            m if isinstance(m, ModelSpec) else ModelSpec.from_dict(m) for m in self.models
        ]
        self.faults = [
            f if isinstance(f, FaultRule) else FaultRule.from_dict(f) for f in self.faults
        ]
        self.validate()

    def validate(self) -> None:
        if self.time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        if self.num_parallel < 1:
            raise ValueError("num_parallel must be >= 1")
        if self.max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        if self.context_overflow not in ("truncate", "error400"):
            raise ValueError("context_overflow must be 'truncate' or 'error400'")
        if self.not_found_style not in ("new", "old"):
            raise ValueError("not_found_style must be 'new' or 'old'")

    @property
    def effective_max_loaded(self) -> int:
        return self.max_loaded_models if self.max_loaded_models > 0 else 3

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FakeConfig:
        return cls(**_checked_fields(cls, data))


def _checked_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown keys: a typo in a fault rule must fail loudly, not silently never fire."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} expects a JSON object")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return dict(data)


# --- keep_alive parsing (api/types.go Duration.UnmarshalJSON + Go time.ParseDuration) ---------

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class DurationError(ValueError):
    """Carries the exact Go error text that real Ollama returns with HTTP 400."""


def parse_go_duration(text: str) -> float:
    """Port of Go's time.ParseDuration, returning seconds."""
    orig = text
    quoted = '"' + orig + '"'
    neg = False
    if text and text[0] in "+-":
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":  # Go special-cases a bare "0" (so keep_alive "0" is valid, "10" is not)
        return 0.0
    if not text:
        raise DurationError("time: invalid duration " + quoted)
    total = 0.0
    while text:
        m = re.match(r"(\d*)(?:\.(\d*))?", text)
        assert m is not None
        int_part, frac_part = m.group(1), m.group(2)
        if not int_part and not frac_part:
            raise DurationError("time: invalid duration " + quoted)
        text = text[m.end() :]
        u = re.match(r"[^\d.]+", text)
        if not u:
            raise DurationError("time: missing unit in duration " + quoted)
        unit = u.group(0)
        if unit not in _UNITS:
            raise DurationError(f'time: unknown unit "{unit}" in duration {quoted}')
        text = text[u.end() :]
        total += float(f"{int_part or 0}.{frac_part or 0}") * _UNITS[unit]
    return -total if neg else total


def parse_keep_alive(value: Any) -> float | None:
    """JSON keep_alive -> simulated seconds; ``math.inf`` = forever, None = field absent."""
    if value is None:
        return None
    if isinstance(value, bool):  # bool is an int subclass in Python; Go rejects it
        raise DurationError("Unsupported type: 'bool'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_go_duration(value)
    else:
        kind = {list: "[]interface {}", dict: "map[string]interface {}"}.get(type(value), "?")
        raise DurationError(f"Unsupported type: '{kind}'")
    # Real Ollama stores every negative duration as MaxInt64 ns (~292 years): "forever".
    return math.inf if seconds < 0 else seconds
