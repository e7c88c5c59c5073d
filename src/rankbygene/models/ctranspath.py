"""CTransPath: Swin-T with a convolutional stem (Wang et al., MedIA 2022).

The stem replaces Swin's 4×4 patchify convolution with two stride-2 3×3 conv-BN-ReLU
stages (widths embed/8 and embed/4) and a 1×1 projection to the patch-embedding width,
written here from that description. Its submodule names (``proj`` sequential,
``norm``) follow the published checkpoint layout so its stem weights map by name.
"""

from __future__ import annotations

from collections.abc import Callable

import timm
import torch
from timm.models.swin_transformer import checkpoint_filter_fn
from torch import nn

SWIN_TINY = "swin_tiny_patch4_window7_224"
_STEM_STRIDE = 4  # two stride-2 convolutions


def _pair(x: int | tuple[int, int]) -> tuple[int, int]:
    return (x, x) if isinstance(x, int) else (int(x[0]), int(x[1]))


class ConvStem(nn.Module):
    """Convolutional patch embedding with timm ``PatchEmbed``'s interface.

    Args:
        img_size: Expected input size (checked when ``strict_img_size``).
        patch_size: Total stride; must be 4 (two stride-2 convolutions).
        in_chans: Input channels.
        embed_dim: Output width (Swin-T: 96); must be divisible by 8.
        norm_layer: Normalisation applied to each token, or None.
        flatten: Flatten to tokens (B, L, C) when ``output_fmt`` is None.
        output_fmt: ``"NHWC"`` (what timm's Swin asks for), ``"NCHW"`` or ``"NLC"``.
        strict_img_size: Raise when the input is not ``img_size``.
        **_: Other timm ``PatchEmbed`` arguments (device/dtype), ignored.

    Shape:
        input: (B, C, H, W); output: (B, H/4, W/4, embed_dim) for ``"NHWC"``.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int | tuple[int, int] = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        norm_layer: Callable[[int], nn.Module] | None = None,
        flatten: bool = True,
        output_fmt: str | None = None,
        strict_img_size: bool = True,
        **_: object,
    ) -> None:
        super().__init__()
        if _pair(patch_size) != (_STEM_STRIDE, _STEM_STRIDE):
            raise ValueError(f"ConvStem has a fixed stride of 4, got patch_size={patch_size}.")
        if embed_dim % 8:
            raise ValueError(f"ConvStem needs embed_dim divisible by 8, got {embed_dim}.")
        self.patch_size = (_STEM_STRIDE, _STEM_STRIDE)
        self.set_input_size(img_size)
        self.output_fmt = output_fmt if output_fmt is not None else ("NLC" if flatten else "NCHW")
        if self.output_fmt not in ("NHWC", "NCHW", "NLC"):
            raise ValueError(f"output_fmt must be NHWC, NCHW or NLC, got {self.output_fmt!r}.")
        self.flatten = self.output_fmt == "NLC"
        self.strict_img_size = strict_img_size
        layers: list[nn.Module] = []
        c_in, c_out = in_chans, embed_dim // 8
        for _stage in range(2):
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in, c_out = c_out, c_out * 2
        layers.append(nn.Conv2d(c_in, embed_dim, kernel_size=1))
        self.proj = nn.Sequential(*layers)
        self.norm = norm_layer(embed_dim) if norm_layer is not None else nn.Identity()

    def set_input_size(
        self,
        img_size: int | tuple[int, int] | None = None,
        patch_size: int | tuple[int, int] | None = None,
    ) -> None:
        """Update the expected input size (timm calls this on resize)."""
        if patch_size is not None and _pair(patch_size) != self.patch_size:
            raise ValueError("ConvStem's stride is fixed at 4; patch_size cannot change.")
        if img_size is not None:
            self.img_size = _pair(img_size)
            self.grid_size = tuple(s // _STEM_STRIDE for s in self.img_size)
            self.num_patches = self.grid_size[0] * self.grid_size[1]

    def feat_ratio(self, as_scalar: bool = True) -> int | tuple[int, int]:
        """Downsampling factor of the stem."""
        return _STEM_STRIDE if as_scalar else self.patch_size

    def dynamic_feat_size(self, img_size: tuple[int, int]) -> tuple[int, int]:
        """Token grid for an input of ``img_size`` (ceil, as the strided convs give)."""
        return tuple(-(-s // _STEM_STRIDE) for s in img_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed the image into a grid of tokens.

        Shape:
            x: (B, C, H, W); output: depends on ``output_fmt`` (see class docstring).
        """
        if self.strict_img_size and tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"input size {tuple(x.shape[-2:])} does not match the model's {self.img_size}; "
                "resize the images or build the encoder with dynamic_img_size=True."
            )
        x = self.proj(x)
        if self.output_fmt == "NCHW":
            return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = self.norm(x.permute(0, 2, 3, 1))  # NHWC: LayerNorm over channels
        return x.flatten(1, 2) if self.output_fmt == "NLC" else x


def build_ctranspath(pretrained_id: str | None = None, **kwargs: object) -> nn.Module:
    """Swin-T (timm) with :class:`ConvStem`, pooled output of 768 features.

    Args:
        pretrained_id: A timm/hub id whose weights fit this architecture, or None.
        **kwargs: Extra ``timm.create_model`` arguments (e.g. ``img_size``).
    """
    return timm.create_model(
        pretrained_id or SWIN_TINY,
        pretrained=pretrained_id is not None,
        num_classes=0,
        embed_layer=ConvStem,
        **kwargs,
    )


def ctranspath_state_filter(
    state: dict[str, torch.Tensor], model: nn.Module
) -> dict[str, torch.Tensor]:
    """Convert a CTransPath checkpoint in the original Swin layout to timm's.

    The published weights predate timm's current Swin: downsampling sits at the end
    of each stage instead of the start of the next, the relative-position index is
    stored, the classifier is ``head``. timm's own Swin converter handles exactly
    this; the conv stem's keys (``patch_embed.proj.N``) pass through unchanged.
    Checkpoints already in timm's layout are returned as they are.

    Shape:
        state: name → tensor; output: name → tensor.
    """
    return checkpoint_filter_fn(state, model)
