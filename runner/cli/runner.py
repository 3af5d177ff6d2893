"""`turing-runner`: serve every enabled actor of a model (one runner per GPU) until stopped.

A command of its own (console script `turing-runner`, or `python -m turing_pg.cli.runner`), not
a subcommand of `turing`; it shares the exit-code table and the `Exit codes:` help paragraph.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

import click

from turing_pg import __version__, logs
from turing_pg.cli.model_server import model_server_options
from turing_pg.cli.options import exit_codes
from turing_pg.cli.params import SECONDS
from turing_pg.config import STAGES, RunnerConfig
from turing_pg.db import TuringError, check_dsn
from turing_pg.exits import Exit


def _split_models(model: tuple[str, ...], models: str | None) -> list[str]:
    names = [m.strip() for m in (models or "").split(",") if m.strip()]
    names += [m for m in model if m not in names]
    return names


@click.command(context_settings={"help_option_names": ["-h", "--help"],
                                 "auto_envvar_prefix": "TURING", "max_content_width": 100})
@click.option("--model", "model", multiple=True, metavar="NAME",
              help="The model (resource) to serve: its every enabled actor. [env TURING_MODEL]")
@click.option("--models", metavar="A,B,…",
              help="Several models on one GPU, model-first: drain the loaded one, then switch to "
                   "the one with most work. [env TURING_MODELS]")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Tickets in flight at once (match Ollama's OLLAMA_NUM_PARALLEL). "
                   "[env TURING_CONCURRENCY]")
@click.option("--batch", type=click.IntRange(0, 1000), default=0,
              help="Tickets per claim (default: --concurrency); extra claims wait locally. "
                   "[env TURING_BATCH]")
@click.option("--dsn", envvar="TURING_DSN", default=None,
              help="PostgreSQL DSN (default: the embedded server). [env TURING_DSN]")
@click.option("--listen-dsn", envvar="TURING_LISTEN_DSN", default="", metavar="DSN|poll",
              help="Where to LISTEN for new work: a direct connection when --dsn goes through "
                   "PgBouncer in transaction mode (default: --dsn, checked, polling when no "
                   "notification arrives), or `poll` for none. [env TURING_LISTEN_DSN]")
@model_server_options
@click.option("--worker", default="", help="Runner name (default: host:pid:model). "
                                           "[env TURING_WORKER]")
@click.option("--poll-interval", type=SECONDS, default=2.0, show_default=True,
              help="Seconds between claims when idle (NOTIFY wakes it sooner). "
                   "[env TURING_POLL_INTERVAL]")
@click.option("--reap-interval", type=SECONDS, default=10.0, show_default=True,
              help="Seconds between reap() calls. [env TURING_REAP_INTERVAL]")
@click.option("--grace", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="On SIGTERM, seconds running calls get to finish. [env TURING_GRACE]")
@click.option("--exit-when-idle", type=click.FloatRange(min=0), default=0.0,
              help="Exit after this many seconds with nothing to do (0: never). "
                   "[env TURING_EXIT_WHEN_IDLE]")
@click.option("--discover-timeout", type=click.FloatRange(min=0.1), default=300.0,
              show_default=True,
              help="Seconds one actor's work_query may run in discovery (off the claim path). "
                   "[env TURING_DISCOVER_TIMEOUT]")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port, "
                   "logged); not served unless given. [env TURING_METRICS_PORT]")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, metavar="HOST",
              help="The address /metrics listens on; 0.0.0.0 (or ::) for a Prometheus on "
                   "another host. [env TURING_METRICS_HOST]")
@click.option("--stage", type=click.Choice(list(STAGES)), default="production",
              show_default=True,
              help="Run the actors whose current version is at this stage or later (develop "
                   "runs every version); an actor below it runs its last production version, "
                   "if it has one. Raq tickets run at any stage. [env TURING_STAGE]")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log lines on stderr. [env TURING_LOG_FORMAT]")
@click.option("-v", "--verbose", count=True, help="More log lines (-v: debug).")
@click.version_option(__version__, prog_name="turing-runner")
@exit_codes(
    (Exit.OK, "stopped by SIGTERM/SIGINT or --exit-when-idle, also while it still waited for "
              "the database"),
    Exit.ERROR,
    (Exit.USAGE, "also a --metrics-port that is taken"),
    (Exit.UNKNOWN, "an unknown --model: the message lists the known ones"),
    (Exit.PERMISSION, "the login is not in turing_runner: the message names the role"),
    others=None,
)
def main(model: tuple[str, ...], models: str | None, concurrency: int, batch: int,
         dsn: str | None, listen_dsn: str, ollama_host: str, backend: str,
         openai_base_url: str, openai_api_key: str, worker: str, poll_interval: float,
         reap_interval: float, grace: float, keep_alive: int | str, num_ctx: int, num_predict: int,
         exit_when_idle: float, discover_timeout: float, metrics_port: int | None,
         metrics_host: str, stage: str, log_format: str, verbose: int) -> None:
    """Claim and run the tickets of every enabled actor of MODEL until stopped.

    One runner per GPU: `--model qwen2.5:7b` serves every actor of that model (it never idles
    while any of them has work). Script and SQL actors are served by a runner of their
    resource name, `--model cpu` by default. SIGTERM/SIGINT: stop claiming, give unstarted
    claims back at once, let running calls finish within --grace, exit 0. After a SIGKILL
    nothing is needed by hand: expired leases are reaped and the work retried.

    \b
    Examples:
      turing-runner --model qwen2.5:7b --concurrency 4
      turing-runner --models qwen2.5:7b,llama3.1:8b      # two models sharing one GPU
      turing-runner --model cpu --concurrency 8           # script and SQL actors
      turing-runner --model Qwen/Qwen2.5-7B-Instruct --backend openai \\
          --openai-base-url http://gpu1:8000/v1           # a vLLM server
      TURING_MODEL=qwen2.5:7b TURING_DSN=postgresql:///app turing-runner
      turing-runner --model qwen2.5:7b --stage develop     # a developer's runner: every version
    """
    logs.setup(log_format, logging.DEBUG if verbose else logging.INFO)
    names = _split_models(model, models)
    if not names:
        raise click.UsageError("give --model NAME (or --models A,B); see turing-runner --help")
    try:
        dsn_from = "given" if dsn else "embedded"
        if dsn:
            check_dsn(dsn)
        else:
            from turing_pg.pgserver import resolve_dsn

            dsn = resolve_dsn(None)
        from turing_pg.loop import Runner

        cfg = RunnerConfig(
            models=names, dsn=dsn, dsn_from=dsn_from, listen_dsn=listen_dsn,
            ollama_host=ollama_host, backend=backend, openai_base_url=openai_base_url,
            openai_api_key=openai_api_key,
            concurrency=concurrency,
            batch=batch, worker=worker, poll_interval=poll_interval,
            reap_interval=reap_interval, grace=grace, keep_alive=keep_alive, num_ctx=num_ctx,
            num_predict=num_predict, log_format=log_format, exit_when_idle=exit_when_idle,
            discover_timeout=discover_timeout, metrics_port=metrics_port,
            metrics_host=metrics_host, stage=stage,
        )
        runner = Runner(cfg)
        runner.install_signals()
        code = runner.run()
    except TuringError as exc:
        logs.event("error", error=str(exc), level=logging.ERROR)
        click.echo(f"turing-runner: {exc}", err=True)
        code = exc.exit_code
    sys.stdout.flush()
    sys.stderr.flush()
    if threading.active_count() > 1:
        # why: an abandoned HTTP call after the grace period must not keep the process alive;
        # its ticket was already released.
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
