"""The rule for an evaluation's output directory ``EVAL``, shared by genes and slides.

An evaluation directory holds one evaluation. ``results.json`` is written last, so it
marks a finished one:

- a new or empty ``EVAL``: written;
- a finished evaluation: refused, unless ``overwrite``, which deletes every file of
  the old evaluation before the new one is written (nothing of it stays to be mixed in);
- an unfinished evaluation (its files, but no ``results.json``: it was interrupted):
  its files are deleted and the evaluation is written;
- anything else in ``EVAL`` (not one of the evaluation's files): refused, whatever
  the flags, so that ``--out`` pointing at features or a dataset deletes nothing.

A report built in ``EVAL`` (``report.html``, ``figures/``) belongs to the evaluation
and goes with it.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from pathlib import Path

from rankbygene import keys
from rankbygene.fileio import remove_stale_temps

__all__ = ["GENE_EVAL_FILES", "SLIDE_EVAL_FILES", "check_eval_directory", "clear_eval_directory"]

_REPORT = (keys.REPORT_HTML, keys.FIGURES_DIR)
GENE_EVAL_FILES = (
    keys.RESULTS_JSON, keys.RESULTS_MD, keys.EVAL_CONFIG, keys.PREDICTIONS_DIR, *_REPORT
)  # fmt: skip
SLIDE_EVAL_FILES = (keys.RESULTS_JSON, keys.RESULTS_MD, keys.SLIDE_PREDICTIONS_CSV, *_REPORT)


def _entries(out: Path) -> list[Path]:
    """What ``out`` holds, less temporary files of killed writers."""
    remove_stale_temps(out)
    return sorted(out.iterdir()) if out.is_dir() else []


def check_eval_directory(out: str | Path, files: Collection[str], *, overwrite: bool) -> None:
    """Apply the rule before any work: refuse what must not be written over.

    Args:
        out: the ``--out`` directory.
        files: the names an evaluation of this kind writes.
        overwrite: replace a finished evaluation.

    Raises:
        ValueError: naming the directory, what it holds and the flag or fix.
    """
    out = Path(out)
    entries = _entries(out)
    foreign = [p.name for p in entries if p.name not in files]
    if foreign:
        raise ValueError(
            f"{out}: not an evaluation directory (it holds {', '.join(foreign[:5])}"
            f"{' ...' if len(foreign) > 5 else ''}); choose a new or empty --out."
        )
    if (out / keys.RESULTS_JSON).is_file() and not overwrite:
        raise ValueError(
            f"{out} already holds a finished evaluation ({keys.RESULTS_JSON}); pass --overwrite "
            "to replace it, or choose another --out."
        )


def clear_eval_directory(out: str | Path, files: Collection[str]) -> None:
    """Delete the files of a previous (finished or interrupted) evaluation in ``out``.

    Called once the new evaluation is computed, just before it is written, so a
    failure while computing keeps the old results.
    """
    for entry in _entries(Path(out)):
        if entry.name not in files:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
