"""A saved predictor, ``PREDICTOR/``: written by ``rankbygene fit``, read by ``predict``.

Layout (names in :mod:`rankbygene.keys`)::

    PREDICTOR/weights.safetensors   every member model's tensors (PredictorState.tensors)
    PREDICTOR/genes.txt             the genes it predicts, one a line, in column order
    PREDICTOR/predictor.json        the card, written last: a directory with it is complete

The card says what the predictor is (``probe``, its settings and members), the scale of
its predictions (``scale``: library-size target, log1p, whether the training targets
were smoothed), the panel and the training spots, and the identity of the encoder its
features came from (``encoder``, checked by ``predict``). A prediction is the mean of
the members' predictions, as ``evaluate genes`` writes it (``predicted``).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rankbygene import __version__, keys
from rankbygene.evaluation.predictors import (
    Predictor,
    PredictorState,
    SpotSet,
    predictor_from_state,
)
from rankbygene.fileio import (
    atomic_path,
    read_json,
    remove_stale_temps,
    write_json,
    write_text_atomic,
)
from rankbygene.predict.identity import EncoderIdentity

logger = logging.getLogger(__name__)

__all__ = [
    "CARD_FORMAT",
    "SavedPredictor",
    "check_predictor_out",
    "load_predictor",
    "write_predictor",
]

CARD_FORMAT = "rankbygene-predictor/1"
_FILES = {keys.PREDICTOR_WEIGHTS, keys.PREDICTOR_GENES, keys.PREDICTOR_CARD}
_REFIT = "fit the predictor again with `rankbygene fit`"


def check_predictor_out(out: str | Path, *, overwrite: bool) -> None:
    """Refuse an ``--out`` that is not (or not yet) a predictor directory we may write.

    A complete predictor (its card) needs ``overwrite``; a directory holding anything
    but a predictor's files is refused even with it (``--out`` pointing at a dataset);
    an interrupted fit (weights or genes, no card) is redone. Temporary files of killed
    writers are swept.

    Raises:
        ValueError: naming the directory, what it holds and the fix.
    """
    out = Path(out)
    if not out.is_dir():
        if out.exists():
            raise ValueError(f"--out {out} is a file; choose a directory for the predictor.")
        return
    remove_stale_temps(out)
    other = sorted(p.name for p in out.iterdir() if p.name not in _FILES)
    if other:
        raise ValueError(
            f"--out {out} holds other files ({', '.join(other[:5])}): it is not a predictor "
            "directory. Choose a new or empty --out."
        )
    if (out / keys.PREDICTOR_CARD).is_file() and not overwrite:
        raise ValueError(
            f"{out} already holds a predictor ({keys.PREDICTOR_CARD}); pass --overwrite to "
            "replace it, or choose another --out."
        )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_predictor(
    out: str | Path,
    predictor: Predictor,
    genes: Sequence[str],
    card: Mapping[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a fitted predictor to ``out/`` (weights, genes, then the card).

    Args:
        out: the predictor directory (created).
        predictor: a fitted, savable predictor.
        genes: its output columns.
        card: the card's fields besides the ones written here (``probe``, the state's
            ``predictor`` description, ``genes_sha256``...): scale, panel, training,
            encoder identity.
        overwrite: replace a complete predictor already in ``out``.

    Raises:
        ValueError: ``out`` already holds a predictor (and not ``overwrite``).
    """
    out = Path(out)
    check_predictor_out(out, overwrite=overwrite)
    state = predictor.state()
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.tensors.items()}
    with atomic_path(out / keys.PREDICTOR_WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"probe": predictor.name})
    write_text_atomic(out / keys.PREDICTOR_GENES, "\n".join(genes) + "\n")
    full = {
        "format": CARD_FORMAT,
        "probe": predictor.name,
        "n_members": len(predictor.members()),
        "n_genes": len(genes),
        **card,
        "predictor": state.meta,
        "weights_sha256": _file_sha256(out / keys.PREDICTOR_WEIGHTS),
        "rankbygene_version": __version__,
    }
    write_json(out / keys.PREDICTOR_CARD, full)
    logger.info("saved %s predictor (%d genes) to %s", predictor.name, len(genes), out)
    return out


