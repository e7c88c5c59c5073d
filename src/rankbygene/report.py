"""One self-contained HTML page (figures embedded as base64 PNG) from a results directory.

Discovery rules of :func:`discover_report_inputs` (hidden directories and
virtualenvs are skipped; names are paths relative to DIR):

- ``DIR/results.json`` holding ``{"methods": {name: {"pcc": {"mean", "std"}, ...}}}``
  (the demo's) → the method comparison table.
- every ``results.json`` at or below DIR holding ``"summary"`` (an ``evaluate genes``
  output, EVAL) → a row of the evaluations table; its ``predictions/`` → gene maps.
- every ``metrics.csv`` below DIR (a training run) → one rank-accuracy figure over
  all runs and one loss-curve figure per run.
- every ``features.json`` below DIR (an ``extract`` output) → t-SNE and
  gene-vs-image similarity figures of its first sample, when the dataset it was
  extracted from (``"data"`` in features.json, or ``data_dir``) is readable.

Gene maps show one test sample common to the EVAL dirs and the given genes, or
else the two genes with the highest pooled PCC in the first EVAL that are in
every EVAL's panel. A figure that cannot be made is listed with the reason, never
fatal. Every figure is also written to ``DIR/figures/*.png``.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rankbygene import __version__, keys
from rankbygene.features.io import FEATURES_SUMMARY, list_feature_files
from rankbygene.fileio import write_text_atomic
from rankbygene.plotting.common import save_figure
from rankbygene.plotting.curves import plot_loss_curves, plot_rank_accuracy
from rankbygene.plotting.embedding import plot_feature_tsne, plot_similarity_scatter
from rankbygene.plotting.spatial import plot_gene_maps

logger = logging.getLogger(__name__)

__all__ = ["ReportSections", "build_report", "discover_report_inputs"]

_SKIP_DIRS = {".venv", "venv", "__pycache__", "node_modules", keys.FIGURES_DIR}
# Errors a missing or malformed result raises in the plot functions: reported, not fatal.
_FIGURE_ERRORS = (FileNotFoundError, ValueError, KeyError, OSError)


@dataclass
class ReportSections:
    """What goes into the report; :func:`discover_report_inputs` fills it from a directory.

    Attributes:
        methods: a results.json with ``{"methods": {...}}`` (comparison table).
        evals: name → EVAL directory (``evaluate genes`` outputs).
        runs: name → training run directory (holding metrics.csv).
        features: name → features directory (holding features.json).
        data_dir: dataset for the feature figures (default: from features.json).
        map_genes: genes of the spatial maps (default: best-predicted genes).
        map_sample: test sample of the spatial maps (default: first common one).
    """

    methods: Path | None = None
    evals: dict[str, Path] = field(default_factory=dict)
    runs: dict[str, Path] = field(default_factory=dict)
    features: dict[str, Path] = field(default_factory=dict)
    data_dir: Path | None = None
    map_genes: list[str] | None = None
    map_sample: str | None = None


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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        logger.warning("skipping %s: %s", path, err)
        return None
    return data if isinstance(data, dict) else None


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
        data = _read_json(path)
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
    return sections


# -- tables ---------------------------------------------------------------------------------


def _fmt(stat: Any) -> str:
    if isinstance(stat, Mapping):
        if stat.get("mean") is None:
            return "n/a"
        std = stat.get("std")
        return f"{stat['mean']:.4f}" + (f" ± {std:.4f}" if std is not None else "")
    if isinstance(stat, int | float):
        return f"{stat:.4f}"
    return html.escape(str(stat)) if stat is not None else "n/a"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _methods_table(path: Path) -> str:
    data = _read_json(path) or {}
    methods: Mapping[str, Any] = data.get("methods", {})
    metrics: list[str] = []
    for entry in methods.values():
        for key, value in entry.items():
            if isinstance(value, Mapping) and "mean" in value and key not in metrics:
                metrics.append(key)
    rows = [
        [html.escape(name), *(_fmt(entry.get(m)) for m in metrics)]
        for name, entry in methods.items()
    ]
    return _table(["method", *metrics], rows)


def _evals_table(evals: Mapping[str, Path]) -> str:
    rows = []
    for name, eval_dir in evals.items():
        res = _read_json(eval_dir / keys.RESULTS_JSON) or {}
        feats = res.get("features", {})
        probes = res.get("probes") or {res.get("probe", "?"): res}
        for probe, block in probes.items():
            rows.append(
                [
                    html.escape(name),
                    html.escape(str(feats.get("encoder", "?"))),
                    html.escape(str(res.get("panel", "?"))),
                    str(len(res.get("genes", []))),
                    html.escape(str(probe)),
                    _fmt(block.get("summary", {}).get("pcc")),
                    _fmt(block.get("pooled", {}).get("pcc")),
                    _fmt(block.get("summary", {}).get("mse")),
                    _fmt(block.get("summary", {}).get("mae")),
                    html.escape(", ".join(res.get("test_samples", []))),
                ]
            )
    header = [
        "evaluation",
        "encoder",
        "panel",
        "genes",
        "probe",
        "PCC (per-sample mean)",
        "PCC (pooled)",
        "MSE",
        "MAE",
        "test samples",
    ]
    return _table(header, rows)


# -- figures --------------------------------------------------------------------------------


@dataclass
class _Figure:
    title: str
    png: Path | None = None
    error: str | None = None


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("_") or "fig"


def _make(title: str, out: Path, draw: Callable[[], Figure]) -> _Figure:
    """Draw a figure and save it, turning a missing/malformed input into a note."""
    try:
        fig = draw()
    except _FIGURE_ERRORS as err:
        logger.warning("report: %s skipped: %s", title, err)
        return _Figure(title, error=str(err))
    return _Figure(title, png=save_figure(fig, out))


def _map_targets(sections: ReportSections) -> tuple[str | None, list[str], dict[str, Path]]:
    """Sample, genes and EVAL dirs of the spatial maps (see the module docstring)."""
    with_preds = {n: d for n, d in sections.evals.items() if (d / keys.PREDICTIONS_DIR).is_dir()}
    if not with_preds:
        return None, [], {}
    samples = None
    gene_sets = []
    for d in with_preds.values():
        ids = {p.stem for p in (d / keys.PREDICTIONS_DIR).glob(f"*{keys.ST_SUFFIX}")}
        samples = ids if samples is None else samples & ids
        gene_sets.append(set((_read_json(d / keys.RESULTS_JSON) or {}).get("genes", [])))
    sample = sections.map_sample or (sorted(samples)[0] if samples else None)
    if sections.map_genes:
        return sample, list(sections.map_genes), with_preds
    first = _read_json(next(iter(with_preds.values())) / keys.RESULTS_JSON) or {}
    per_gene = first.get("ensemble", {}).get("pcc_per_gene_pooled", {})
    common = set.intersection(*gene_sets) if gene_sets else set()
    ranked = sorted(
        (g for g, r in per_gene.items() if r is not None and g in common),
        key=lambda g: -per_gene[g],
    )
    return sample, ranked[:2], with_preds


def _feature_figures(sections: ReportSections, fig_dir: Path) -> list[_Figure]:
    import anndata as ad

    figures = []
    for name, feat_dir in sections.features.items():
        summary = _read_json(feat_dir / FEATURES_SUMMARY) or {}
        files = list_feature_files(feat_dir)
        if not files:
            continue
        sample_id, fpath = next(iter(files.items()))
        data_dir = sections.data_dir or (Path(summary["data"]) if summary.get("data") else None)
        h5ad = data_dir / keys.ST_DIR / f"{sample_id}{keys.ST_SUFFIX}" if data_dir else None
        label = f"{name} ({sample_id})"
        if h5ad is None or not h5ad.is_file():
            msg = f"dataset of {feat_dir} not found ({h5ad}); pass data_dir"
            figures.append(_Figure(f"Feature views of {label}", error=msg))
            continue
        adata = ad.read_h5ad(h5ad)
        stem = _safe_name(f"{name}_{sample_id}")
        figures.append(
            _make(
                f"t-SNE of features, {label}",
                fig_dir / f"tsne_{stem}.png",
                lambda f=fpath, a=adata: plot_feature_tsne(f, a).figure,
            )
        )
        figures.append(
            _make(
                f"Gene vs image similarity, {label}",
                fig_dir / f"similarity_{stem}.png",
                lambda f=fpath, a=adata: plot_similarity_scatter(f, a).figure,
            )
        )
    return figures


def _all_figures(sections: ReportSections, fig_dir: Path) -> dict[str, list[_Figure]]:
    groups: dict[str, list[_Figure]] = {}
    sample, genes, eval_dirs = _map_targets(sections)
    if eval_dirs:
        if sample is None or not genes:
            groups["Spatial gene maps"] = [
                _Figure(
                    "Spatial gene maps",
                    error="no test sample or gene common to all evaluations with predictions",
                )
            ]
        else:
            groups["Spatial gene maps"] = [
                _make(
                    f"Measured vs predicted expression, sample {sample}: {', '.join(genes)}",
                    fig_dir / f"gene_maps_{_safe_name(sample)}.png",
                    lambda: plot_gene_maps(eval_dirs, sample, genes),
                )
            ]
    if sections.runs:
        curves = [
            _make(
                "Rank accuracy per epoch",
                fig_dir / "rank_accuracy.png",
                lambda: plot_rank_accuracy(sections.runs).figure,
            )
        ]
        for name, run in sections.runs.items():
            curves.append(
                _make(
                    f"Training losses, {name}",
                    fig_dir / f"losses_{_safe_name(name)}.png",
                    lambda r=run: plot_loss_curves(r).figure,
                )
            )
        groups["Training curves"] = curves
    if sections.features:
        groups["Feature space"] = _feature_figures(sections, fig_dir)
    return groups


# -- page -----------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f2f2f2} figure{margin:1.5em 0} img{max-width:100%}
figcaption{color:#555;font-size:.9em} .skip{color:#a33} code{background:#f5f5f5}
"""


