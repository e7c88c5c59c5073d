"""Importer for the legacy ST layout of the her2st data set (Andersson et al. 2021).

(Over ~350 lines: locating, reading and aligning her2st's three input files belong to
this one importer and are used nowhere else.)

Input layout (``root`` may be the repository folder holding ``data/`` or ``data/`` itself)::

    data/ST-cnts/{s}.tsv.gz              spots x genes counts; row names "{x}x{y}" (array)
    data/ST-spotfiles/{s}_selection.tsv  x y new_x new_y pixel_x pixel_y selected
    data/ST-imgs/{patient}/{s}/*.jpg     the H&E image; patient = the section's letter(s)

Decisions (documented in docs/data_formats.md):

- Spots are matched on the integer array position (x, y) and kept when present in both
  the counts and the spot file; drops are logged with their number.
- ``selected`` marks spots the her2st authors kept as under tissue; when the column
  exists only ``selected == 1`` rows are used. (In the released files every row is 1,
  so this removes nothing there, but hand-edited spot files may use it.)
- The patch centre is (pixel_x, pixel_y) = (column, row) in the full-resolution JPEG.
- µm per pixel is estimated per section from the 200 µm spot pitch: one least-squares
  fit of pixel position on array position with a slope shared by both axes (and one
  intercept per axis); µm/px = 200 / slope. The released images give ~291 px per pitch,
  ~0.686 µm/px.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rankbygene import keys
from rankbygene.data.images import open_image
from rankbygene.data.importers.base import (
    ImportSummary,
    align_barcodes,
    check_unique,
    write_imported_sample,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ST_SPOT_DIAMETER_UM",
    "ST_SPOT_PITCH_UM",
    "Her2stSection",
    "estimate_um_per_px",
    "import_her2st",
    "list_sections",
    "locate_section",
    "read_spotfile",
    "read_st_counts",
]

ST_SPOT_PITCH_UM = 200.0
"""Centre-to-centre distance of array neighbours on a legacy ST slide (µm)."""
ST_SPOT_DIAMETER_UM = 100.0
"""Legacy ST spot diameter (µm)."""
ST_TECHNOLOGY = "ST"

_COUNTS_DIR = "ST-cnts"
_SPOTS_DIR = "ST-spotfiles"
_IMGS_DIR = "ST-imgs"
_COUNTS_SUFFIX = ".tsv.gz"
_SPOTS_SUFFIX = "_selection.tsv"
_SPOT_COLUMNS = ("x", "y", "pixel_x", "pixel_y")
_SECTION_RE = re.compile(r"^([A-Za-z]+)\d+$")
_ROW_RE = r"^(\d+)x(\d+)$"


def _spot_names(array_xy: np.ndarray) -> pd.Index:
    """Canonical spot names ``"{x}x{y}"`` (the her2st counts row names).

    Shape:
        array_xy ``(N, 2)`` int.
    """
    xy = pd.DataFrame(np.asarray(array_xy, dtype=np.int64)).astype(str)
    return pd.Index(xy[0] + "x" + xy[1], name="barcode")


@dataclass(frozen=True)
class Her2stSection:
    """Files of one her2st section.

    Attributes:
        section_id: e.g. ``"C2"``; also the output sample id.
        patient: The section's letter(s), e.g. ``"C"``.
        counts: ``ST-cnts/{s}.tsv.gz``.
        spots: ``ST-spotfiles/{s}_selection.tsv``.
        image: The section's H&E JPEG.
    """

    section_id: str
    patient: str
    counts: Path
    spots: Path
    image: Path


def _data_dir(root: str | Path) -> Path:
    """Return the folder holding ``ST-cnts`` (``root/data`` or ``root``)."""
    root = Path(root)
    for candidate in (root / "data", root):
        if (candidate / _COUNTS_DIR).is_dir():
            return candidate
    raise ValueError(
        f"her2st root {root}: no '{_COUNTS_DIR}' folder in {root / 'data'} or {root}; pass "
        "--root the her2st repository folder (the one holding data/ST-cnts)."
    )


def list_sections(root: str | Path) -> list[str]:
    """Section ids that have a counts file under ``root``, sorted."""
    counts_dir = _data_dir(root) / _COUNTS_DIR
    return sorted(p.name[: -len(_COUNTS_SUFFIX)] for p in counts_dir.glob(f"*{_COUNTS_SUFFIX}"))


def locate_section(root: str | Path, section: str) -> Her2stSection:
    """Find and check the three input files of ``section``.

    Raises:
        ValueError: Unknown section (listing the available ones), or a missing spot file
            or image, naming the expected path.
    """
    data = _data_dir(root)
    available = list_sections(root)
    if section not in available:
        raise ValueError(
            f"her2st root {root}: unknown section '{section}'; available sections: "
            f"{', '.join(available) or 'none'}. Pass --sections with ids from that list."
        )
    match = _SECTION_RE.match(section)
    if match is None:
        raise ValueError(
            f"her2st section '{section}': expected a letter (the patient) followed by a number, "
            "e.g. C2; rename the section files accordingly."
        )
    patient = match.group(1)
    spots = data / _SPOTS_DIR / f"{section}{_SPOTS_SUFFIX}"
    if not spots.is_file():
        raise ValueError(
            f"her2st section {section}: spot file {spots} is missing; it holds the spot pixel "
            "positions needed to cut patches. Add it (from the her2st release) and retry."
        )
    img_dir = data / _IMGS_DIR / patient / section
    images = sorted(p for p in img_dir.glob("*") if p.suffix.lower() in {".jpg", ".jpeg"})
    if not images:
        raise ValueError(
            f"her2st section {section}: no H&E image (*.jpg) in {img_dir}; the image is "
            "required to cut patches. Add it (from the her2st release) or import other sections."
        )
    if len(images) > 1:
        raise ValueError(
            f"her2st section {section}: {len(images)} images in {img_dir} "
            f"({[p.name for p in images]}); keep only the section's H&E JPEG there."
        )
    return Her2stSection(
        section_id=section,
        patient=patient,
        counts=data / _COUNTS_DIR / f"{section}{_COUNTS_SUFFIX}",
        spots=spots,
        image=images[0],
    )


def read_st_counts(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a legacy ST counts table and parse its ``{x}x{y}`` row names.

    Args:
        path: ``ST-cnts/{s}.tsv.gz`` (tab-separated, genes as columns, spots as rows).

    Returns:
        ``(counts, array_xy)``: the table with canonical ``"{x}x{y}"`` row names, and the
        integer array positions.

    Raises:
        ValueError: Unreadable file or row names not of the form ``{x}x{y}``.

    Shape:
        counts ``(N, G)``; array_xy ``(N, 2)`` int64 (x, y).
    """
    try:
        table = pd.read_csv(path, sep="\t", index_col=0)
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(
            f"counts file {path}: cannot be read ({exc}); it must be a gzip'd tab-separated "
            "table with genes as columns and '{x}x{y}' spot names as rows."
        ) from exc
    parts = table.index.astype(str).str.extract(_ROW_RE)
    bad = parts.isna().any(axis=1).to_numpy()
    if bad.any():
        examples = list(table.index[bad][:3])
        raise ValueError(
            f"counts file {path}: {int(bad.sum())} row name(s) are not of the form "
            f"'{{x}}x{{y}}' (e.g. {examples}); rows must be named by array position."
        )
    array_xy = parts.to_numpy(dtype=np.int64)
    table.index = _spot_names(array_xy)
    check_unique(table.index, str(path), "spot (row name)")
    return table, array_xy


