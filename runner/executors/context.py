"""What an executor is built with: the runner's configuration and its database client."""

from __future__ import annotations

from dataclasses import dataclass

from turing_pg.config import RunnerConfig
from turing_pg.db import Turing


@dataclass(frozen=True)
class Context:
    cfg: RunnerConfig | None  # None outside a runner (`turing human`)
    turing: Turing
