"""Generate docs/sql-api.md from the schema's own COMMENT ONs (the schema is the documentation)
and docs/cli.md from the commands' --help.

`python -m turing_pg.docgen` regenerates both (the SQL one on a scratch database); tests check
that the committed files match.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg

HEADER = """# Turing SQL API reference

Generated from the `COMMENT ON`s of the `turing` schema by `python -m turing_pg.docgen`;
do not edit by hand (a test fails when this file and the schema disagree).
"""


def sql_api_markdown(conn: psycopg.Connection) -> str:
    out = [HEADER]
    # why: the actor definition's one spec is turing.actors itself; this table is derived from
    # it (turing.actor_fields), so the docs cannot drift from what register_actor accepts.
    out.append("## Actor definition fields\n")
    out.append("What `register_actor(jsonb)`, `set_actor` and actor YAML files take "
               "(`select * from turing.actor_fields`).\n")
    out.append("| field | type | default | changeable | meaning |\n|---|---|---|---|---|")
    for field, type_, default, settable, description in conn.execute(
        "select field, type, default_value, settable, description from turing.actor_fields "
        "order by position"
    ).fetchall():
        default_text = f"`{default}`" if default else "—"
        out.append(f"| `{field}` | `{type_}` | {default_text} | {'yes' if settable else 'no'} | "
                   f"{description or '(undocumented)'} |")
    out.append("\n## Actor kinds\n")
    out.append("| kind | needs | its own defaults | what it is |\n|---|---|---|---|")
    for kind, required, defaults, description in conn.execute(
        "select kind, required, defaults, description from turing.actor_kinds order by kind"
    ).fetchall():
        needs = ", ".join(f"`{r}`" for r in required) or "—"
        own = ", ".join(f"`{k}` = `{v}`" for k, v in defaults.items()) or "—"
        out.append(f"| `{kind}` | {needs} | {own} | {description} |")
    out.append("")
    out.append("## Functions\n")
    functions = conn.execute(
        """
        select p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_function_result(p.oid), p.prosecdef, obj_description(p.oid, 'pg_proc')
        from pg_proc p
        where p.pronamespace = 'turing'::regnamespace and p.proname !~ '^_'
        order by p.proname, 2
        """
    ).fetchall()
    for name, args, result, secdef, comment in functions:
        out.append(f"### `turing.{name}({args})`\n")
        out.append(f"Returns `{result}`{' · security definer' if secdef else ''}.\n")
        out.append(f"{comment or '(undocumented)'}\n")
    out.append("## Views\n")
    for name, comment in conn.execute(
        "select c.relname, obj_description(c.oid, 'pg_class') from pg_class c "
        "where c.relnamespace = 'turing'::regnamespace and c.relkind = 'v' order by 1"
    ).fetchall():
        out.append(f"### `turing.{name}`\n\n{comment or '(undocumented)'}\n")
    out.append("## Tables\n")
    tables = conn.execute(
        "select c.oid, c.relname, obj_description(c.oid, 'pg_class') from pg_class c "
        "where c.relnamespace = 'turing'::regnamespace and c.relkind = 'r' order by 2"
    ).fetchall()
    for oid, name, comment in tables:
        out.append(f"### `turing.{name}`\n\n{comment or '(undocumented)'}\n")
        cols = conn.execute(
            "select a.attname, format_type(a.atttypid, a.atttypmod), "
            "col_description(a.attrelid, a.attnum) from pg_attribute a "
            "where a.attrelid = %s and a.attnum > 0 and not a.attisdropped "
            "and col_description(a.attrelid, a.attnum) is not null order by a.attnum",
            (oid,),
        ).fetchall()
        if cols:
            out.append("| column | type | meaning |\n|---|---|---|")
            out += [f"| `{c}` | `{t}` | {d} |" for c, t, d in cols]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def cli_markdown() -> str:
    """Every `turing` and `turing-runner` command's --help, in one page."""
    import click

    from turing_pg.cli import main as cli_main

    out = [
        "# `turing` and `turing-runner` command reference\n",
        "Generated from the commands' own `--help` by `python -m turing_pg.docgen`; do not edit.",
        "Shell completion: `eval \"$(_TURING_COMPLETE=bash_source turing)\"` in ~/.bashrc "
        "(zsh: `zsh_source`, fish: `fish_source`).\n",
    ]

    def walk(cmd: click.Command, path: list[str]) -> None:
        # why: a fixed width, so the file does not depend on the terminal that generated it
        with click.Context(cmd, info_name=" ".join(path), terminal_width=100,
                           max_content_width=100) as ctx:
            out.append(f"## `{' '.join(path)}`\n\n```\n{cmd.get_help(ctx)}\n```\n")
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.commands):
                walk(cmd.commands[name], [*path, name])

    walk(cli_main, ["turing"])
    from turing_pg.cli.runner import main as runner_main

    walk(runner_main, ["turing-runner"])
    return "\n".join(out).rstrip() + "\n"


def main() -> None:  # pragma: no cover - a developer tool
    import tempfile

    from turing_pg import schema
    from turing_pg.pgserver import EmbeddedServer

    home = Path(tempfile.mkdtemp(prefix="turing-docgen-"))
    server = EmbeddedServer(home)
    try:
        info = server.ensure_running()
        schema.upgrade(info.dsn())
        with psycopg.connect(info.dsn()) as conn:
            text = sql_api_markdown(conn)
    finally:
        server.destroy()
    docs = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs")
    (docs / "sql-api.md").write_text(text)
    (docs / "cli.md").write_text(cli_markdown())
    print(f"wrote {docs}/sql-api.md and {docs}/cli.md")


if __name__ == "__main__":  # pragma: no cover
    main()