def read_spotfile(path: Path) -> pd.DataFrame:
    """Read a ``{s}_selection.tsv`` spot file and keep ``selected == 1`` rows if present.

    Returns:
        Table with integer ``x``/``y``, float ``pixel_x``/``pixel_y`` and a ``barcode``
        index ``"{x}x{y}"``.

    Raises:
        ValueError: Unreadable file, missing columns, non-integer array positions,
            NaN pixel positions or duplicated positions.
    """
    try:
        table = pd.read_csv(path, sep="\t")
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"spot file {path}: cannot be read ({exc}).") from exc
    missing = [c for c in _SPOT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"spot file {path}: missing column(s) {missing} (found {list(table.columns)}); "
            "expected the her2st columns x y new_x new_y pixel_x pixel_y selected."
        )
    if "selected" in table.columns:
        keep = table["selected"].to_numpy() == 1
        if not keep.all():
            logger.info(
                "%s: %d of %d spots have selected != 1 (not under tissue); dropped.",
                path,
                int((~keep).sum()),
                len(table),
            )
        table = table.loc[keep]
    xy = table[["x", "y"]].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(xy) & (np.mod(xy, 1) == 0)):
        raise ValueError(
            f"spot file {path}: columns x and y must be integer array positions; use "
            "new_x/new_y only for sub-spot positions."
        )
    pix = table[["pixel_x", "pixel_y"]].to_numpy(dtype=np.float64)
    if not np.isfinite(pix).all():
        raise ValueError(
            f"spot file {path}: {int((~np.isfinite(pix)).any(axis=1).sum())} row(s) have "
            "empty or NaN pixel_x/pixel_y; fill or remove them."
        )
    xy_int = xy.astype(np.int64)
    table = table.assign(x=xy_int[:, 0], y=xy_int[:, 1])
    table.index = _spot_names(xy_int)
    check_unique(table.index, str(path), "(x, y) position")
    return table


