"""Datasets in the HEST-1k layout: reading, writing, synthetic data, preprocessing, splits."""

from rankbygene.data.dataset import PatchStore, Sample, STDataset, UnknownSampleError, read_dataset
from rankbygene.data.synthetic import make_synthetic_dataset
from rankbygene.data.writer import write_sample

__all__ = [
    "PatchStore",
    "STDataset",
    "Sample",
    "UnknownSampleError",
    "make_synthetic_dataset",
    "read_dataset",
    "write_sample",
]
