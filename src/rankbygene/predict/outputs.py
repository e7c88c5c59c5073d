"""What ``rankbygene predict`` writes into ``PRED/``, one writer per file kind.

- ``PRED/{id}.h5ad``: ``X`` = predicted expression (tiles or spots × genes); ``obs`` =
  tile corners in level-0 pixels and centres in µm; ``obsm["spatial"]`` = centres in
  pixels (x, y); ``uns["rankbygene"]`` = the predictor's card and the slide's
  geometry. Written last and atomically: a slide with its h5ad is finished.
- ``PRED/{id}.geojson``: one Polygon feature per tile (its square in level-0 pixels)
  whose ``measurements`` are the predicted genes; QuPath (≥ 0.4) imports it onto the
  slide as tile objects (File › Import objects) for its measurement maps.
- ``PRED/predict.json``: the predictor, the genes, and one entry per slide or section
  (the report reads it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from rankbygene import keys
from rankbygene.fileio import atomic_path, json_safe, remove_stale_temps, write_json
from rankbygene.predict.saved import SavedPredictor

__all__ = [
    "check_finished",
    "check_pred_out",
    "geojson_path",
    "h5ad_path",
    "map_path",
    "prediction_adata",
    "prediction_uns",
    "predictor_header",
    "read_pred_summary",
    "remove_old_maps",
    "tile_table",
    "update_pred_summary",
    "write_geojson",
    "write_h5ad",
]

_GEOJSON_CHUNK = 4096  # features formatted per write
_PRED_NAMES = {keys.PRED_SUMMARY, keys.PRED_MAPS_DIR, keys.REPORT_HTML, keys.FIGURES_DIR}
_PRED_SUFFIXES = {keys.ST_SUFFIX, keys.PRED_GEOJSON_SUFFIX}


def check_pred_out(out: Path) -> None:
    """Refuse an ``--out`` that holds files ``predict`` does not write (e.g. a dataset);
    a new, empty or earlier ``predict`` output is fine. Killed writers' temporary files
    are swept.

    Raises:
        ValueError: naming the directory and what it holds.
    """
    if not out.is_dir():
        if out.exists():
            raise ValueError(f"--out {out} is a file; choose a directory for the predictions.")
        return
    remove_stale_temps(out)
    remove_stale_temps(out / keys.PRED_MAPS_DIR)
    foreign = sorted(
        p.name
        for p in out.iterdir()
        if not (p.name.startswith(".") or p.name in _PRED_NAMES or p.suffix in _PRED_SUFFIXES)
    )
    if foreign:
        raise ValueError(
            f"--out {out} holds files rankbygene predict does not write "
            f"({', '.join(foreign[:5])}); choose a new or empty --out, or an earlier "
            "predict output."
        )


def remove_old_maps(out: Path, item_id: str, keep: Sequence[str]) -> None:
    """Delete the maps an earlier run drew for ``item_id`` that this run does not redraw
    (``--overwrite`` with other genes), so the directory holds one run's maps."""
    previous = read_pred_summary(out).get("items", {}).get(item_id, {}).get("maps", {})
    for gene, rel in previous.items():
        if gene not in keep:
            (out / rel).unlink(missing_ok=True)


def h5ad_path(out: Path, item_id: str) -> Path:
    """``PRED/{id}.h5ad``."""
    return out / f"{item_id}{keys.ST_SUFFIX}"


def geojson_path(out: Path, item_id: str) -> Path:
    """``PRED/{id}.geojson``."""
    return out / f"{item_id}{keys.PRED_GEOJSON_SUFFIX}"


def map_path(out: Path, item_id: str, gene: str) -> Path:
    """``PRED/maps/{id}_{gene}.png`` (characters unsafe in file names replaced by ``_``)."""
    safe = re.sub(r"[^0-9A-Za-z._-]+", "_", gene)
    return out / keys.PRED_MAPS_DIR / f"{item_id}_{safe}.png"


def tile_table(origins: np.ndarray, window_px: int, mpp: float) -> tuple[pd.DataFrame, np.ndarray]:
    """``obs`` and ``obsm["spatial"]`` of square tiles given by their top-left corners.

    Index ``"{x0}_{y0}"`` (as ``extract --slides`` names tiles); columns: the corner
    (``tile_x0``, ``tile_y0``, level-0 px), the centre in full-resolution pixels (HEST
    names ``pxl_col_in_fullres``, ``pxl_row_in_fullres``) and in µm (``x_um``, ``y_um``).

    Shape:
        origins (T, 2) (x, y); returns obs with T rows and spatial (T, 2) float64 (x, y).
    """
    origins = np.asarray(origins, dtype=np.int64).reshape(-1, 2)
    centres = origins + window_px / 2
    names = np.char.add(np.char.add(origins[:, 0].astype(str), "_"), origins[:, 1].astype(str))
    obs = pd.DataFrame(
        {
            keys.OBS_TILE_X0: origins[:, 0],
            keys.OBS_TILE_Y0: origins[:, 1],
            keys.OBS_PXL_COL: centres[:, 0],
            keys.OBS_PXL_ROW: centres[:, 1],
            keys.OBS_X_UM: centres[:, 0] * mpp,
            keys.OBS_Y_UM: centres[:, 1] * mpp,
        },
        index=pd.Index(names, name="tile"),
    )
    return obs, centres