def _figure_html(fig: _Figure) -> str:
    title = html.escape(fig.title)
    if fig.png is None:
        return f'<p class="skip">Skipped: {title}: {html.escape(fig.error or "")}</p>'
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{title}" data-file="{html.escape(fig.png.name)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{title}</figcaption></figure>'
    )


def build_report(
    directory: str | Path,
    out: str | Path | None = None,
    title: str = "RankByGene report",
    sections: ReportSections | None = None,
) -> Path:
    """Write one self-contained HTML report of the results in ``directory``.

    Args:
        directory: results directory (figures go to ``directory/figures``).
        out: HTML path (default ``directory/report.html``).
        title: page title.
        sections: explicit inputs; default: :func:`discover_report_inputs`.

    Returns:
        Path of the written HTML.
    """
    directory = Path(directory)
    sections = sections if sections is not None else discover_report_inputs(directory)
    out = Path(out) if out is not None else directory / keys.REPORT_HTML
    fig_dir = directory / keys.FIGURES_DIR
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} by rankbygene "
        f"{html.escape(__version__)} from <code>{html.escape(str(directory))}</code>.</p>",
    ]
    if sections.methods is not None:
        parts += ["<h2>Method comparison</h2>", _methods_table(sections.methods)]
    if sections.evals:
        parts += [
            "<h2>Gene-expression prediction</h2>",
            "<p>PCC per gene across a sample's spots, mean over genes and test samples "
            "(per-sample mean, the paper) or over all test spots pooled (HEST-Benchmark); "
            "mean ± std over the probe's fold models.</p>",
            _evals_table(sections.evals),
        ]
    for heading, figures in _all_figures(sections, fig_dir).items():
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts += [_figure_html(f) for f in figures]
    if len(parts) == 2:
        parts.append(
            "<p>No results found. Run <code>rankbygene evaluate genes</code>, "
            "<code>rankbygene train</code> or <code>rankbygene extract</code> first.</p>"
        )
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
    write_text_atomic(out, page)
    logger.info("wrote %s", out)
    return out
