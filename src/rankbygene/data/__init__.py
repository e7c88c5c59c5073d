"""Datasets in the HEST-1k layout: reading, writing, synthetic data, preprocessing, splits.

See ``docs/architecture.md`` for the contract. Importers live in
``rankbygene.data.importers`` and write through :func:`write_sample`.
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
from rankbygene.data.torch_dataset import SpotDataset
from rankbygene.data.writer import write_sample

__all__ = [
    "PanelSelection",
    "PatchStore",
    "STDataset",
    "Sample",
    "Split",
    "SpotDataset",
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