def estimate_um_per_px(
    array_xy: np.ndarray, pixel_xy: np.ndarray, pitch_um: float = ST_SPOT_PITCH_UM
) -> float:
    """µm per pixel from the known spot pitch: fit pixel position on array position.

    One least-squares fit with a slope shared by x and y (pixels per array step) and an
    intercept per axis; µm/px = ``pitch_um / slope``.

    Args:
        array_xy: Integer array positions (x, y).
        pixel_xy: Pixel positions (x = column, y = row).
        pitch_um: Distance in µm between array neighbours.

    Raises:
        ValueError: Fewer than two distinct array positions on either axis, or a
            non-positive slope (pixel axes flipped relative to the array).

    Shape:
        array_xy, pixel_xy ``(N, 2)``.
    """
    a = np.asarray(array_xy, dtype=np.float64)
    p = np.asarray(pixel_xy, dtype=np.float64)
    n = len(a)
    if n < 3 or min(len(np.unique(a[:, 0])), len(np.unique(a[:, 1]))) < 2:
        raise ValueError(
            f"cannot estimate µm/px from {n} spots: need at least two distinct array "
            "positions along x and y; pass the pixel size explicitly (--um-per-px)."
        )
    design = np.zeros((2 * n, 3))
    design[:, 0] = np.concatenate([a[:, 0], a[:, 1]])
    design[:n, 1] = 1.0
    design[n:, 2] = 1.0
    target = np.concatenate([p[:, 0], p[:, 1]])
    slope = float(np.linalg.lstsq(design, target, rcond=None)[0][0])
    if not slope > 0:
        raise ValueError(
            f"pixel positions decrease along the array (slope {slope:.2f} px per step); "
            "pass the pixel size explicitly (--um-per-px)."
        )
    return pitch_um / slope


