"""Ollama-compatible fake server for tests, benchmarks and offline demos (no GPU needed).

It speaks the Ollama HTTP API well enough for the official ``ollama`` Python client, simulates
the scheduler (loads, evictions, keep_alive, parallel slots, the 503 queue limit) in scaled
wall-clock time, produces deterministic outputs that satisfy the request's JSON schema, injects
faults on demand and counts GPU-busy / loading time. See docs in the reference, section 5.
It also answers the OpenAI-compatible API (/v1/chat/completions, /v1/models: openai_api.py)
with the same scheduling, outputs and faults.

    from turing_pg.fake_ollama import FakeOllama, FakeConfig, ModelSpec, FaultRule

    cfg = FakeConfig(time_scale=0.01, models=[ModelSpec("qwen2.5:7b", load_s=3.0)])
    with FakeOllama(cfg) as fake:
        client = ollama.Client(host=fake.base_url)
        ...
        fake.stats()["models"]["qwen2.5:7b"]["loads"]

Run as a process: ``python -m turing_pg.fake_ollama --port 0 [--config cfg.json]``.
"""

from .config import (
    BUSY_MESSAGE,
    FakeConfig,
    FaultRule,
    ModelSpec,
    default_models,
    parse_go_duration,
    parse_keep_alive,
)
from .server import FakeOllama

__all__ = [
    "BUSY_MESSAGE",
    "FakeConfig",
    "FakeOllama",
    "FaultRule",
    "ModelSpec",
    "default_models",
    "parse_go_duration",
    "parse_keep_alive",
]
