"""The report page: tables, figures and one self-contained HTML file (PNGs as base64).

What goes in is found by :func:`rankbygene.report.discover.discover_report_inputs`.
Gene maps show one test sample common to the EVAL dirs and the given genes, or
else the two genes with the highest pooled PCC in the first EVAL that are in
every EVAL's panel. A figure that cannot be made is listed with the reason, never
fatal. Every figure is also written to ``DIR/figures/*.png`` and shown on the page
at its natural size (see :mod:`rankbygene.report.plots.common`).
"""

from __future__ import annotations

import base64
import html
import logging
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rankbygene import __version__, keys
from rankbygene.features.io import FEATURES_SUMMARY, list_feature_files
from rankbygene.fileio import write_text_atomic
from rankbygene.report.discover import (
    ReportSections,
    RunInfo,
    discover_report_inputs,
    read_json,
    read_run_info,
    short_names,
)
from rankbygene.report.plots.common import PAGE_WIDTH_PX, save_figure
from rankbygene.report.plots.curves import plot_loss_curves, plot_rank_accuracy
from rankbygene.report.plots.embedding import plot_feature_tsne, plot_similarity_scatter
from rankbygene.report.plots.spatial import (
    EXPRESSION_LABEL,
    LIMITS_TEXT,
    plot_gene_maps,
    read_predictions,
)
from rankbygene.report.plots.spots import resolve_spot_diameter, spot_diameter_from_metadata
from rankbygene.report.predictions import predicted_items, predictor_line
from rankbygene.report.tables import evals_table, methods_table

logger = logging.getLogger(__name__)

__all__ = ["build_report"]

# Errors a missing or malformed result raises in the plot functions: reported, not fatal.
_FIGURE_ERRORS = (FileNotFoundError, ValueError, KeyError, OSError)


# -- figures --------------------------------------------------------------------------------


@dataclass
class _Figure:
    title: str
    png: Path | None = None
    error: str | None = None
    note: str = ""
    wide: bool = False  # takes the page's width (else may sit beside another figure)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("_") or "fig"


def _make(title: str, out: Path, draw: Callable[[], Figure], **kw: Any) -> _Figure:
    """Draw a figure and save it, turning a missing/malformed input into a note."""
    try:
        fig = draw()
    except _FIGURE_ERRORS as err:
        logger.warning("report: %s skipped: %s", title, err)
        return _Figure(title, error=str(err))
    return _Figure(title, png=save_figure(fig, out), **kw)


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
        gene_sets.append(set((read_json(d / keys.RESULTS_JSON) or {}).get("genes", [])))
    sample = sections.map_sample or (sorted(samples)[0] if samples else None)
    if sections.map_genes:
        return sample, list(sections.map_genes), with_preds
    first = read_json(next(iter(with_preds.values())) / keys.RESULTS_JSON) or {}
    per_gene = first.get("ensemble", {}).get("pcc_per_gene_pooled", {})
    common = set.intersection(*gene_sets) if gene_sets else set()
    ranked = sorted(
        (g for g, r in per_gene.items() if r is not None and g in common),
        key=lambda g: -per_gene[g],
    )
    return sample, ranked[:2], with_preds


def _map_spot_size(eval_dirs: Mapping[str, Path], sample: str) -> tuple[float, str]:
    """Spot diameter (px) of the maps and its source: the metadata of the dataset the
    first EVAL names, else what :func:`resolve_spot_diameter` finds."""
    first = next(iter(eval_dirs.values()))
    res = read_json(first / keys.RESULTS_JSON) or {}
    known = spot_diameter_from_metadata(res["data"], sample) if res.get("data") else None
    if known is not None:
        return known, "from the dataset metadata"
    return resolve_spot_diameter(read_predictions(first, sample))


def _gene_maps(sections: ReportSections, fig_dir: Path) -> list[_Figure]:
    sample, genes, eval_dirs = _map_targets(sections)
    if not eval_dirs:
        return []
    if sample is None or not genes:
        msg = "no test sample or gene common to all evaluations with predictions"
        return [_Figure("Spatial gene maps", error=msg)]
    named = dict(zip(short_names(list(eval_dirs)), eval_dirs.values(), strict=True))
    title = f"Measured vs predicted expression, sample {sample}: {', '.join(genes)}"
    try:
        diameter, source = _map_spot_size(eval_dirs, sample)
    except _FIGURE_ERRORS as err:
        return [_Figure(title, error=str(err))]
    note = (
        f"Colour: {EXPRESSION_LABEL}; one scale per gene, shared by the measured map and "
        f"every prediction: {LIMITS_TEXT['measured']} (values beyond are drawn at the "
        f"ends of the scale). Spots are drawn at their diameter, {diameter:.0f} px "
        f"({source}). PCC: Pearson correlation of a panel's prediction with the measured "
        "values over the sample's spots."
    )
    return [
        _make(
            title,
            fig_dir / f"gene_maps_{_safe_name(sample)}.png",
            lambda: plot_gene_maps(
                named, sample, genes, limits="measured", spot_diameter=diameter, note=False
            ),
            note=note,
            wide=True,
        )
    ]