def _import_section(
    section: Her2stSection,
    out: Path,
    *,
    patch_um: float,
    patch_px: int,
    um_per_px: float | None,
    organ: str,
    overwrite: bool,
) -> ImportSummary:
    """Read, align and write one section (see :func:`import_her2st`)."""
    counts, _ = read_st_counts(section.counts)
    spots = read_spotfile(section.spots)
    n_union = len(counts.index.union(spots.index))
    count_idx, spot_idx = align_barcodes(
        counts.index.to_numpy(),
        spots.index.to_numpy(),
        counts_source=str(section.counts),
        coords_source=str(section.spots),
    )
    counts = counts.iloc[count_idx]
    spots = spots.iloc[spot_idx]
    array_xy = spots[["x", "y"]].to_numpy()
    pixel_xy = spots[["pixel_x", "pixel_y"]].to_numpy(dtype=np.float64)
    estimate = estimate_um_per_px(array_xy, pixel_xy)
    if um_per_px is None:
        um_per_px = estimate
        logger.info(
            "section %s: %.4f µm/px (%.1f px per %g µm pitch)",
            section.section_id,
            estimate,
            ST_SPOT_PITCH_UM / estimate,
            ST_SPOT_PITCH_UM,
        )
    elif abs(um_per_px / estimate - 1) > 0.1:
        logger.warning(
            "section %s: given %.4f µm/px differs by more than 10%% from the %.4f µm/px "
            "implied by the %g µm spot pitch; check --um-per-px.",
            section.section_id,
            um_per_px,
            estimate,
            ST_SPOT_PITCH_UM,
        )
    reader = open_image(section.image)
    try:
        return write_imported_sample(
            out,
            section.section_id,
            counts=counts.to_numpy(),
            genes=counts.columns.to_numpy(),
            barcodes=counts.index.to_numpy(),
            pixel_xy=pixel_xy,
            image=reader,
            um_per_px=um_per_px,
            patient=section.patient,
            technology=ST_TECHNOLOGY,
            # array_row is the y (row) position, array_col the x (column) position
            array_rc=array_xy[:, ::-1],
            organ=organ,
            spot_diameter_um=ST_SPOT_DIAMETER_UM,
            spot_pitch_um=ST_SPOT_PITCH_UM,
            patch_um=patch_um,
            patch_px=patch_px,
            n_dropped=n_union - len(count_idx),
            provenance={
                "importer": "her2st",
                "counts": str(section.counts),
                "spots": str(section.spots),
                "image": str(section.image),
            },
            overwrite=overwrite,
        )
    finally:
        reader.close()


def import_her2st(
    root: str | Path,
    sections: Iterable[str],
    out: str | Path,
    *,
    patch_um: float = 112.0,
    patch_px: int = 224,
    um_per_px: float | None = None,
    organ: str = "Breast",
    overwrite: bool = False,
) -> list[ImportSummary]:
    """Import her2st sections into a HEST-layout dataset, one sample per section.

    All sections are located and checked before anything is written; each sample is
    then written atomically. Inputs are only read.

    Args:
        root: her2st folder (holding ``data/ST-cnts``) or its ``data`` folder.
        sections: Section ids, e.g. ``["C2", "C3"]``; also the output sample ids.
        out: Dataset root to write into.
        patch_um: Physical window side in µm (HEST: 112).
        patch_px: Stored patch side in pixels (HEST: 224, i.e. 0.5 µm/px).
        um_per_px: µm per image pixel; estimated from the 200 µm spot pitch when None.
        organ: Organ written to the metadata.
        overwrite: Replace existing samples of the same ids.

    Returns:
        One :class:`ImportSummary` per section, in the order given.

    Raises:
        ValueError: Unknown section (listing the available ones), missing image or spot
            file, unreadable or invalid counts, no shared spots.
    """
    ids = [s.strip() for s in sections if s.strip()]
    if not ids:
        raise ValueError(
            f"her2st root {root}: no section given; available sections: "
            f"{', '.join(list_sections(root))}."
        )
    check_unique(ids, "--sections", "section id")
    located = [locate_section(root, s) for s in ids]
    out = Path(out)
    if not overwrite:
        existing = [
            s for s in ids if (out / keys.METADATA_DIR / f"{s}{keys.METADATA_SUFFIX}").exists()
        ]
        if existing:
            raise ValueError(
                f"her2st: section(s) {existing} already exist in {out}; pass --overwrite to "
                "replace them or choose another --out."
            )
    return [
        _import_section(
            s,
            out,
            patch_um=patch_um,
            patch_px=patch_px,
            um_per_px=um_per_px,
            organ=organ,
            overwrite=overwrite,
        )
        for s in located
    ]
