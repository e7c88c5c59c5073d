"""The identity of the encoder behind features, and the check that two identities agree.

Predicting from the wrong features is the silent failure users hit most: a predictor
fitted on one encoder's features gives numbers, but meaningless ones, on another's. So a
saved predictor records the identity of the encoder its training features came from
(name, source run, SHA-256 of its weights, eval transform, feature width, patch size in
µm), and ``rankbygene predict`` recomputes it for the encoder it is given and refuses to
go on when they differ.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rankbygene.predict.settings import PATCH_UM_TOLERANCE

logger = logging.getLogger(__name__)

__all__ = ["EncoderIdentity", "check_same_encoder", "same_run"]


@dataclass(frozen=True)
class EncoderIdentity:
    """What made a set of features.

    Attributes:
        encoder: the encoder's registry name (``histogene`` for a HisToGene run).
        source_run: the training run it came from (resolved path), None for a frozen
            registry encoder.
        weights_sha256: :func:`rankbygene.models.weights_sha256` of its weights, None
            when unknown (features extracted without it).
        transform: its eval transform (``input_size``, ``mean``, ``std``).
        embed_dim: feature width D.
        patch_um: physical side of the image window it saw, µm (None when unknown).
    """

    encoder: str
    source_run: str | None
    weights_sha256: str | None
    transform: dict[str, Any]
    embed_dim: int
    patch_um: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the predictor card holds under ``encoder``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderIdentity:
        """Inverse of :meth:`to_dict`; raises ValueError naming missing fields."""
        missing = [k for k in ("encoder", "transform", "embed_dim") if k not in data]
        if missing:
            raise ValueError(f"encoder identity lacks field(s) {missing}.")
        patch = data.get("patch_um")
        return cls(
            str(data["encoder"]),
            data.get("source_run"),
            data.get("weights_sha256"),
            dict(data["transform"]),
            int(data["embed_dim"]),
            None if patch is None else float(patch),
        )

    def describe(self) -> str:
        """One line for messages: name, run, weights, window and input size."""
        digest = self.weights_sha256[:12] + "…" if self.weights_sha256 else "unknown"
        patch = f"{self.patch_um:g} µm" if self.patch_um is not None else "unknown"
        size = self.transform.get("input_size", "?")
        run = self.source_run or "none (a registry encoder)"
        return (
            f"encoder {self.encoder!r}, run {run}, weights sha256 {digest}, "
            f"{patch} patches at {size} px, {self.embed_dim}-d"
        )


def same_run(a: str | None, b: str | None) -> bool:
    """Whether two run paths name the same directory (both None: no run on either side)."""
    if a is None or b is None:
        return a is None and b is None
    return Path(a).resolve() == Path(b).resolve()


def _differences(card: EncoderIdentity, given: EncoderIdentity) -> list[str]:
    found = []
    if card.encoder != given.encoder:
        found.append("encoder")
    hashes_known = card.weights_sha256 is not None and given.weights_sha256 is not None
    if hashes_known and card.weights_sha256 != given.weights_sha256:
        found.append("weights")
    if not same_run(card.source_run, given.source_run) and (
        not hashes_known or card.weights_sha256 != given.weights_sha256
    ):
        found.append("run")
    if card.embed_dim != given.embed_dim:
        found.append("feature width")
    if card.transform != given.transform:
        found.append("input size or normalisation")
    known = card.patch_um is not None and given.patch_um is not None
    if known and abs(card.patch_um - given.patch_um) > PATCH_UM_TOLERANCE * card.patch_um:
        found.append("patch size")
    return found


def check_same_encoder(
    card: EncoderIdentity, given: EncoderIdentity, *, predictor: str | Path, given_what: str
) -> None:
    """Refuse features whose encoder is not the one the predictor was fitted on.

    Equal weight digests make a different run path harmless (a copied or moved run);
    without digests on both sides the runs must match, and a warning says the weights
    could not be compared.

    Args:
        card: the identity in the predictor's card.
        given: the identity of the encoder (or features) at hand.
        predictor: the predictor directory, for the message.
        given_what: what ``given`` describes, for the message (e.g. ``--run runs/a``).

    Raises:
        ValueError: naming both sides, what differs, and the two ways out.
    """
    found = _differences(card, given)
    if found:
        fix_run = f"--run {card.source_run}" if card.source_run else f"--encoder {card.encoder}"
        raise ValueError(
            f"The predictor {predictor} was fitted on features of {card.describe()}; "
            f"{given_what} gives {given.describe()}. They differ in: {', '.join(found)}. "
            f"Predict with the encoder it was fitted on ({fix_run} and its weights), or fit "
            "a predictor on features of this encoder (`rankbygene extract`, then "
            "`rankbygene fit`)."
        )
    if card.weights_sha256 is None or given.weights_sha256 is None:
        logger.warning(
            "the weights of %s could not be compared with the predictor's (no weights "
            "digest recorded); re-extract the training features and refit to enable the check",
            given_what,
        )
    elif not same_run(card.source_run, given.source_run):
        logger.info(
            "%s names run %s, the predictor %s; the weights are identical",
            given_what, given.source_run, card.source_run,
        )  # fmt: skip
