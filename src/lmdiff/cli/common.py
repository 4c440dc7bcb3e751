"""Helpers shared by the ``lmdiff`` sub-commands: consoles, list tables, ``--json``, run directories."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

#: Exit status of ``lmdiff diff`` when it finished but at least one requested method failed.
EXIT_METHODS_FAILED = 3

#: The ``--json`` flag of every list command.
JsonFlag = Annotated[bool, typer.Option("--json", help="print a JSON array of objects on stdout instead of a table")]


def default_out(command: str, config_hash: str) -> Path:
    """Default run directory: the same config maps to the same directory, so reruns resume."""
    return Path("lmdiff-runs") / f"{command}-{config_hash[:10]}"


def print_json(rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` as one JSON array to stdout (nothing else), for ``--json``."""
    sys.stdout.write(json.dumps(list(rows), indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def list_table(title: str, identifiers: Iterable[tuple[str, Sequence[str]]], columns: Iterable[str]) -> Table:
    """A table whose identifier columns never truncate, whatever the width of the output.

    Identifier columns (model, organism, method names) never wrap and are at least as wide
    as their longest value, so a name stays whole and greppable when stdout is a pipe or a
    narrow terminal; the other columns wrap (descriptions) and fold rather than ellipsize.

    Args:
        title: the table title.
        identifiers: ``(header, values)`` of each identifier column, first in the table.
        columns: headers of the other columns, in order.
    """
    table = Table(title=title)
    for header, values in identifiers:
        width = max([len(header), *(len(v) for v in values)])
        table.add_column(header, no_wrap=True, min_width=width, overflow="fold", style="bold")
    for header in columns:
        table.add_column(header, overflow="fold")
    return table


def check_llm() -> None:
    """Fail before any model is loaded when the configured LLM (``LMDIFF_LLM``) cannot work."""
    from lmdiff.llm.config import check_llm_config

    check_llm_config()
