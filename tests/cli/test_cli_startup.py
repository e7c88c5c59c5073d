"""The command line starts without loading the heavy libraries it does not need yet."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "lightning", "timm", "matplotlib", "anndata", "sklearn")


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _loaded_after("import rankbygene.cli.main") == []


def test_help_loads_no_heavy_library() -> None:
    statement = (
        "from typer.testing import CliRunner; from rankbygene.cli.main import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output"
    )
    assert _loaded_after(statement) == []


def test_settings_modules_are_light() -> None:
    """What the CLI reads for its --help defaults stays cheap to import."""
    statement = (
        "import rankbygene.training.config, rankbygene.evaluation.genes.config, "
        "rankbygene.evaluation.slides.config, rankbygene.experiments.settings, "
        "rankbygene.features.settings, rankbygene.predict.settings, rankbygene.data"
    )
    assert _loaded_after(statement) == []


def test_help_shows_the_library_defaults() -> None:
    """Defaults are read from the settings dataclasses and shown as text (Rich would eat a
    bracketed ``[top250]`` as markup)."""
    from typer.testing import CliRunner

    from rankbygene.cli.main import app
    from rankbygene.evaluation.genes.config import GeneEvalConfig
    from rankbygene.training.config import TrainConfig

    genes = CliRunner().invoke(app, ["evaluate", "genes", "--help"], env={"COLUMNS": "200"})
    assert f"(default: {GeneEvalConfig().panel})" in genes.output
    assert f"(default: {GeneEvalConfig().mlp.epochs})" in genes.output
    train = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert f"(default: {TrainConfig().epochs}, the paper's)" in train.output
