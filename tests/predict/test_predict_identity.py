"""The encoder identity a predictor checks before predicting: what differs is refused."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from rankbygene.predict.identity import EncoderIdentity, check_same_encoder, same_run

CARD = EncoderIdentity(
    encoder="tiny",
    source_run="/runs/a",
    weights_sha256="a" * 64,
    transform={"input_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]},
    embed_dim=128,
    patch_um=112.0,
)


def _check(given: EncoderIdentity) -> None:
    check_same_encoder(CARD, given, predictor="P", given_what="--run /runs/b")


def test_identity_round_trips_and_describes_itself():
    assert EncoderIdentity.from_dict(CARD.to_dict()) == CARD
    assert CARD.describe() == (
        "encoder 'tiny', run /runs/a, weights sha256 aaaaaaaaaaaa…, 112 µm patches at 64 px, 128-d"
    )
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['embed_dim'\]"):
        EncoderIdentity.from_dict({"encoder": "x", "transform": {}})


def test_the_same_encoder_passes_and_a_moved_run_with_equal_weights_too(caplog):
    _check(CARD)
    with caplog.at_level(logging.INFO):
        _check(replace(CARD, source_run="/elsewhere/a"))
    assert "the weights are identical" in caplog.text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"weights_sha256": "b" * 64, "source_run": "/runs/b"}, "weights, run"),
        ({"encoder": "uni"}, "encoder"),
        ({"patch_um": 224.0}, "patch size"),
        ({"embed_dim": 64}, "feature width"),
        ({"transform": {**CARD.transform, "input_size": 224}}, "input size or normalisation"),
    ],
)
def test_a_difference_is_refused_naming_both_sides_and_what_differs(change, named):
    given = replace(CARD, **change)
    with pytest.raises(ValueError) as err:
        _check(given)
    message = str(err.value)
    assert f"They differ in: {named}." in message
    assert f"The predictor P was fitted on features of {CARD.describe()}" in message
    assert f"--run /runs/b gives {given.describe()}" in message
    assert "Predict with the encoder it was fitted on (--run /runs/a" in message


def test_without_digests_the_runs_decide_and_a_warning_says_so(caplog):
    unknown = replace(CARD, weights_sha256=None)
    with caplog.at_level(logging.WARNING):
        check_same_encoder(unknown, CARD, predictor="P", given_what="--run /runs/a")
    assert "could not be compared" in caplog.text
    with pytest.raises(ValueError, match=r"They differ in: run\."):
        check_same_encoder(
            unknown, replace(CARD, source_run="/runs/b"), predictor="P", given_what="x"
        )
    _check(replace(CARD, patch_um=112.0 * 1.01))  # a window rounded to whole pixels: the same


def test_same_run_compares_resolved_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert same_run("runs/a", str(tmp_path / "runs" / "a"))
    assert not same_run("runs/a", None) and same_run(None, None)