def prediction_adata(
    values: np.ndarray,
    genes: Sequence[str],
    obs: pd.DataFrame,
    spatial: np.ndarray,
    uns: Mapping[str, Any],
    *,
    target: np.ndarray | None = None,
) -> ad.AnnData:
    """Predictions as AnnData (see the module docstring).

    Args:
        values: predicted expression (``X`` and layer ``predicted``).
        genes: its columns.
        obs: one row per tile or spot.
        spatial: centres in full-resolution pixels.
        uns: ``uns["rankbygene"]`` (JSON-ready values).
        target: measured expression on the same scale, when known (layer ``target``).

    Shape:
        values, target (N, G); spatial (N, 2).
    """
    adata = ad.AnnData(X=np.asarray(values, dtype=np.float32), obs=obs)
    adata.var_names = list(genes)
    adata.layers[keys.LAYER_PREDICTED] = adata.X
    if target is not None:
        adata.layers[keys.LAYER_TARGET] = np.asarray(target, dtype=np.float32)
    adata.obsm[keys.OBSM_SPATIAL] = np.asarray(spatial, dtype=np.float64).reshape(-1, 2)
    adata.uns[keys.UNS_RANKBYGENE] = json_safe(dict(uns))
    return adata


def write_h5ad(adata: ad.AnnData, path: Path) -> Path:
    """Write ``PRED/{id}.h5ad`` atomically (the last file of a slide: it marks it done)."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
    return path


def check_finished(path: Path, predictor_id: str, genes: Sequence[str]) -> None:
    """Refuse to keep a finished prediction made by another predictor or for other genes.

    Raises:
        ValueError: naming the file, what differs, and ``--overwrite``.
    """
    done = ad.read_h5ad(path, backed="r")
    try:
        made_by = str(done.uns.get(keys.UNS_RANKBYGENE, {}).get("predictor_sha256", ""))
        same_genes = list(done.var_names) == list(genes)
    finally:
        done.file.close()
    if made_by != predictor_id or not same_genes:
        what = "another predictor" if made_by != predictor_id else "other genes"
        raise ValueError(
            f"{path} holds predictions of {what}; pass --overwrite to replace them, or "
            "choose another --out."
        )


def write_geojson(
    path: Path,
    corners: np.ndarray,
    window_px: float,
    genes: Sequence[str],
    values: np.ndarray,
) -> Path:
    """One Polygon feature per tile, with the predicted genes as QuPath measurements.

    Features are formatted a chunk at a time from one numeric table (no per-feature
    dicts), so large slides stream to disk. Non-finite values are written as ``null``.

    Shape:
        corners (T, 2) top-left (x, y) in full-resolution pixels; values (T, G).
    """
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 2)
    values = np.asarray(values, dtype=np.float64).reshape(len(corners), len(genes))
    x0, y0 = corners[:, 0], corners[:, 1]
    x1, y1 = x0 + window_px, y0 + window_px
    ring = np.stack([x0, y0, x1, y0, x1, y1, x0, y1, x0, y0], axis=1)
    point = "[%.10g,%.10g]"
    measurements = ",".join(f"{json.dumps(g).replace('%', '%%')}:%.6g" for g in genes)
    template = (
        '{"type":"Feature","geometry":{"type":"Polygon","coordinates":[['
        + ",".join([point] * 5)
        + ']]},"properties":{"objectType":"tile","isLocked":true,"measurements":{'
        + measurements
        + "}}}"
    )
    finite = bool(np.isfinite(values).all())
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        for start in range(0, len(corners), _GEOJSON_CHUNK):
            stop = start + _GEOJSON_CHUNK
            rows = np.concatenate([ring[start:stop], values[start:stop]], axis=1)
            lines = [template % tuple(r) for r in rows.tolist()]
            if not finite:  # %g writes nan/inf, which JSON does not have
                lines = [re.sub(r"(?<=:)-?(nan|inf)\b", "null", line) for line in lines]
            f.write((",\n" if start else "") + ",\n".join(lines))
        f.write("\n]}\n")
    return path


def read_pred_summary(out: Path) -> dict[str, Any]:
    """``PRED/predict.json`` ({} when absent)."""
    path = out / keys.PRED_SUMMARY
    return json.loads(path.read_text()) if path.is_file() else {}


def update_pred_summary(
    out: Path, header: Mapping[str, Any], item_id: str, entry: Mapping[str, Any]
) -> Path:
    """Merge one slide's or section's entry into ``PRED/predict.json`` (atomically)."""
    summary = read_pred_summary(out)
    summary.update(header)
    items = dict(summary.get("items", {}))
    items[item_id] = dict(entry)
    summary["items"] = dict(sorted(items.items()))
    return write_json(out / keys.PRED_SUMMARY, summary)


def predictor_header(
    saved: SavedPredictor, genes: Sequence[str], map_genes: Sequence[str], kind: str
) -> dict[str, Any]:
    """The top of ``PRED/predict.json``: what predicted, which genes, on what scale."""
    card = saved.card
    return {
        "kind": kind,
        "predictor": {
            "path": str(saved.path.resolve()),
            "sha256": saved.id,
            "probe": card["probe"],
            "n_members": card["n_members"],
            "panel": card.get("panel", {}),
            "encoder": card["encoder"],
            "training": card.get("training", {}),
        },
        "scale": card["scale"],
        "genes": list(genes),
        "map_genes": list(map_genes),
    }


def prediction_uns(saved: SavedPredictor, **fields: Any) -> dict[str, Any]:
    """``uns["rankbygene"]`` of a prediction file: the card (JSON text: it holds lists of
    records, which AnnData does not store), the predictor's fingerprint, and ``fields``."""
    return {
        "predictor": str(saved.path.resolve()),
        "predictor_sha256": saved.id,
        "units": saved.card["scale"]["units"],
        "scale": saved.card["scale"]["description"],
        "card": json.dumps(saved.card),
        **fields,
    }
