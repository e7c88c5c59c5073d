"""What ``--help`` of every command shows: defaults, the registered methods, flags."""

from __future__ import annotations

import re

import click
import pytest
import typer
from typer.testing import CliRunner

from rankbygene.cli.main import app
from rankbygene.methods import list_methods


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the CLI, as argument lists (``()`` is the root)."""
    paths: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


def _help(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


PATHS = _command_paths()


def test_every_command_is_walked() -> None:
    assert {("train",), ("demo",), ("evaluate", "genes"), ("data", "import", "her2st")} <= set(
        PATHS
    )


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "rankbygene")
def test_help_has_no_blank_default_and_no_value_on_a_flag(path: tuple[str, ...]) -> None:
    """A default eaten as markup leaves "FILE ." behind; a flag takes no ``<bool>`` value."""
    text = _help(*path)
    assert not re.search(r"\S \.(\s|$)", text), text
    assert "<bool>" not in text, text


def test_flags_show_their_negative_form_or_none() -> None:
    text = _help("train")
    assert "--freeze-backbone / --no-freeze-backbone" in text
    assert re.search(r"--resume\s+Continue", text), text


@pytest.mark.parametrize("path", [("train",), ("demo",)])
def test_train_and_demo_name_every_registered_method(path: tuple[str, ...]) -> None:
    text = _help(*path)
    missing = [m for m in list_methods() if not re.search(rf"(?<![\w-]){m}(?![\w-])", text)]
    assert not missing, text


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("fit",), "(default: top250)"),
        (("predict",), "(default: all)"),
        (("evaluate", "genes"), "(default: patient)"),
    ],
)
def test_defaults_in_brackets_survive(path: tuple[str, ...], expected: str) -> None:
    assert expected in _help(*path)
