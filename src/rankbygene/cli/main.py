"""Entry point of the ``rankbygene`` command: mounts the sub-command groups.

Start-up stays quick: the command modules import only argument parsing and light
settings classes; torch, Lightning and matplotlib load inside the command that runs.
"""

from __future__ import annotations

import logging

import typer

from rankbygene import __version__
from rankbygene.cli import data as data_cli
from rankbygene.cli import demo as demo_cli
from rankbygene.cli import evaluate as evaluate_cli
from rankbygene.cli import experiment as experiment_cli
from rankbygene.cli import extract as extract_cli
from rankbygene.cli import fit as fit_cli
from rankbygene.cli import predict as predict_cli
from rankbygene.cli import pretrain as pretrain_cli
from rankbygene.cli import report as report_cli
from rankbygene.cli import train as train_cli
from rankbygene.cli.common import new_app

app = new_app(
    name="rankbygene",
    help="Gene-guided histopathology representation learning (RankByGene).",
    no_args_is_help=True,
    add_completion=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"rankbygene {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Gene-guided histopathology representation learning (RankByGene)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("numexpr").setLevel(logging.WARNING)  # its thread-count notice


app.command("demo", help=demo_cli.HELP)(demo_cli.demo)
app.add_typer(data_cli.app, name="data", help="Create, import and inspect datasets.")
app.command("pretrain")(pretrain_cli.pretrain)
app.command("train")(train_cli.train)
app.command("extract")(extract_cli.extract)
app.add_typer(evaluate_cli.app, name="evaluate", help="Evaluate features.")
app.command("report")(report_cli.report)
app.add_typer(experiment_cli.app, name="experiment", help="Multi-run experiments (her2st).")
app.command("fit")(fit_cli.fit)
app.command("predict")(predict_cli.predict)
