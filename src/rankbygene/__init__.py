"""rankbygene: gene-guided histopathology representation learning (RankByGene).

Learn image encoders for histology guided by spatial transcriptomics, through a
gene-image contrastive loss, a cross-modal ranking-consistency loss and
teacher-student distillation; then evaluate the features on gene-expression
prediction. See ``docs/architecture.md`` for the sub-package contracts.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rankbygene")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
