"""``rankbygene data synth`` and ``rankbygene data info`` through the real command."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rankbygene.cli.main import app

runner = CliRunner()


def test_synth_then_info_json(tmp_path):
    out = tmp_path / "syn"
    args = ["data", "synth", "--out", str(out), "--samples", "2", "--spots", "20", "--genes"]
    result = runner.invoke(app, [*args, "30", "--seed", "3", "--patch-px", "16"])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    result = runner.invoke(app, ["data", "info", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["n_spots"] == 40
    assert info["samples"][0] == {
        "id": "SYN00",
        "patient": "PAT00",
        "technology": "Visium",
        "spots": 20,
        "genes": 30,
        "pixel_size_um": 0.5,
        "patch_px": 16,
    }
    assert [s["id"] for s in info["samples"]] == ["SYN00", "SYN01"]


def test_info_table_and_errors(tmp_path):
    out = tmp_path / "syn"
    result = runner.invoke(
        app, ["data", "synth", "--out", str(out), "--samples", "1", "--spots", "9"]
    )
    assert result.exit_code == 0, result.output
    table = runner.invoke(app, ["data", "info", str(out)])
    assert table.exit_code == 0
    lines = table.output.strip().splitlines()
    assert lines[0].split() == [
        "id",
        "patient",
        "technology",
        "spots",
        "genes",
        "µm/px",
        "patch",
        "px",
    ]
    assert lines[1].split() == ["SYN00", "PAT00", "Visium", "9", "200", "0.5", "64"]
    again = runner.invoke(app, ["data", "synth", "--out", str(out), "--samples", "1"])
    assert again.exit_code == 2 and "already exists" in again.output
    missing = runner.invoke(app, ["data", "info", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert "import" in runner.invoke(app, ["data", "--help"]).output
