"""Derived documentation stays in step with its source."""

from pathlib import Path

from turing_pg.docgen import sql_api_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_sql_api_reference_matches_the_schema_comments(conn):
    committed = (ROOT / "docs" / "sql-api.md").read_text()
    assert sql_api_markdown(conn) == committed, (
        "docs/sql-api.md is stale: run `python -m turing_pg.docgen`"
    )


def test_cli_reference_matches_the_commands():
    from turing_pg.docgen import cli_markdown

    committed = (ROOT / "docs" / "cli.md").read_text()
    assert cli_markdown() == committed, "docs/cli.md is stale: run `python -m turing_pg.docgen`"
