"""Self-supervised pretraining of an image encoder on tiles of the user's own images.

The paper fine-tunes a pretrained pathology foundation model; where none can be
downloaded, ``pretrain(config)`` gives an encoder that has already seen the tissue:
DINO or SimCLR (lightly's losses, heads and EMA) on tissue tiles of slides or on a
dataset's spot patches. Its run exports ``encoder/`` as a training run does
(:mod:`rankbygene.pretraining.artifacts`), so ``train --weights`` and ``extract --run``
take it. ``PretrainConfig`` is cheap to import; the rest loads on first use.
"""

from rankbygene.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "PretrainConfig": "rankbygene.pretraining.config",
        "PretrainedRun": "rankbygene.pretraining.artifacts",
        "load_pretraining_run": "rankbygene.pretraining.artifacts",
        "pretrain": "rankbygene.pretraining.run",
    },
)
