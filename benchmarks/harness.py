"""What every benchmark script shares: its command line, built from ``run()``, and tables.

Each ``bench_*.py`` module in this folder offers the same interface, which
``run_all.py`` relies on:

* ``run(**options) -> dict``: the measurements, JSON-ready. Every option has a default,
  the full size that BENCHMARKS.md reports; the options are documented in the
  ``Args:`` section of its docstring.
* ``table(result) -> str``: the Markdown table of BENCHMARKS.md for that result.
* ``QUICK``: the options of a seconds-long smoke run (``run_all.py --quick``).
* optionally ``skip_reason(**options) -> str | None``: why the bench cannot run here
  (an optional input is absent), or None.
* ``main()``: ``harness.main(sys.modules[__name__])``.

The command line of a script is derived from the signature of its ``run()``: option
``min_run_time`` is ``--min-run-time``, with the type of its default. So the options
passed to ``run()`` always translate back into the command that reproduces them
(:func:`command`).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["command", "defaults", "main", "markdown_table", "measure", "skip_reason"]


def defaults(module: ModuleType) -> dict[str, Any]:
    """The options of ``module.run`` and their (full-size) defaults."""
    return {
        name: p.default
        for name, p in inspect.signature(module.run).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _option_help(doc: str | None) -> dict[str, str]:
    """``{option: help}`` from the ``Args:`` section of a Google docstring."""
    helps: dict[str, str] = {}
    section = re.search(r"\n\s*Args:\n(.*?)(?:\n\s*\n|\Z)", doc or "", re.S)
    current = None
    for line in section.group(1).splitlines() if section else []:
        item = re.match(r"\s*(\w+):\s*(.*)", line)
        if item:
            current = item.group(1)
            helps[current] = item.group(2)
        elif current:
            helps[current] += " " + line.strip()
    return helps


def _parser(module: ModuleType) -> argparse.ArgumentParser:
    doc = (module.__doc__ or module.__name__).strip()
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    helps = _option_help(module.run.__doc__)
    for name, default in defaults(module).items():
        text = f"{helps.get(name, '')} (default: %(default)s)".strip()
        if isinstance(default, bool):
            parser.add_argument(
                _flag(name), default=default, action=argparse.BooleanOptionalAction, help=text
            )
        else:
            parser.add_argument(_flag(name), type=type(default), default=default, help=text)
    parser.add_argument(
        "--quick", action="store_true", help=f"Smoke-run sizes {module.QUICK} (options given win)."
    )
    parser.add_argument("--json", action="store_true", help="Print the result as JSON instead.")
    return parser


def command(module: ModuleType, options: dict[str, Any]) -> str:
    """The shell command that runs ``module`` with ``options``.

    The interpreter and the script are written relative to the working directory
    when they lie below it (``.venv/bin/python benchmarks/bench_x.py`` from the
    repository root, as ``make bench`` runs it).
    """
    base = defaults(module)
    unknown = sorted(set(options) - set(base))
    if unknown:
        raise ValueError(f"{module.__name__}.run() has no option(s) {unknown}")
    words = [_relative(Path(sys.executable)), _relative(Path(module.__file__))]
    for name, value in options.items():
        if isinstance(base[name], bool):
            words.append(_flag(name) if value else "--no-" + _flag(name)[2:])
        else:
            words += [_flag(name), str(value)]
    return shlex.join(words)


def _relative(path: Path) -> str:
    absolute = Path(os.path.abspath(path))  # not resolve(): keep the venv's python link
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def skip_reason(module: ModuleType, options: dict[str, Any]) -> str | None:
    """Why ``module`` cannot run with ``options`` here (an optional input is absent)."""
    check = getattr(module, "skip_reason", None)
    return check(**options) if check else None


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table: the first column left-aligned (labels), the others right (numbers)."""
    lines = ["| " + " | ".join(row) + " |" for row in [header, *rows]]
    lines.insert(1, "|---|" + "---:|" * (len(header) - 1))
    return "\n".join(lines)


def main(module: ModuleType, argv: Sequence[str] | None = None) -> None:
    """Command-line entry point of a bench script: options → ``run()`` → table or JSON."""
    parser = _parser(module)
    if parser.parse_args(argv).quick:
        parser.set_defaults(**module.QUICK)  # options named on the command line still win
    args = vars(parser.parse_args(argv))
    as_json = args.pop("json")
    del args["quick"]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    reason = skip_reason(module, args)
    if reason:
        print(f"skipped: {reason}")  # a script: stdout is its output
        return
    result = measure(module, args)
    print(json.dumps(result, indent=2) if as_json else module.table(result))


def measure(module: ModuleType, options: dict[str, Any]) -> dict:
    """``module.run(**options)`` with whatever it prints sent to stderr.

    Libraries print progress to stdout (Lightning's progress bar); the bench's own
    output, its table, must stay alone there.
    """
    with contextlib.redirect_stdout(sys.stderr):
        return module.run(**options)
