"""``python -m turing_pg.fake_ollama``: run the fake server as a standalone process.

Prints exactly one line ``listening http://HOST:PORT`` (flushed) once it accepts connections,
then serves until SIGTERM/SIGINT. Tests in other processes drive it via the /_fake/* endpoints.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from .config import FakeConfig, ModelSpec, normalize_model_name
from .server import FakeOllama


def build_config(args: argparse.Namespace) -> FakeConfig:
    data: dict[str, Any] = {}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            data = json.load(fh)
    config = FakeConfig.from_dict(data)
    if args.time_scale is not None:
        config.time_scale = args.time_scale
    for name in ("num_parallel", "max_loaded_models", "max_queue"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    if args.models:
        # Keep the detailed spec of a model the config file already describes.
        known = {m.name: m for m in config.models}
        names = [normalize_model_name(n.strip()) for n in args.models.split(",") if n.strip()]
        config.models = [known.get(n) or ModelSpec(name=n) for n in names]
    config.validate()
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m turing_pg.fake_ollama", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--config", help="JSON file mirroring FakeConfig (models, faults, ...)")
    parser.add_argument("--time-scale", type=float, dest="time_scale")
    parser.add_argument("--models", help="comma-separated model names (default specs)")
    parser.add_argument("--num-parallel", type=int, dest="num_parallel")
    parser.add_argument("--max-loaded-models", type=int, dest="max_loaded_models")
    parser.add_argument("--max-queue", type=int, dest="max_queue")
    args = parser.parse_args(argv)

    stop = threading.Event()
    # Handlers only set a flag: the main thread does the shutdown outside signal context.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    fake = FakeOllama(build_config(args), host=args.host, port=args.port).start()
    try:
        print(f"listening {fake.base_url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
