"""rankbygene report PRED: maps per slide and gene; measured vs predicted PCC per section."""

from __future__ import annotations

import base64
import re

import anndata as ad
import numpy as np
import pytest
from typer.testing import CliRunner

from rankbygene.cli.main import app
from rankbygene.evaluation.metrics import pearson_per_gene
from rankbygene.predict.encoders import open_encoder
from rankbygene.predict.saved import load_predictor
from rankbygene.predict.sections import predict_sections
from rankbygene.predict.slides import predict_slides
from rankbygene.report import discover_report_inputs
from rankbygene.report.predictions import gene_pcc


def test_report_shows_slide_maps_and_section_pcc(setup, slide_maker, tmp_path):
    saved = load_predictor(setup.predictor)
    source = open_encoder(encoder="tiny", weights=setup.weights)
    genes = saved.genes[:3]
    pred = tmp_path / "PRED"
    slide = slide_maker(tmp_path / "S1.tif", 700, 900)
    predict_slides(slide, source, saved, pred, genes=genes)
    done = predict_sections(
        setup.data, source, saved, pred, sample_ids=list(setup.test), genes=genes
    )
    (sid,) = setup.test
    assert discover_report_inputs(tmp_path).predictions == {"PRED": pred}
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Predicted expression: PRED</h2>" in page
    assert "<h3>Slide S1</h3>" in page and f"<h3>Section {sid}</h3>" in page
    # every map predict drew is on the page, byte for byte
    for item in ("S1", sid):
        for gene in genes:
            png = (pred / "maps" / f"{item}_{gene}.png").read_bytes()
            assert base64.b64encode(png).decode() in page
    # the section's PCC table: the PCC of the h5ad's layers, gene by gene, and their mean
    pcc = gene_pcc(pred / f"{sid}.h5ad")
    assert pcc == pytest.approx(done[sid]["pcc"], rel=1e-12)  # what predict printed
    adata = ad.read_h5ad(pred / f"{sid}.h5ad")
    expected = pearson_per_gene(adata.layers["predicted"], adata.layers["target"])
    assert list(pcc.values()) == expected.tolist()
    shown = dict(re.findall(r"<td>([A-Z0-9_]+)</td><td><span class=\"n\">(-?[0-9.]+)</span>", page))
    assert {g: float(v) for g, v in shown.items()} == {
        g: round(v, 3) for g, v in pcc.items() if v == v
    }
    mean = np.nanmean(list(pcc.values()))
    assert f'<span class="n">{mean:.3f}</span> over {len(genes)} genes' in page
    assert "Predictor " in page and "log1p of counts normalised to 10000" in page
