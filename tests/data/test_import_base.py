"""What importers share (rankbygene.data.importers.base): count and barcode validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from rankbygene.data.importers.base import align_barcodes, check_unique, counts_to_csr


def test_counts_to_csr_types_and_errors(caplog):
    x = np.array([[0, 2.0], [3.0, 0]])
    out = counts_to_csr(x, "f")
    assert out.dtype == np.int32 and out.nnz == 2
    np.testing.assert_array_equal(out.toarray(), x)
    with caplog.at_level("WARNING"):
        frac = counts_to_csr(np.array([[0.5, 1.0]]), "f")
    assert frac.dtype == np.float32 and "not integers" in caplog.text
    with pytest.raises(ValueError, match=r"f: counts hold 2 NaN or infinite"):
        counts_to_csr(np.array([[np.nan, np.inf, 1.0]]), "f")
    with pytest.raises(ValueError, match="expected numbers"):
        counts_to_csr(np.array([["a"]], dtype=object), "f")
    src = sp.csr_matrix(np.array([[1, 0], [0, 4]], dtype=np.int64))
    counts_to_csr(src, "f").data[:] = 99
    assert src.data.tolist() == [1, 4]  # input not modified


def test_align_barcodes_and_check_unique(caplog):
    with caplog.at_level("WARNING"):
        ci, pi = align_barcodes(
            ["a", "b", "c", "d"], ["d", "x", "b"], counts_source="C", coords_source="P"
        )
    np.testing.assert_array_equal(ci, [1, 3])
    np.testing.assert_array_equal(pi, [2, 0])
    assert "C: 2 of 4 spots with counts have no coordinates in P" in caplog.text
    assert "P: 1 of 3 spots with coordinates have no counts in C" in caplog.text
    with pytest.raises(ValueError, match=r"no spot of C \(2 barcodes"):
        align_barcodes(["a", "b"], ["x"], counts_source="C", coords_source="P")
    with pytest.raises(
        ValueError, match=r"F: 2 duplicate barcode value\(s\) \(e\.g\. \['a', 'b'\]\)"
    ):
        check_unique(["a", "a", "b", "b", "c"], "F", "barcode")