@dataclass
class SavedPredictor:
    """A predictor read back from ``PREDICTOR/``.

    Attributes:
        path: its directory.
        card: ``predictor.json``.
        genes: ``genes.txt``, its output columns.
        predictor: the rebuilt predictor (its members fitted).
    """

    path: Path
    card: dict[str, Any]
    genes: list[str]
    predictor: Predictor

    @property
    def identity(self) -> EncoderIdentity:
        """The encoder its training features came from."""
        return EncoderIdentity.from_dict(self.card["encoder"])

    @property
    def patch_um(self) -> float | None:
        """Side of the image window its features saw, µm (slides are tiled at it)."""
        return self.identity.patch_um

    @property
    def id(self) -> str:
        """A short fingerprint: the SHA-256 of its weights file (as the card records it)."""
        return str(self.card["weights_sha256"])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The mean of the members' predictions (what ``evaluate genes`` stores).

        Shape:
            features (N, D); returns (N, G) float32, G = len(genes).
        """
        n = len(features)
        spots = SpotSet(np.full(n, "", dtype=object), np.zeros((n, 0), np.float32), features)
        return np.mean(self.predictor.predict(spots), axis=0)

    def columns(self, genes: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
        """The output genes (all, or those asked for, in that order) and their columns.

        Raises:
            ValueError: a gene the predictor does not predict, naming it, the closest
                names and the panel.
        """
        if not genes:
            return list(self.genes), np.arange(len(self.genes))
        index = {g: i for i, g in enumerate(self.genes)}
        unknown = [g for g in genes if g not in index]
        if unknown:
            hints = {g: difflib.get_close_matches(g, self.genes, n=3) for g in unknown}
            hint = "; ".join(f"{g}: did you mean {', '.join(h)}?" for g, h in hints.items() if h)
            panel = self.card.get("panel", {}).get("spec", "?")
            raise ValueError(
                f"Gene(s) {', '.join(unknown)} not in the panel of predictor {self.path} "
                f"({panel}, {len(self.genes)} genes, listed in "
                f"{self.path / keys.PREDICTOR_GENES}). {hint + ' ' if hint else ''}"
                "Choose genes from that list, or fit a predictor on a panel that has them "
                "(`rankbygene fit --panel FILE`)."
            )
        return list(genes), np.asarray([index[g] for g in genes], dtype=np.int64)


def load_predictor(path: str | Path) -> SavedPredictor:
    """Read ``PREDICTOR/`` and rebuild its predictor.

    Raises:
        FileNotFoundError: not a (complete) predictor directory, naming the command.
        ValueError: a card of another format, or weights that do not match it.
    """
    path = Path(path)
    card_path = path / keys.PREDICTOR_CARD
    if not card_path.is_file():
        raise FileNotFoundError(
            f"{path} is not a saved predictor (no {keys.PREDICTOR_CARD}). Make one with "
            f"`rankbygene fit --data DIR --features FEATS --train-samples IDS --out {path}`."
        )
    card = read_json(
        card_path, required=("format", "probe", "n_genes", "encoder", "scale"), fix=_REFIT
    )
    if card.get("format") != CARD_FORMAT:
        raise ValueError(
            f"{card_path}: format {card.get('format')!r}, expected {CARD_FORMAT!r}; fit the "
            "predictor again with this version of rankbygene."
        )
    genes = (path / keys.PREDICTOR_GENES).read_text().split()
    if len(genes) != card["n_genes"]:
        raise ValueError(
            f"{path / keys.PREDICTOR_GENES} lists {len(genes)} genes but the card says "
            f"{card['n_genes']}; the predictor directory is damaged: fit it again."
        )
    weights = path / keys.PREDICTOR_WEIGHTS
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{weights}: not a complete safetensors file ({err}); {_REFIT}.") from err
    predictor = predictor_from_state(card["probe"], PredictorState(tensors, card["predictor"]))
    return SavedPredictor(path, card, genes, predictor)
