"""The encoder ``rankbygene predict`` is given: a training run's, or a registry encoder.

:func:`open_encoder` loads it and computes its :class:`EncoderIdentity`, which
``predict`` checks against the predictor's card before reading a single tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from rankbygene.features.runs import SECTION_ENCODER
from rankbygene.models import create_encoder, weights_sha256
from rankbygene.predict.identity import EncoderIdentity
from rankbygene.training import TrainedRun, load_run

__all__ = ["EncoderSource", "open_encoder"]


@dataclass
class EncoderSource:
    """An encoder to predict with.

    Attributes:
        network: the image encoder (``Encoder``), or a HisToGene network (whose spot
            features need the whole section: ``--data`` only).
        identity: what it is (``patch_um`` filled in by the caller's data).
        run: its training run, if any.
        label: how the user named it, for messages (``--run RUN`` ...).
    """

    network: nn.Module
    identity: EncoderIdentity
    run: TrainedRun | None
    label: str

    @property
    def per_tile(self) -> bool:
        """Whether it embeds a patch on its own (slides need that)."""
        return self.run is None or self.run.method.network == "image-encoder"


def open_encoder(
    run: str | Path | None = None,
    encoder: str | None = None,
    weights: str | Path | None = None,
    *,
    random_init: bool = False,
) -> EncoderSource:
    """Load the encoder of ``--run RUN`` or ``--encoder NAME [--weights W | --random-init]``.

    Raises:
        ValueError: neither or both given, ``weights`` or ``random_init`` with a run, or
            no weights for an encoder worth its pretraining without ``random_init``.
        FileNotFoundError: an unfinished run or a missing weights file.
    """
    if (run is None) == (encoder is None):
        raise ValueError("Give exactly one of --run RUN or --encoder NAME.")
    if run is not None:
        if weights is not None or random_init:
            raise ValueError(
                "--weights and --random-init go with --encoder; a run carries its own weights."
            )
        trained = load_run(run)
        source = str(trained.path.resolve())
        if trained.method.network == "section-transformer":
            net = trained.histogene()
            transform, dim, name = net.transform, int(net.norm.normalized_shape[0]), SECTION_ENCODER
        else:
            net = trained.encoder()
            transform, dim, name = net.transform, net.embed_dim, net.name
        identity = EncoderIdentity(
            name, source, weights_sha256(net), transform.to_dict(), dim, None
        )
        return EncoderSource(net, identity, trained, f"--run {run}")
    net = create_encoder(encoder, weights, random_init=random_init)
    identity = EncoderIdentity(
        net.name, None, weights_sha256(net), net.transform.to_dict(), net.embed_dim, None
    )
    label = f"--encoder {encoder}" + (f" --weights {weights}" if weights is not None else "")
    return EncoderSource(net, identity, None, label)