def _held_out_sample(
    sections: ReportSections, feat_dir: Path, samples: list[str], run: RunInfo | None
) -> tuple[str, str]:
    """The sample the feature views show, and why: the test sample of an evaluation of
    these features, else a sample the run that made them never saw, else the first."""
    for eval_dir in sections.evals.values():
        res = read_json(eval_dir / keys.RESULTS_JSON) or {}
        used = (res.get("features") or {}).get("dir")
        tests = [t for t in res.get("test_samples", []) if t in samples]
        if used and tests and Path(used).resolve() == feat_dir.resolve():
            return tests[0], "held-out test sample"
    if run is not None:
        unseen = [s for s in samples if s not in run.seen]
        if unseen:
            return unseen[0], "not seen in training"
    return samples[0], "no held-out sample known"


def _feature_figures(sections: ReportSections, fig_dir: Path) -> list[_Figure]:
    import anndata as ad

    figures = []
    for name, feat_dir in sections.features.items():
        summary = read_json(feat_dir / FEATURES_SUMMARY) or {}
        files = list_feature_files(feat_dir)
        if not files:
            continue
        source = summary.get("source_run")
        run = read_run_info(source, feat_dir) if source else None
        sample_id, why = _held_out_sample(sections, feat_dir, list(files), run)
        fpath = files[sample_id]
        data_dir = sections.data_dir or (Path(summary["data"]) if summary.get("data") else None)
        h5ad = data_dir / keys.ST_DIR / f"{sample_id}{keys.ST_SUFFIX}" if data_dir else None
        what = run.method if run is not None else f"{summary.get('encoder', name)}, frozen"
        label = f"{what} features, {sample_id} ({why})"
        plot_label = f"{what} features\n{sample_id} ({why})"  # two lines fit the figure
        if h5ad is None or not h5ad.is_file():
            msg = f"dataset of {feat_dir} not found ({h5ad}); pass data_dir"
            figures.append(_Figure(f"Feature views of {label}", error=msg))
            continue
        adata = ad.read_h5ad(h5ad)
        stem = _safe_name(f"{name}_{sample_id}")
        note = f"Features: {name}" + (f", from run {run.name}" if run is not None else "") + "."
        figures.append(
            _make(
                f"t-SNE of {label}",
                fig_dir / f"tsne_{stem}.png",
                lambda f=fpath, a=adata, t=plot_label: plot_feature_tsne(f, a, label=t).figure,
                note=note,
            )
        )
        figures.append(
            _make(
                f"Gene vs image similarity, {label}",
                fig_dir / f"similarity_{stem}.png",
                lambda f=fpath, a=adata, t=plot_label: (
                    plot_similarity_scatter(f, a, label=t).figure
                ),
                note=note,
            )
        )
    return figures


def _run_title(method: str, name: str) -> str:
    """``method (run name)``, or the method alone when the run is named after it."""
    return method if name == method else f"{method} ({name})"


def _curve_figures(sections: ReportSections, fig_dir: Path) -> list[_Figure]:
    """Rank accuracy of every run, then the losses of each run: training beside validation."""
    infos = {name: read_run_info(run) for name, run in sections.runs.items()}
    short = dict(zip(sections.runs, short_names(list(sections.runs)), strict=True))
    runs = {short[name]: run for name, run in sections.runs.items()}
    texts = {short[name]: info.split_text for name, info in infos.items() if info is not None}
    if len(texts) > 1 and len(set(texts.values())) == 1:  # one split for all: said once
        splits = f"Every run {next(iter(texts.values()))}."
    else:
        splits = "; ".join(f"{name}: {text}" for name, text in texts.items())
    curves = [
        _make(
            "Rank accuracy per epoch, training (left) and validation (right)",
            fig_dir / "rank_accuracy.png",
            lambda: plot_rank_accuracy(runs),
            note=splits,
            wide=len(sections.runs) > 1,
        )
    ]
    for name, run in sections.runs.items():
        info = infos[name]
        method = info.method if info is not None else "?"
        curves.append(
            _make(
                f"Losses of {_run_title(method, short[name])}, training (left) and validation "
                "(right)",
                fig_dir / f"losses_{_safe_name(name)}.png",
                lambda r=run, t=_run_title(method, short[name]): plot_loss_curves(r, title=t),
                note=info.split_text if info is not None else "",
                wide=True,
            )
        )
    return curves


