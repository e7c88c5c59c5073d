"""What a sample read from disk must satisfy before anything trains or scores on it.

``write_sample`` validates what it writes, but a dataset may come from elsewhere (a
HEST-1k download, a hand-made h5ad), so :meth:`Sample.read_adata` checks the counts
and the spots it reads. Every message starts with the file at fault and names the
sample, the field and what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["check_counts", "check_spots"]

_N_EXAMPLES = 5


def check_counts(adata: ad.AnnData, path: Path, sample_id: str) -> None:
    """Refuse counts that are not raw counts: NaN/inf, negative, or all zero.

    Raises:
        ValueError: ``"{path}: sample '{id}': counts (X) hold ..."`` with the fix.
    """
    where = f"{path}: sample '{sample_id}'"
    X = adata.X
    values = X.data if sp.issparse(X) else np.asarray(X)
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"{where}: counts (X) have the non-numeric dtype {values.dtype}")
    n_bad = int(np.count_nonzero(~np.isfinite(values)))
    if n_bad:
        raise ValueError(
            f"{where}: counts (X) hold {n_bad} NaN/inf value(s); raw counts are finite: fix "
            "the file or drop those spots/genes and re-import the sample"
        )
    n_neg = int(np.count_nonzero(values < 0))
    if n_neg:
        raise ValueError(
            f"{where}: counts (X) hold {n_neg} negative value(s); X must hold raw counts, not "
            "normalised or scaled values: re-import the sample from its raw counts"
        )
    if not np.any(values):
        raise ValueError(
            f"{where}: all counts are zero, so the sample has no expression to learn or score; "
            "leave it out of --train-samples/--test-samples or re-import it"
        )


def check_spots(
    adata: ad.AnnData, patch_barcodes: np.ndarray, path: Path, patches_path: Path, sample_id: str
) -> None:
    """Refuse spots that are duplicated or differ from the patch file's, row by row.

    Row i of the counts and patch i must be the same spot; every reader pairs them by
    position.

    Raises:
        ValueError: naming both files, the first offending barcodes and the fix.
    """
    where = f"{path}: sample '{sample_id}'"
    names = adata.obs_names
    if not names.is_unique:
        dup = names[names.duplicated()].unique()[:_N_EXAMPLES].tolist()
        raise ValueError(
            f"{where}: duplicate barcode(s) in obs_names, e.g. {dup}; each spot needs exactly "
            "one row: make the barcodes unique and re-import the sample"
        )
    counts = np.asarray(names, dtype=str)
    patches = np.asarray(patch_barcodes, dtype=str)
    if counts.shape == patches.shape and np.array_equal(counts, patches):
        return
    only_counts = counts[~np.isin(counts, patches)]
    only_patches = patches[~np.isin(patches, counts)]
    if only_counts.size or only_patches.size:
        raise ValueError(
            f"{where}: spot barcodes differ from {patches_path}: {only_counts.size} spot(s) "
            f"have counts but no patch (e.g. {only_counts[:_N_EXAMPLES].tolist()}), "
            f"{only_patches.size} have a patch but no counts (e.g. "
            f"{only_patches[:_N_EXAMPLES].tolist()}); re-import the sample so that both "
            "files hold the same spots"
        )
    raise ValueError(
        f"{where}: spots are in another order than in {patches_path}; row i of both files "
        "must be the same spot: re-import the sample"
    )
