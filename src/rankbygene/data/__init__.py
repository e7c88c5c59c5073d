"""Datasets in the HEST-1k layout: reading, writing, synthetic data, preprocessing, splits.

Modules, one job each:

- ``dataset``: read a dataset (:func:`read_dataset` -> :class:`STDataset` of
  :class:`Sample`); ``patches``: lazy ``(N, H, W, 3)`` uint8 patch access
  (:class:`PatchStore`); ``writer``: write one sample atomically (:func:`write_sample`).
- ``preprocessing``: normalisation, log1p and smoothing of ``(N, G)`` expression;
  ``panels``: gene panels chosen on training samples (:func:`select_panel`).
- ``splits``: patient-disjoint train/test splits; ``synthetic``: a dataset with known
  ground truth (:func:`make_synthetic_dataset`).
- ``images`` (region readers), ``patching`` (spot patches of a physical size) and
  ``wsi`` (whole-slide tiling), plus the ``importers`` sub-package (her2st, Visium,
  AnnData + image), are not imported here: they need tifffile, Pillow, torch or
  scikit-image, which reading a dataset does not.

Importing this package stays light (numpy, h5py, scipy.sparse): anndata, pandas and
scikit-learn are imported by the functions that need them. See ``docs/architecture.md``
for the contract.
"""

from rankbygene.data.dataset import Sample, STDataset, UnknownSampleError, read_dataset
from rankbygene.data.panels import PanelSelection, read_gene_list, select_panel
from rankbygene.data.patches import PatchStore
from rankbygene.data.preprocessing import (
    detect_grid,
    neighbour_matrix,
    normalize_total_log1p,
    preprocess_expression,
    smooth_expression,
)
from rankbygene.data.splits import (
    Split,
    assert_patient_disjoint,
    grouped_kfold,
    leave_one_patient_out,
)
from rankbygene.data.synthetic import make_synthetic_dataset
from rankbygene.data.writer import write_sample

__all__ = [
    "PanelSelection",
    "PatchStore",
    "STDataset",
    "Sample",
    "Split",
    "UnknownSampleError",
    "assert_patient_disjoint",
    "detect_grid",
    "grouped_kfold",
    "leave_one_patient_out",
    "make_synthetic_dataset",
    "neighbour_matrix",
    "normalize_total_log1p",
    "preprocess_expression",
    "read_dataset",
    "read_gene_list",
    "select_panel",
    "smooth_expression",
    "write_sample",
]
