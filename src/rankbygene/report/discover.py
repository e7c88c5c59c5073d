"""Finding the report's inputs under a results directory.

Discovery rules of :func:`discover_report_inputs` (hidden directories and
virtualenvs are skipped; names are paths relative to DIR):

- ``DIR/results.json`` holding ``{"methods": {name: {"pcc": {"mean", "std"}, ...}}}``
  (the demo's) → the method comparison table.
- every ``results.json`` at or below DIR holding ``"summary"`` (an ``evaluate genes``
  output, EVAL) → a row of the evaluations table; its ``predictions/`` → gene maps.
- every ``metrics.csv`` below DIR (a training run) → one rank-accuracy figure over
  all runs and one loss-curve figure per run, training beside validation, titled with
  the run's method and captioned with its split (from its ``config.yaml``).
- every ``predict.json`` at or below DIR (a ``predict`` output, PRED) → its maps per
  slide or section and gene, and measured-vs-predicted PCC per gene for sections.
- every ``features.json`` below DIR (an ``extract`` output) → t-SNE and
  gene-vs-image similarity figures of one held-out sample (the test sample of an
  evaluation of these features, else one their run never saw), titled with the
  method, when the dataset it was extracted from (``"data"`` in features.json, or
  ``data_dir``) is readable.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankbygene import keys
from rankbygene.features.io import FEATURES_SUMMARY

logger = logging.getLogger(__name__)

__all__ = [
    "ReportSections",
    "RunInfo",
    "discover_report_inputs",
    "read_json",
    "read_run_info",
    "short_names",
]

_SKIP_DIRS = {".venv", "venv", "__pycache__", "node_modules", keys.FIGURES_DIR}


@dataclass
class ReportSections:
    """What goes into the report; :func:`discover_report_inputs` fills it from a directory.

    Attributes:
        methods: a results.json with ``{"methods": {...}}`` (comparison table).
        evals: name → EVAL directory (``evaluate genes`` outputs).
        runs: name → training run directory (holding metrics.csv).
        features: name → features directory (holding features.json).
        predictions: name → ``predict`` output directory (holding predict.json).
        data_dir: dataset for the feature figures (default: from features.json).
        map_genes: genes of the spatial maps (default: best-predicted genes).
        map_sample: test sample of the spatial maps (default: first common one).
    """

    methods: Path | None = None
    evals: dict[str, Path] = field(default_factory=dict)
    runs: dict[str, Path] = field(default_factory=dict)
    features: dict[str, Path] = field(default_factory=dict)
    predictions: dict[str, Path] = field(default_factory=dict)
    data_dir: Path | None = None
    map_genes: list[str] | None = None
    map_sample: str | None = None


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None (with a warning) if unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        logger.warning("skipping %s: %s", path, err)
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class RunInfo:
    """What the report says of a training run, from its ``config.yaml``.

    Attributes:
        name: the run directory's name.
        method: the registered method it trained.
        train: samples the encoder learned from.
        val: validation samples (held out of the training samples).
    """

    name: str
    method: str
    train: tuple[str, ...]
    val: tuple[str, ...]

    @property
    def seen(self) -> set[str]:
        """Samples the run read: its training and validation samples."""
        return {*self.train, *self.val}

    @property
    def split_text(self) -> str:
        """``trained on A, B; validated on C`` (or ``no validation samples``)."""
        val = f"validated on {', '.join(self.val)}" if self.val else "no validation samples"
        return f"trained on {', '.join(self.train) or '?'}; {val}"


def read_run_info(run: str | Path, relative_to: Path | None = None) -> RunInfo | None:
    """The :class:`RunInfo` of a run directory; None (with a warning) if unreadable.

    ``run`` as recorded by ``extract`` may be relative to where it ran: it is also
    tried relative to ``relative_to`` and its parents.
    """
    import yaml

    path = Path(run)
    if not path.is_absolute() and relative_to is not None and not path.is_dir():
        bases = [relative_to.resolve(), *relative_to.resolve().parents]
        path = next((b / path for b in bases if (b / path / keys.RUN_CONFIG).is_file()), path)
    try:
        config = yaml.safe_load((path / keys.RUN_CONFIG).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        logger.warning("no run settings for %s: %s", run, err)
        return None
    return RunInfo(
        name=path.name,
        method=str(config.get("method", "?")),
        train=tuple(config.get("train_samples") or ()),
        val=tuple(config.get("val_samples") or ()),
    )


def _walk(directory: Path, filename: str) -> list[Path]:
    """Files called ``filename`` at or below ``directory``, skipping hidden/venv dirs."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        if filename in files:
            found.append(Path(root) / filename)
    return found


def _name(path: Path, directory: Path) -> str:
    rel = path.relative_to(directory).as_posix()
    return directory.resolve().name if rel == "." else rel


def discover_report_inputs(directory: str | Path) -> ReportSections:
    """Find results under ``directory`` by the rules in the module docstring."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"No results directory {directory}. Run `rankbygene demo --out {directory}` or "
            "`rankbygene evaluate genes ... --out` first."
        )
    sections = ReportSections()
    for path in _walk(directory, keys.RESULTS_JSON):
        data = read_json(path)
        if data is None:
            continue
        if path.parent == directory and isinstance(data.get("methods"), Mapping):
            sections.methods = path
        if "summary" in data:
            sections.evals[_name(path.parent, directory)] = path.parent
    for path in _walk(directory, keys.RUN_METRICS):
        sections.runs[_name(path.parent, directory)] = path.parent
    for path in _walk(directory, FEATURES_SUMMARY):
        sections.features[_name(path.parent, directory)] = path.parent
    for path in _walk(directory, keys.PRED_SUMMARY):
        sections.predictions[_name(path.parent, directory)] = path.parent
    return sections


def short_names(names: Sequence[str]) -> list[str]:
    """Names without their common leading path components (``eval/top100/bleep`` and
    ``eval/top100/stnet`` → ``bleep``, ``stnet``), kept whole if that would not leave
    distinct, non-empty names."""
    parts = [n.split("/") for n in names]
    k = 0
    while len(parts) > 1 and all(len(p) > k + 1 and p[k] == parts[0][k] for p in parts):
        k += 1
    short = ["/".join(p[k:]) for p in parts]
    return short if len(set(short)) == len(short) and all(short) else list(names)
