"""Fixtures of the reliability matrix: a tiny dataset, a finished run, features, slide bags.

Built once per session through the real command line; a row that damages an input
copies the fixture first (:func:`copy_tree`), so rows stay independent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from reliability_helpers import N_GENES, N_SPOTS, PATCH_PX, SMALL_RUN, rbg, train_args


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="session")
def dataset(shared: Path) -> Path:
    root = shared / "data"
    r = rbg(
        "data",
        "synth",
        "--out",
        root,
        "--samples",
        "4",
        "--patients",
        "3",
        "--spots",
        str(N_SPOTS),
        "--genes",
        str(N_GENES),
        "--patch-px",
        str(PATCH_PX),
        "--seed",
        "3",
    )
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture(scope="session")
def small_config(shared: Path) -> Path:
    path = shared / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL_RUN))
    return path


@pytest.fixture(scope="session")
def run_dir(shared: Path, dataset: Path, small_config: Path) -> Path:
    """A finished rankbygene run (1 epoch, tiny encoder, 8 genes)."""
    out = shared / "run"
    r = rbg(*train_args(dataset, out, "--config", str(small_config)))
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="session")
def stnet_run(shared: Path, dataset: Path) -> Path:
    """A finished ST-Net run: its own predictor is a linear expression head."""
    out = shared / "stnet"
    r = rbg(*train_args(dataset, out, "--method", "stnet"))
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="session")
def features(shared: Path, dataset: Path) -> Path:
    """Features of every sample from the frozen tiny encoder."""
    out = shared / "features"
    r = rbg("extract", "--data", dataset, "--encoder", "tiny", "--out", out)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="session")
def slide_bags(shared: Path) -> tuple[Path, Path, Path]:
    """(features dir, classification CSV, survival CSV) of 8 slides of 8 cases, D = 6."""
    from rankbygene.features.io import write_features

    root = shared / "slides"
    rng = np.random.default_rng(0)
    ids = [f"S{i}" for i in range(8)]
    for i, sid in enumerate(ids):
        n = 5 + i
        feats = rng.normal(size=(n, 6)) + (i % 2)
        tiles = [f"t{j}" for j in range(n)]
        write_features(root / "bags" / f"{sid}.h5", feats, np.zeros((n, 2)), tiles)
    cls = root / "labels.csv"
    cls.write_text("slide_id,label\n" + "".join(f"{s},{'ab'[i % 2]}\n" for i, s in enumerate(ids)))
    surv = root / "survival.csv"
    surv.write_text(
        "slide_id,time,event\n" + "".join(f"{s},{3 + i},{i % 2}\n" for i, s in enumerate(ids))
    )
    return root / "bags", cls, surv


# Rows that failed against the code as it was when the matrix was written, with why:
# test function -> parameter id ("" for an unparametrised test) -> reason. Each entry is
# removed by the commit that fixes its row; docs/reliability.md counts them.
KNOWN_FAILURES: dict[str, dict[str, str]] = {}


# Known failures that also break the test process, so they are not run until fixed
# (test_disk_full_during_evaluate was one: HDF5's state after a failed write crashed
# later tests).
NOT_RUN: set[tuple[str, str]] = set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        param = callspec.id if callspec is not None else ""
        reason = KNOWN_FAILURES.get(item.originalname, {}).get(param)
        if reason is not None:
            run = (item.originalname, param) not in NOT_RUN
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason, run=run))
