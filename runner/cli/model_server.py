"""The options that say which model server an LLM call goes to and how it is called, shared by
`turing-runner` and the commands that run an actor outside the queue (`turing harness`,
`matrix`, `chat`), so a trial calls the server exactly as a runner would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from turing_pg.cli.params import INTEGER_MAX, LIMIT
from turing_pg.config import parse_keep_alive

F = TypeVar("F", bound=Callable[..., Any])

# the keyword arguments the options below give a command, as RunnerConfig takes them
NAMES = ("ollama_host", "backend", "openai_base_url", "openai_api_key", "keep_alive", "num_ctx",
         "num_predict")


def _keep_alive(ctx: click.Context, param: click.Parameter, value: str) -> int | str:
    """Refuse a keep_alive Ollama would refuse on every call, before anything starts."""
    try:
        return parse_keep_alive(value)
    except ValueError as exc:
        from_env = ctx.get_parameter_source("keep_alive") is ParameterSource.ENVIRONMENT
        raise click.BadParameter(str(exc), ctx, param,
                                 param_hint="TURING_KEEP_ALIVE" if from_env else None) from None


def model_server_options(f: F) -> F:
    """--ollama-host, --backend, --openai-base-url, --openai-api-key, --keep-alive, --num-ctx,
    --num-predict (each also from its TURING_… environment variable)."""
    options = [
        click.option("--ollama-host", envvar=["TURING_OLLAMA_HOST", "OLLAMA_HOST"],
                     default="http://127.0.0.1:11434", show_default=True,
                     help="Ollama server for llm actors. [env TURING_OLLAMA_HOST, OLLAMA_HOST]"),
        click.option("--backend", envvar="TURING_BACKEND",
                     type=click.Choice(["ollama", "openai"]), default="ollama",
                     show_default=True,
                     help="The model server's API for llm actors: Ollama's (--ollama-host), or "
                          "an OpenAI-compatible one: vLLM, llama.cpp's server, LM Studio "
                          "(--openai-base-url). [env TURING_BACKEND]"),
        click.option("--openai-base-url", envvar="TURING_OPENAI_BASE_URL",
                     default="http://127.0.0.1:8000/v1", show_default=True, metavar="URL",
                     help="With --backend openai: the server's base URL, up to /v1. "
                          "[env TURING_OPENAI_BASE_URL]"),
        click.option("--openai-api-key", envvar=["TURING_OPENAI_API_KEY", "OPENAI_API_KEY"],
                     default="", show_default=False, metavar="KEY",
                     help="With --backend openai: the key the server wants, if any (never "
                          "logged). [env TURING_OPENAI_API_KEY, OPENAI_API_KEY]"),
        click.option("--keep-alive", envvar="TURING_KEEP_ALIVE", default="30m",
                     show_default=True, callback=_keep_alive, metavar="DURATION",
                     help="How long Ollama keeps the served models loaded after a call: 30m, "
                          "1h30m, 90s, seconds (300), 0 = unload after each call, -1 = "
                          "forever. [env TURING_KEEP_ALIVE]"),
        click.option("--num-ctx", envvar="TURING_NUM_CTX", type=LIMIT, default=4096,
                     show_default=True,
                     help="num_ctx sent with every call (fixed per model so Ollama never "
                          "reloads). [env TURING_NUM_CTX]"),
        click.option("--num-predict", envvar="TURING_NUM_PREDICT",
                     type=click.IntRange(-2, INTEGER_MAX), default=1024, show_default=True,
                     help="Default bound on generated tokens (an actor's options may lower "
                          "it). [env TURING_NUM_PREDICT]"),
    ]
    for option in reversed(options):
        f = option(f)
    return f