def _all_figures(sections: ReportSections, fig_dir: Path) -> dict[str, list[_Figure]]:
    groups: dict[str, list[_Figure]] = {}
    maps = _gene_maps(sections, fig_dir)
    if maps:
        groups["Spatial gene maps"] = maps
    if sections.runs:
        groups["Training curves"] = _curve_figures(sections, fig_dir)
    if sections.features:
        groups["Feature space"] = _feature_figures(sections, fig_dir)
    return groups


def _predictions_html(name: str, pred_dir: Path) -> list[str]:
    """A ``predict`` output: per slide or section, its PCC table and maps."""
    summary = read_json(pred_dir / keys.PRED_SUMMARY) or {}
    parts = [
        f"<h2>Predicted expression: {html.escape(name)}</h2>",
        f"<p>{predictor_line(summary)}</p>",
    ]
    for item in predicted_items(pred_dir):
        figures = [_Figure(m.title, png=m.png, note=m.note) for m in item.maps]
        parts += [f"<h3>{html.escape(item.heading)}</h3>", f"<p>{item.summary}</p>", item.table]
        parts += [f'<p class="skip">{item.note}</p>'] if item.note else []
        parts.append(f'<div class="figs">{"".join(_figure_html(f) for f in figures)}</div>')
    return parts


# -- page -----------------------------------------------------------------------------------

_CSS = f"""
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:{PAGE_WIDTH_PX}px;
margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:.9em}}
th,td{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}
th{{background:#f2f2f2}} code{{background:#f5f5f5}} .skip{{color:#a33}}
.n{{white-space:nowrap}} .scroll{{overflow-x:auto}}
.figs{{display:flex;flex-wrap:wrap;gap:1em 2em;align-items:flex-start}}
figure{{margin:1em 0}} figure.wide{{flex-basis:100%}}
img{{max-width:100%;height:auto;display:block}}
figcaption{{color:#444;font-size:.9em;max-width:{PAGE_WIDTH_PX}px;margin-top:.4em}}
"""


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    return struct.unpack(">II", data[16:24]) if data[:8] == b"\x89PNG\r\n\x1a\n" else (0, 0)


def _figure_html(fig: _Figure) -> str:
    title = html.escape(fig.title)
    if fig.png is None:
        return f'<p class="skip">Skipped: {title}: {html.escape(fig.error or "")}</p>'
    raw = fig.png.read_bytes()
    width, height = _png_size(raw)
    data = base64.b64encode(raw).decode("ascii")
    note = f"<br>{html.escape(fig.note)}" if fig.note else ""
    style = ' class="wide"' if fig.wide else f' style="max-width:{width}px"'
    return (
        f'<figure{style}><img alt="{title}" data-file="{html.escape(fig.png.name)}" '
        f'width="{width}" height="{height}" '
        f'src="data:image/png;base64,{data}"><figcaption>{title}{note}</figcaption></figure>'
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
        parts += ["<h2>Method comparison</h2>", methods_table(sections.methods)]
    if sections.evals:
        parts += [
            "<h2>Gene-expression prediction</h2>",
            "<p>PCC per gene across a sample's spots, mean over genes and test samples "
            "(per-sample mean, the paper) or over all test spots pooled (HEST-Benchmark); "
            "mean ± std over the probe's fold models. The probe is fitted on the training "
            "samples and scored on the test samples of its row; with one test sample the "
            "two PCCs are one number.</p>",
            evals_table(sections.evals, directory),
        ]
    for heading, figures in _all_figures(sections, fig_dir).items():
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(f'<div class="figs">{"".join(_figure_html(f) for f in figures)}</div>')
    for name, pred_dir in sections.predictions.items():
        parts += _predictions_html(name, pred_dir)
    if len(parts) == 2:
        parts.append(
            "<p>No results found. Run <code>rankbygene evaluate genes</code>, "
            "<code>rankbygene train</code> or <code>rankbygene extract</code> first.</p>"
        )
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
    write_text_atomic(out, page)
    logger.info("wrote %s", out)
    return out
